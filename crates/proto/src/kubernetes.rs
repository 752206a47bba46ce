//! Wire format of the Kubernetes webhooks: TokenReview (`authentication.k8s.io` v1 and
//! v1beta1, the same shape in both) and SubjectAccessReview (`authorization.k8s.io` v1
//! with `spec.groups`, v1beta1 with `spec.group`), read from the API server and answered
//! in the version it asked in, with the `spec` echoed as Kubernetes' own review APIs do
//! (the objects' schemas require a spec).

use crate::{Invalid, ProtoResult};
use limen_core::kubernetes::rules::{AccessDecision, AccessRequest, AccessTarget};
use limen_core::kubernetes::KubeUser;
use serde_json::{json, Value};

pub const AUTHORIZATION_V1: &str = "authorization.k8s.io/v1";
pub const AUTHORIZATION_V1BETA1: &str = "authorization.k8s.io/v1beta1";

/// A SubjectAccessReview as the API server sends it.
#[derive(Debug, Clone, PartialEq)]
pub struct AccessReviewRequest {
    pub api_version: &'static str,
    pub access: AccessRequest,
    /// The spec as sent, echoed in the answer.
    spec: Value,
}

fn bad_sar(why: impl Into<String>) -> Invalid {
    Invalid(format!("Not a SubjectAccessReview: {}", why.into()))
}

fn text(v: &Value, field: &str) -> ProtoResult<String> {
    match &v[field] {
        Value::Null => Ok(String::new()),
        Value::String(s) => Ok(s.clone()),
        _ => Err(bad_sar(format!("{field} must be a string"))),
    }
}

/// Reads a SubjectAccessReview request body.
pub fn access_review_request(body: &[u8]) -> ProtoResult<AccessReviewRequest> {
    let v: Value =
        serde_json::from_slice(body).map_err(|e| bad_sar(format!("the body is not JSON ({e})")))?;
    let (api_version, groups_key) = match v["apiVersion"].as_str() {
        Some(AUTHORIZATION_V1) => (AUTHORIZATION_V1, "groups"),
        Some(AUTHORIZATION_V1BETA1) => (AUTHORIZATION_V1BETA1, "group"),
        other => {
            return Err(bad_sar(format!(
                "apiVersion {other:?} is neither {AUTHORIZATION_V1} nor {AUTHORIZATION_V1BETA1}"
            )))
        }
    };
    if v["kind"] != "SubjectAccessReview" {
        return Err(bad_sar(format!(
            "kind is {}, not SubjectAccessReview",
            v["kind"]
        )));
    }
    let spec = &v["spec"];
    if !spec.is_object() {
        return Err(bad_sar("spec must be an object"));
    }
    let groups = match &spec[groups_key] {
        Value::Null => Vec::new(),
        Value::Array(items) => items
            .iter()
            .map(|g| g.as_str().map(str::to_string))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| bad_sar(format!("spec.{groups_key} must be a list of strings")))?,
        _ => {
            return Err(bad_sar(format!(
                "spec.{groups_key} must be a list of strings"
            )))
        }
    };
    let (resource, non_resource) = (&spec["resourceAttributes"], &spec["nonResourceAttributes"]);
    let (verb, target) = match (resource.is_object(), non_resource.is_object()) {
        (true, false) => {
            let target = AccessTarget::Resource {
                namespace: text(resource, "namespace")?,
                api_group: text(resource, "group")?,
                resource: text(resource, "resource")?,
                subresource: text(resource, "subresource")?,
                name: text(resource, "name")?,
            };
            (text(resource, "verb")?, target)
        }
        (false, true) => {
            let path = text(non_resource, "path")?;
            (
                text(non_resource, "verb")?,
                AccessTarget::NonResource { path },
            )
        }
        _ => {
            return Err(bad_sar(
                "spec needs exactly one of resourceAttributes and nonResourceAttributes",
            ))
        }
    };
    if verb.is_empty() {
        return Err(bad_sar("the verb is missing"));
    }
    Ok(AccessReviewRequest {
        api_version,
        access: AccessRequest {
            user: text(spec, "user")?,
            groups,
            verb,
            target,
        },
        spec: spec.clone(),
    })
}

/// The answer to a SubjectAccessReview: allowed, denied (which stops the API server's
/// authorizer chain), or no opinion (`allowed: false` alone: the next authorizer decides).
pub fn access_review_answer(review: &AccessReviewRequest, decision: &AccessDecision) -> Value {
    let status = match decision {
        AccessDecision::Allowed { reason } => json!({"allowed": true, "reason": reason}),
        AccessDecision::Denied { reason } => {
            json!({"allowed": false, "denied": true, "reason": reason})
        }
        AccessDecision::NoOpinion { reason } => json!({"allowed": false, "reason": reason}),
    };
    json!({"apiVersion": review.api_version, "kind": "SubjectAccessReview",
           "spec": review.spec, "status": status})
}

/// The answer when Limen cannot decide (its store failing): no opinion, with the error.
pub fn access_review_error(review: &AccessReviewRequest, error: &str) -> Value {
    json!({"apiVersion": review.api_version, "kind": "SubjectAccessReview",
           "spec": review.spec,
           "status": {"allowed": false, "evaluationError": error}})
}

pub const AUTHENTICATION_V1: &str = "authentication.k8s.io/v1";
pub const AUTHENTICATION_V1BETA1: &str = "authentication.k8s.io/v1beta1";

/// A TokenReview as the API server sends it.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenReviewRequest {
    /// The version to answer in.
    pub api_version: &'static str,
    pub token: String,
    /// `spec.audiences`: empty means the API server's own.
    pub audiences: Vec<String>,
}

fn bad(why: impl Into<String>) -> Invalid {
    Invalid(format!("Not a TokenReview: {}", why.into()))
}

/// Reads a TokenReview request body.
pub fn token_review_request(body: &[u8]) -> ProtoResult<TokenReviewRequest> {
    let v: Value =
        serde_json::from_slice(body).map_err(|e| bad(format!("the body is not JSON ({e})")))?;
    let api_version = match v["apiVersion"].as_str() {
        Some(AUTHENTICATION_V1) => AUTHENTICATION_V1,
        Some(AUTHENTICATION_V1BETA1) => AUTHENTICATION_V1BETA1,
        other => {
            return Err(bad(format!(
                "apiVersion {other:?} is neither {AUTHENTICATION_V1} nor \
                 {AUTHENTICATION_V1BETA1}"
            )))
        }
    };
    if v["kind"] != "TokenReview" {
        return Err(bad(format!("kind is {}, not TokenReview", v["kind"])));
    }
    let spec = &v["spec"];
    let token = match &spec["token"] {
        Value::String(t) if !t.is_empty() => t.clone(),
        _ => return Err(bad("spec.token must be a non-empty string")),
    };
    let audiences = match &spec["audiences"] {
        Value::Null => Vec::new(),
        Value::Array(items) => items
            .iter()
            .map(|a| a.as_str().map(str::to_string))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| bad("spec.audiences must be a list of strings"))?,
        _ => return Err(bad("spec.audiences must be a list of strings")),
    };
    Ok(TokenReviewRequest {
        api_version,
        token,
        audiences,
    })
}

/// The review answered with `status`.
fn answered(review: &TokenReviewRequest, status: Value) -> Value {
    let mut spec = json!({ "token": review.token });
    if !review.audiences.is_empty() {
        spec["audiences"] = json!(review.audiences);
    }
    json!({"apiVersion": review.api_version, "kind": "TokenReview", "spec": spec,
           "status": status})
}

/// The answer for a token that names `user`, good for `audiences`.
pub fn token_review_accepted(
    review: &TokenReviewRequest,
    user: &KubeUser,
    audiences: &[String],
) -> Value {
    let mut status = json!({
        "authenticated": true,
        "user": {
            "username": user.username,
            "uid": user.uid,
            "groups": user.groups,
            "extra": user.extra,
        },
    });
    if !audiences.is_empty() {
        status["audiences"] = json!(audiences);
    }
    answered(review, status)
}

/// The answer for a token that authenticates no one, and why.
pub fn token_review_rejected(review: &TokenReviewRequest, error: &str) -> Value {
    answered(review, json!({"authenticated": false, "error": error}))
}

/// A Kubernetes `Status` failure, for a request that is not a review at all (an unknown
/// caller, a malformed body): the API server logs its message.
pub fn failure_status(code: u16, reason: &str, message: &str) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Status",
        "status": "Failure",
        "code": code,
        "reason": reason,
        "message": message,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn access_reviews_read_groups_by_version() {
        let v1 = access_review_request(
            br#"{"apiVersion":"authorization.k8s.io/v1","kind":"SubjectAccessReview",
                 "spec":{"user":"u","groups":["g"],"resourceAttributes":{"namespace":"dev",
                 "verb":"get","group":"apps","resource":"deployments","name":"web"}}}"#,
        )
        .unwrap();
        assert_eq!(v1.access.groups, vec!["g".to_string()]);
        let beta = access_review_request(
            br#"{"apiVersion":"authorization.k8s.io/v1beta1","kind":"SubjectAccessReview",
                 "spec":{"user":"u","group":["g"],"nonResourceAttributes":{"path":"/healthz","verb":"get"}}}"#,
        )
        .unwrap();
        assert_eq!(beta.access.groups, vec!["g".to_string()]);
        assert_eq!(
            beta.access.target,
            AccessTarget::NonResource {
                path: "/healthz".into()
            }
        );
        for bad in [
            &br#"{"apiVersion":"authorization.k8s.io/v1","kind":"SubjectAccessReview","spec":{"user":"u"}}"#[..],
            br#"{"apiVersion":"authorization.k8s.io/v1","kind":"SubjectAccessReview","spec":{"groups":"g","nonResourceAttributes":{"path":"/","verb":"get"}}}"#,
            br#"{"apiVersion":"authorization.k8s.io/v1","kind":"SubjectAccessReview","spec":{"resourceAttributes":{"resource":"pods"}}}"#,
            br#"{"apiVersion":"authentication.k8s.io/v1","kind":"SubjectAccessReview","spec":{}}"#,
        ] {
            assert!(access_review_request(bad).is_err(), "{}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn reviews_are_read_in_both_versions() {
        let r = token_review_request(
            br#"{"apiVersion":"authentication.k8s.io/v1beta1","kind":"TokenReview",
                 "spec":{"token":"t","audiences":["a"]}}"#,
        )
        .unwrap();
        assert_eq!(r.api_version, AUTHENTICATION_V1BETA1);
        assert_eq!(r.audiences, vec!["a".to_string()]);
        for bad in [
            &br#"{"apiVersion":"authentication.k8s.io/v2","kind":"TokenReview","spec":{"token":"t"}}"#[..],
            br#"{"apiVersion":"authentication.k8s.io/v1","kind":"SubjectAccessReview","spec":{"token":"t"}}"#,
            br#"{"apiVersion":"authentication.k8s.io/v1","kind":"TokenReview","spec":{"token":""}}"#,
            br#"{"apiVersion":"authentication.k8s.io/v1","kind":"TokenReview","spec":{"token":"t","audiences":[1]}}"#,
            b"not json",
        ] {
            assert!(token_review_request(bad).is_err(), "{}", String::from_utf8_lossy(bad));
        }
    }
}
