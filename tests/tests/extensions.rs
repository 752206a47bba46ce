//! Keystone's smaller APIs: legacy policies, OAuth1 consumers, endpoint filtering, domain
//! configuration and unified limits.

use limen_tests::*;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

fn id(v: &Value) -> String {
    v["id"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn endpoint_filter_restricts_the_catalog() {
    let s = TestServer::start().await;
    let t = &s.admin_token;
    let svc = s
        .create(
            "services",
            "service",
            json!({"type": "compute", "name": "nova"}),
        )
        .await;
    let public = s.create("endpoints", "endpoint", json!({"service_id": id(&svc), "interface": "public", "url": "http://nova/public", "region_id": "RegionOne"})).await;
    s.create("endpoints", "endpoint", json!({"service_id": id(&svc), "interface": "internal", "url": "http://nova/internal", "region_id": "RegionOne"})).await;
    let p = s
        .create(
            "projects",
            "project",
            json!({"name": "fp", "domain_id": "default"}),
        )
        .await;
    let u = s
        .create(
            "users",
            "user",
            json!({"name": "fu", "password": "pw-123456"}),
        )
        .await;
    let member = s.role_id("member").await;
    s.put(
        &format!("/v3/projects/{}/users/{}/roles/{member}", id(&p), id(&u)),
        t,
    )
    .await;
    let count = |b: &Value| -> usize {
        b["token"]["catalog"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["endpoints"].as_array().unwrap().len())
            .sum()
    };
    let (_, before) = s
        .token(password_auth_by_id(
            &id(&u),
            "pw-123456",
            Some(project_scope(&id(&p))),
        ))
        .await;
    assert_eq!(count(&before), 5, "3 identity + 2 compute endpoints");

    let (st, v) = s.post("/v3/OS-EP-FILTER/endpoint_groups", t, json!({"endpoint_group": {"name": "public-compute", "filters": {"service_id": id(&svc), "interface": "public"}}})).await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    let gid = id(&v["endpoint_group"]);
    let (_, eps) = s
        .get(
            &format!("/v3/OS-EP-FILTER/endpoint_groups/{gid}/endpoints"),
            t,
        )
        .await;
    assert_eq!(eps["endpoints"][0]["id"], public["id"]);
    assert_eq!(
        s.put(
            &format!("/v3/OS-EP-FILTER/endpoint_groups/{gid}/projects/{}", id(&p)),
            t
        )
        .await
        .0,
        StatusCode::NO_CONTENT
    );
    let (_, after) = s
        .token(password_auth_by_id(
            &id(&u),
            "pw-123456",
            Some(project_scope(&id(&p))),
        ))
        .await;
    assert_eq!(count(&after), 1, "only the group's endpoint");
    assert_eq!(
        s.post(
            "/v3/OS-EP-FILTER/endpoint_groups",
            t,
            json!({"endpoint_group": {"name": "bad", "filters": {"url": "x"}}})
        )
        .await
        .0,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        s.delete(&format!("/v3/OS-EP-FILTER/endpoint_groups/{gid}"), t)
            .await
            .0,
        StatusCode::NO_CONTENT
    );
    let (_, again) = s
        .token(password_auth_by_id(
            &id(&u),
            "pw-123456",
            Some(project_scope(&id(&p))),
        ))
        .await;
    assert_eq!(count(&again), 5);
}

#[tokio::test]
async fn domain_configuration() {
    let s = TestServer::start().await;
    let t = &s.admin_token;
    let d = s
        .create("domains", "domain", json!({"name": "ldapdom"}))
        .await;
    let base = format!("/v3/domains/{}/config", id(&d));
    assert_eq!(s.get(&base, t).await.0, StatusCode::NOT_FOUND);
    let body = json!({"config": {"identity": {"driver": "ldap"}, "ldap": {"url": "ldap://x/", "password": "sekrit"}}});
    let (st, v) = s.call(Method::PUT, &base, Some(t), Some(body)).await;
    assert_eq!(st, StatusCode::CREATED);
    assert!(
        v["config"]["ldap"].get("password").is_none(),
        "sensitive options are never shown"
    );
    let (_, v) = s.get(&format!("{base}/ldap/url"), t).await;
    assert_eq!(v["config"]["url"], json!("ldap://x/"));
    assert_eq!(
        s.get(&format!("{base}/ldap/password"), t).await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        s.get(&format!("{base}/nonsense"), t).await.0,
        StatusCode::FORBIDDEN
    );
    let (st, v) = s
        .patch(
            &format!("{base}/ldap"),
            t,
            json!({"config": {"ldap": {"suffix": "dc=x"}}}),
        )
        .await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(v["config"]["ldap"]["suffix"], json!("dc=x"));
    assert_eq!(
        s.patch(
            &format!("{base}/ldap"),
            t,
            json!({"config": {"identity": {"driver": "sql"}}})
        )
        .await
        .0,
        StatusCode::FORBIDDEN
    );
    let (_, v) = s.get("/v3/domains/config/ldap/url/default", t).await;
    assert_eq!(v["config"]["url"], json!("ldap://localhost"));
    assert_eq!(
        s.delete(&format!("{base}/ldap"), t).await.0,
        StatusCode::NO_CONTENT
    );
    let (_, v) = s.get(&base, t).await;
    assert_eq!(v["config"], json!({"identity": {"driver": "ldap"}}));
}

#[tokio::test]
async fn limits_policies_and_consumers() {
    let s = TestServer::start().await;
    let t = &s.admin_token;
    let svc = s
        .create("services", "service", json!({"type": "compute"}))
        .await;
    let p = s
        .create(
            "projects",
            "project",
            json!({"name": "lp", "domain_id": "default"}),
        )
        .await;
    let (st, v) = s.post("/v3/registered_limits", t, json!({"registered_limits": [{"service_id": id(&svc), "resource_name": "cores", "default_limit": 10}]})).await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    let rl = id(&v["registered_limits"][0]);
    assert_eq!(s.post("/v3/registered_limits", t, json!({"registered_limits": [{"service_id": id(&svc), "resource_name": "cores", "default_limit": 5}]})).await.0, StatusCode::CONFLICT);
    assert_eq!(s.post("/v3/limits", t, json!({"limits": [{"service_id": id(&svc), "project_id": id(&p), "resource_name": "ram", "resource_limit": 5}]})).await.0, StatusCode::FORBIDDEN, "no registered limit");
    let (st, v) = s.post("/v3/limits", t, json!({"limits": [{"service_id": id(&svc), "project_id": id(&p), "resource_name": "cores", "resource_limit": 5}]})).await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    assert_eq!(
        s.delete(&format!("/v3/registered_limits/{rl}"), t).await.0,
        StatusCode::FORBIDDEN,
        "in use"
    );
    let (_, v) = s.get(&format!("/v3/limits?project_id={}", id(&p)), t).await;
    assert_eq!(v["limits"][0]["resource_limit"], json!(5));
    let (_, m) = s.get("/v3/limits/model", t).await;
    assert_eq!(m["model"]["name"], json!("flat"));

    let (st, v) = s
        .post(
            "/v3/policies",
            t,
            json!({"policy": {"blob": "{}", "type": "application/json"}}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED);
    let pid = id(&v["policy"]);
    let (_, v) = s
        .patch(
            &format!("/v3/policies/{pid}"),
            t,
            json!({"policy": {"blob": "{\"a\": 1}"}}),
        )
        .await;
    assert_eq!(v["policy"]["blob"], json!("{\"a\": 1}"));
    assert_eq!(
        s.delete(&format!("/v3/policies/{pid}"), t).await.0,
        StatusCode::NO_CONTENT
    );

    let (st, v) = s
        .post(
            "/v3/OS-OAUTH1/consumers",
            t,
            json!({"consumer": {"description": "c"}}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED);
    assert!(v["consumer"]["secret"].is_string());
    let cid = id(&v["consumer"]);
    let (_, v) = s.get(&format!("/v3/OS-OAUTH1/consumers/{cid}"), t).await;
    assert!(v["consumer"].get("secret").is_none());
    assert_eq!(
        s.patch(
            &format!("/v3/OS-OAUTH1/consumers/{cid}"),
            t,
            json!({"consumer": {"secret": "x"}})
        )
        .await
        .0,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        s.delete(&format!("/v3/OS-OAUTH1/consumers/{cid}"), t)
            .await
            .0,
        StatusCode::NO_CONTENT
    );
}
