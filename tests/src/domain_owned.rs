//! The domain manager's confinement, checked the same way for every resource Limen keeps
//! per domain (OAuth clients, Kubernetes clusters): a manager registers in its own
//! domain, sees and changes only its own domain's, a project member sees none, and a
//! deleted domain's go with it.

use crate::Api;
use crate::TestServer;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

/// A resource under `/v3/limen/`.
pub struct DomainOwned {
    /// `oauth_clients`: the path under `/v3/limen/` and the list's key.
    pub collection: &'static str,
    /// `oauth_client`: the wrapper of one.
    pub member: &'static str,
    /// The action that replaces its credential (`secret`, `webhook_token`).
    pub credential: &'static str,
    /// A valid new one; `n` tells apart several of them.
    pub sample: fn(n: u32) -> Value,
}

pub async fn a_domain_manager_is_confined_to_its_domain(r: DomainOwned) {
    let path = format!("/v3/limen/{}", r.collection);
    let s = TestServer::start().await;
    let (a, a_token) = s.domain_manager("dom-a").await;
    let (b, b_token) = s.domain_manager("dom-b").await;
    let create = |token: String, body: Value| {
        let (s, path) = (&s, &path);
        async move { s.post(path, &token, json!({ r.member: body })).await }
    };
    let id = |v: &Value| v[r.member]["id"].as_str().expect("id").to_string();
    // Without a domain, a domain-scoped manager registers in its own domain.
    let (status, mine) = create(a_token.clone(), (r.sample)(1)).await;
    assert_eq!(status, StatusCode::CREATED, "{mine}");
    assert_eq!(mine[r.member]["domain_id"], json!(a));
    let (status, theirs) = create(b_token.clone(), (r.sample)(2)).await;
    assert_eq!(status, StatusCode::CREATED, "{theirs}");
    let mut in_b = (r.sample)(3);
    in_b["domain_id"] = json!(b);
    let (status, _) = create(a_token.clone(), in_b).await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "registering in another domain"
    );

    let (status, list) = s.get(&path, &a_token).await;
    assert_eq!(status, StatusCode::OK);
    let ids: Vec<&str> = list[r.collection]
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|c| c["id"].as_str())
        .collect();
    assert_eq!(ids, vec![id(&mine).as_str()]);
    let (status, _) = s.get(&format!("{path}?domain_id={b}"), &a_token).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "listing another domain");
    let other = format!("{path}/{}", id(&theirs));
    for (method, body) in [
        (Method::GET, None),
        (Method::PATCH, Some(json!({ r.member: {"enabled": false} }))),
        (Method::DELETE, None),
    ] {
        let (status, _) = s.call(method.clone(), &other, Some(&a_token), body).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{method} another domain's");
    }
    let (status, _) = s
        .call(
            Method::POST,
            &format!("{other}/{}", r.credential),
            Some(&a_token),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // A project member (no admin, no domain) sees no domain's.
    let project = s.new_project("p1").await;
    let (_, member) = s.new_member("mia", &project).await;
    let (status, body) = s.get(&path, &member).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let (status, _) = s.get(&other, &member).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // Its own it may remove.
    let own = format!("{path}/{}", id(&mine));
    let (status, _) = s.delete(&own, &a_token).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    // A deleted domain's go with it.
    let admin = s.admin_token.clone();
    let (status, _) = s
        .patch(
            &format!("/v3/domains/{b}"),
            &admin,
            json!({"domain": {"enabled": false}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = s.delete(&format!("/v3/domains/{b}"), &admin).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = s.get(&other, &admin).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}
