//! The fuzz target for request bodies (`fuzz/`, run with `scripts/fuzz.sh`), kept here so
//! that the fuzz target is one line and the normal tests replay the committed corpus
//! through the same code.

use crate::{cluster, federation, input, kubernetes, oauth, oauth1, signed};
use serde_json::Value;

/// Every reader of a JSON request body, as the routes call them.
const JSON_BODIES: [fn(Value); 47] = [
    |v| drop(input::domain_create(v)),
    |v| drop(input::domain_update(v)),
    |v| drop(input::project_create(v)),
    |v| drop(input::project_update(v)),
    |v| drop(input::user_create(v)),
    |v| drop(input::user_update(v)),
    |v| drop(input::password_change(v)),
    |v| drop(input::group_create(v)),
    |v| drop(input::group_update(v)),
    |v| drop(input::role_create(v)),
    |v| drop(input::role_update(v)),
    |v| drop(input::region_create(v, Some("r1"))),
    |v| drop(input::region_update(v)),
    |v| drop(input::service_create(v)),
    |v| drop(input::service_update(v)),
    |v| drop(input::endpoint_create(v)),
    |v| drop(input::endpoint_update(v)),
    |v| drop(input::credential_create(v)),
    |v| drop(input::credential_update(v)),
    |v| drop(input::trust_create(v)),
    |v| drop(input::application_credential_create(v)),
    |v| drop(input::auth_request(v)),
    |v| drop(input::policy_create(v)),
    |v| drop(input::policy_update(v)),
    |v| drop(input::consumer_create(v)),
    |v| drop(input::consumer_update(v)),
    |v| drop(input::endpoint_group(v, true)),
    |v| drop(input::registered_limits(v)),
    |v| drop(input::registered_limit_update(v)),
    |v| drop(input::limits(v)),
    |v| drop(input::limit_update(v)),
    |v| drop(input::domain_config(v)),
    |v| drop(input::tags(v)),
    |v| drop(oauth::oauth_client_create(v)),
    |v| drop(oauth::oauth_client_update(v)),
    |v| drop(cluster::cluster_create(v)),
    |v| drop(cluster::cluster_update(v)),
    |v| drop(cluster::kube_rule_create(v)),
    |v| drop(federation::identity_provider_create(v)),
    |v| drop(federation::identity_provider_update(v)),
    |v| drop(federation::protocol_body(v, true)),
    |v| drop(federation::mapping("m1", v)),
    |v| drop(federation::service_provider_create("sp1", v)),
    |v| drop(federation::service_provider_update(v)),
    |v| drop(oauth1::authorize_roles(v)),
    |v| drop(signed::signed_credentials(&v, false)),
    |v| drop(signed::signed_credentials(&v, true)),
];

/// The first byte picks a reader; the rest is its body: JSON for the JSON readers (as
/// the server parses it), raw bytes for the Kubernetes webhooks, text for OAuth1's
/// `Authorization` header and form.
pub fn json_body(data: &[u8]) {
    let Some((&pick, body)) = data.split_first() else {
        return;
    };
    let readers = JSON_BODIES.len() + 4;
    match pick as usize % readers {
        0 => drop(kubernetes::access_review_request(body)),
        1 => drop(kubernetes::token_review_request(body)),
        2 => drop(oauth1::authorization_params(&String::from_utf8_lossy(body))),
        3 => drop(oauth1::form_params(&String::from_utf8_lossy(body))),
        n => {
            if let Ok(value) = serde_json::from_slice::<Value>(body) {
                JSON_BODIES[n - 4](value);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn json_body_corpus_replays() {
        let dir =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/json_body");
        let mut n = 0;
        for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{dir:?}: {e}")) {
            super::json_body(&std::fs::read(entry.unwrap().path()).unwrap());
            n += 1;
        }
        assert!(n > 0, "{dir:?} is empty");
    }
}
