//! The store's index of documents: values that must be unique among documents of a kind
//! (a cluster's audience, an identity provider's remote ids) stay unique when creates
//! race, and documents written before the index existed are indexed when a server starts.

use futures_util::future::join_all;
use limen_tests::*;
use reqwest::{Method, StatusCode};
use serde_json::json;

const CLUSTERS: &str = "/v3/limen/clusters";

/// Creates at once, each through its own request: their statuses.
async fn at_once(
    s: &TestServer,
    requests: Vec<(Method, String, serde_json::Value)>,
) -> Vec<StatusCode> {
    join_all(requests.into_iter().map(|(m, path, body)| async move {
        s.call(m, &path, Some(&s.admin_token), Some(body)).await.0
    }))
    .await
}

#[tokio::test]
async fn racing_creates_make_a_unique_value_once() {
    let s = TestServer::start().await;
    // Eight clusters, each named differently, all claiming one audience.
    let clusters = (0..8)
        .map(|n| {
            let body = json!({"cluster": {"name": format!("c{n}"), "audience": "shared",
                                          "api_server": format!("https://c{n}.example.com")}});
            (Method::POST, CLUSTERS.to_string(), body)
        })
        .collect();
    one_created_the_rest_refused(&at_once(&s, clusters).await);
    let (_, listed) = s.get(CLUSTERS, &s.admin_token).await;
    assert_eq!(listed["clusters"].as_array().unwrap().len(), 1, "{listed}");

    // Eight identity providers naming one remote id: an assertion names exactly one. Each
    // would make a domain of its own; the losers' domains go with their failed creates.
    let domains = |v: serde_json::Value| v["domains"].as_array().map_or(0, Vec::len);
    let before = domains(s.get("/v3/domains", &s.admin_token).await.1);
    let providers = (0..8)
        .map(|n| {
            let body = json!({"identity_provider": {"remote_ids": ["https://idp.example/shared"]}});
            (
                Method::PUT,
                format!("/v3/OS-FEDERATION/identity_providers/idp{n}"),
                body,
            )
        })
        .collect();
    one_created_the_rest_refused(&at_once(&s, providers).await);
    let (_, listed) = s
        .get("/v3/OS-FEDERATION/identity_providers", &s.admin_token)
        .await;
    let listed = listed["identity_providers"].as_array().unwrap().len();
    assert_eq!(listed, 1);
    let after = domains(s.get("/v3/domains", &s.admin_token).await.1);
    assert_eq!(
        after,
        before + 1,
        "one generated domain, of the provider made"
    );
}

/// Exactly one of racing creates succeeded; the others were told it is a duplicate.
fn one_created_the_rest_refused(statuses: &[StatusCode]) {
    let created = statuses
        .iter()
        .filter(|s| **s == StatusCode::CREATED)
        .count();
    assert_eq!(created, 1, "{statuses:?}");
    assert!(
        statuses
            .iter()
            .all(|s| *s == StatusCode::CREATED || *s == StatusCode::CONFLICT),
        "{statuses:?}"
    );
}

#[tokio::test]
async fn documents_of_an_older_version_are_indexed_at_start() {
    let mut s = TestServer::start().await;
    let t = s.admin_token.clone();
    let (st, v) = s
        .post(
            CLUSTERS,
            &t,
            json!({"cluster": {"name": "edge", "audience": "edge",
                               "api_server": "https://edge.example.com"}}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    let cluster = v["cluster"]["id"].as_str().unwrap().to_string();
    let rule = json!({"rule": {"subjects": [{"group": "limen:group:Default/ops"}],
                               "verbs": ["get"], "namespaces": ["*"],
                               "api_groups": [""], "resources": ["pods"]}});
    let rules = format!("{CLUSTERS}/{cluster}/rules");
    let (st, v) = s.post(&rules, &t, rule).await;
    assert_eq!(st, StatusCode::CREATED, "{v}");

    // As an older version stored them: no owners, no claims.
    let cleared = s
        .stored_strings("UPDATE documents SET owner = '' RETURNING id")
        .await;
    assert!(cleared.len() >= 2, "{cleared:?}");
    let unclaimed = s
        .stored_strings("DELETE FROM document_claims RETURNING id")
        .await;
    assert!(unclaimed.contains(&cluster), "{unclaimed:?}");
    s.kill_and_restart();

    let (st, v) = s.get(&rules, &t).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["rules"].as_array().unwrap().len(), 1, "{v}");
    let (st, v) = s
        .post(
            CLUSTERS,
            &t,
            json!({"cluster": {"name": "other", "audience": "edge",
                               "api_server": "https://other.example.com"}}),
        )
        .await;
    assert_eq!(st, StatusCode::CONFLICT, "{v}");
    assert!(s
        .stored_strings("SELECT id FROM documents WHERE owner = ''")
        .await
        .is_empty());
    let claims = s
        .stored_strings(&format!(
            "SELECT claim FROM document_claims WHERE id = '{cluster}' ORDER BY claim"
        ))
        .await;
    assert_eq!(claims, ["audience:edge", "name:default/edge"]);
}
