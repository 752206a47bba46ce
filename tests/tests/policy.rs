//! Authorization as Keystone applies it: scope enforcement, the reader/member/admin
//! hierarchy, the domain-manager persona, and operator overrides.

use limen_tests::*;
use reqwest::StatusCode;
use serde_json::{json, Value};

fn id(v: &Value) -> String {
    v["id"].as_str().unwrap().to_string()
}

struct Domain {
    id: String,
    manager_token: String,
}

/// A domain with a user holding `manager` on it; returns the domain and a domain-scoped
/// token of that manager.
async fn managed_domain(s: &TestServer, name: &str) -> Domain {
    let d = s.create("domains", "domain", json!({"name": name})).await;
    let m = s
        .create(
            "users",
            "user",
            json!({"name": format!("{name}-mgr"), "domain_id": id(&d), "password": "pw-123456"}),
        )
        .await;
    let manager = s.role_id("manager").await;
    let (st, _) = s
        .put(
            &format!("/v3/domains/{}/users/{}/roles/{manager}", id(&d), id(&m)),
            &s.admin_token,
        )
        .await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    let (tok, _) = s
        .token(password_auth_by_id(
            &id(&m),
            "pw-123456",
            Some(json!({"domain": {"id": id(&d)}})),
        ))
        .await;
    Domain {
        id: id(&d),
        manager_token: tok,
    }
}

#[tokio::test]
async fn members_and_readers_cannot_administer() {
    let s = TestServer::start().await;
    let p = s
        .create(
            "projects",
            "project",
            json!({"name": "p", "domain_id": "default"}),
        )
        .await;
    let (user_id, tok) = s.new_member("m", &id(&p)).await;
    for path in [
        "/v3/users",
        "/v3/projects",
        "/v3/domains",
        "/v3/roles",
        "/v3/role_assignments",
        "/v3/services",
    ] {
        let (st, v) = s.get(path, &tok).await;
        assert_eq!(st, StatusCode::FORBIDDEN, "{path}: {v}");
        assert!(
            v["error"]["message"]
                .as_str()
                .unwrap()
                .contains("identity:"),
            "{v}"
        );
    }
    let (st, _) = s
        .post("/v3/domains", &tok, json!({"domain": {"name": "nope"}}))
        .await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    // ...but may read what the defaults allow them
    for path in ["/v3/regions", "/v3/domains/default", "/v3/auth/projects"] {
        assert_eq!(s.get(path, &tok).await.0, StatusCode::OK, "{path}");
    }
    assert_eq!(
        s.get(&format!("/v3/users/{user_id}"), &tok).await.0,
        StatusCode::OK,
        "own user"
    );
    assert_eq!(
        s.get(&format!("/v3/projects/{}", id(&p)), &tok).await.0,
        StatusCode::OK,
        "own project"
    );
    // An unscoped token may read its own user but not list.
    let (unscoped, _) = s
        .token(password_auth_by_id(&user_id, "pw-123456", None))
        .await;
    assert_eq!(
        s.get(&format!("/v3/users/{user_id}"), &unscoped).await.0,
        StatusCode::OK
    );
    assert_eq!(s.get("/v3/users", &unscoped).await.0, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn domain_manager_stays_inside_its_domain() {
    let s = TestServer::start().await;
    let a = managed_domain(&s, "dom-a").await;
    let b = managed_domain(&s, "dom-b").await;
    let t = &a.manager_token;

    // creates users, projects, groups in its own domain
    let (st, u) = s
        .post(
            "/v3/users",
            t,
            json!({"user": {"name": "a-user", "domain_id": a.id, "password": "pw-123456"}}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{u}");
    let uid = u["user"]["id"].as_str().unwrap().to_string();
    let (st, p) = s
        .post(
            "/v3/projects",
            t,
            json!({"project": {"name": "a-proj", "domain_id": a.id}}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{p}");
    let pid = p["project"]["id"].as_str().unwrap().to_string();
    let (st, g) = s
        .post(
            "/v3/groups",
            t,
            json!({"group": {"name": "a-group", "domain_id": a.id}}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{g}");
    let gid = g["group"]["id"].as_str().unwrap().to_string();
    assert_eq!(
        s.put(&format!("/v3/groups/{gid}/users/{uid}"), t).await.0,
        StatusCode::NO_CONTENT
    );

    // create calls are authorized against the body before defaults: no domain_id, no entry
    for (path, key) in [
        ("/v3/users", "user"),
        ("/v3/projects", "project"),
        ("/v3/groups", "group"),
    ] {
        let (st, _) = s.post(path, t, json!({ key: {"name": "no-domain"} })).await;
        assert_eq!(st, StatusCode::FORBIDDEN, "{path} without domain_id");
        let (st, _) = s
            .post(
                path,
                t,
                json!({ key: {"name": "other", "domain_id": b.id} }),
            )
            .await;
        assert_eq!(st, StatusCode::FORBIDDEN, "{path} in another domain");
    }

    // lists are filtered to its domain; the other domain's objects stay hidden
    let (st, v) = s.get("/v3/users", t).await;
    assert_eq!(st, StatusCode::OK);
    assert!(v["users"]
        .as_array()
        .unwrap()
        .iter()
        .all(|u| u["domain_id"] == json!(a.id)));
    let (_, v) = s.get(&format!("/v3/users?domain_id={}", b.id), t).await;
    assert!(
        v["users"]
            .as_array()
            .unwrap()
            .iter()
            .all(|u| u["domain_id"] == json!(a.id)),
        "asking for another domain still filters"
    );
    let (_, v) = s.get("/v3/domains", t).await;
    assert_eq!(v["domains"].as_array().unwrap().len(), 1);
    assert_eq!(v["domains"][0]["id"], json!(a.id));
    let (_, v) = s.get("/v3/role_assignments", t).await;
    for r in v["role_assignments"].as_array().unwrap() {
        let scope_domain = r["scope"]["domain"]["id"].as_str();
        let scope_project = r["scope"]["project"]["id"].as_str();
        assert!(
            scope_domain == Some(a.id.as_str()) || scope_project == Some(pid.as_str()),
            "{r}"
        );
    }
    let (_, buser) = s.get("/v3/users?name=dom-b-mgr", &s.admin_token).await;
    let b_user = buser["users"][0]["id"].as_str().unwrap().to_string();
    assert_eq!(
        s.get(&format!("/v3/users/{b_user}"), t).await.0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        s.delete(&format!("/v3/users/{b_user}"), t).await.0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        s.get(&format!("/v3/domains/{}", b.id), t).await.0,
        StatusCode::FORBIDDEN
    );

    // grants: allow-listed roles only, never admin, never across domains
    let member = s.role_id("member").await;
    let admin = s.role_id("admin").await;
    assert_eq!(
        s.put(&format!("/v3/projects/{pid}/users/{uid}/roles/{member}"), t)
            .await
            .0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        s.put(&format!("/v3/projects/{pid}/users/{uid}/roles/{admin}"), t)
            .await
            .0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        s.put(&format!("/v3/projects/{pid}/groups/{gid}/roles/{admin}"), t)
            .await
            .0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        s.put(
            &format!("/v3/domains/{}/users/{uid}/roles/{admin}", a.id),
            t
        )
        .await
        .0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        s.put(
            &format!("/v3/projects/{pid}/users/{b_user}/roles/{member}"),
            t
        )
        .await
        .0,
        StatusCode::FORBIDDEN
    );
    // a custom role that implies admin is not allow-listed either
    let sneaky = s.create("roles", "role", json!({"name": "sneaky"})).await;
    s.put(
        &format!("/v3/roles/{}/implies/{admin}", id(&sneaky)),
        &s.admin_token,
    )
    .await;
    assert_eq!(
        s.put(
            &format!("/v3/projects/{pid}/users/{uid}/roles/{}", id(&sneaky)),
            t
        )
        .await
        .0,
        StatusCode::FORBIDDEN
    );
    // cannot revoke in the other domain
    let b_proj = s
        .create(
            "projects",
            "project",
            json!({"name": "b-proj", "domain_id": b.id}),
        )
        .await;
    s.put(
        &format!("/v3/projects/{}/users/{b_user}/roles/{member}", id(&b_proj)),
        &s.admin_token,
    )
    .await;
    assert_eq!(
        s.delete(
            &format!("/v3/projects/{}/users/{b_user}/roles/{member}", id(&b_proj)),
            t
        )
        .await
        .0,
        StatusCode::FORBIDDEN
    );
    // roles: listable, never creatable
    assert_eq!(s.get("/v3/roles", t).await.0, StatusCode::OK);
    assert_eq!(
        s.post("/v3/roles", t, json!({"role": {"name": "mine"}}))
            .await
            .0,
        StatusCode::FORBIDDEN
    );
    // domain_id is immutable
    let (st, v) = s
        .patch(
            &format!("/v3/users/{uid}"),
            t,
            json!({"user": {"domain_id": b.id}}),
        )
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{v}");
    // deletes inside the domain work
    assert_eq!(
        s.delete(&format!("/v3/users/{uid}"), t).await.0,
        StatusCode::NO_CONTENT
    );
}

#[tokio::test]
async fn policy_override_file_applies() {
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("policy.yaml");
    std::fs::write(&policy, "\"identity:list_regions\": \"role:admin\"\n").unwrap();
    let config = format!(
        "{DEFAULT_CONFIG}\n[policy]\nfile = \"{}\"\n",
        policy.display()
    );
    let s = TestServer::start_with(&config).await;
    let p = s
        .create(
            "projects",
            "project",
            json!({"name": "p", "domain_id": "default"}),
        )
        .await;
    let u = s
        .create(
            "users",
            "user",
            json!({"name": "m", "password": "pw-123456"}),
        )
        .await;
    let member = s.role_id("member").await;
    s.put(
        &format!("/v3/projects/{}/users/{}/roles/{member}", id(&p), id(&u)),
        &s.admin_token,
    )
    .await;
    let (tok, _) = s
        .token(password_auth_by_id(
            &id(&u),
            "pw-123456",
            Some(project_scope(&id(&p))),
        ))
        .await;
    assert_eq!(
        s.get("/v3/regions", &tok).await.0,
        StatusCode::FORBIDDEN,
        "override in force"
    );
    assert_eq!(s.get("/v3/regions", &s.admin_token).await.0, StatusCode::OK);
    // Reloaded without a restart.
    std::fs::write(&policy, "\"identity:list_regions\": \"\"\n").unwrap();
    let mut ok = false;
    for _ in 0..40 {
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
        if s.get("/v3/regions", &tok).await.0 == StatusCode::OK {
            ok = true;
            break;
        }
    }
    assert!(ok, "policy file change was not picked up");
}
