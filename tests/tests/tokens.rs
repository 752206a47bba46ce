//! Authentication and tokens against a real server: every scope, validation, rescoping,
//! and revocation by every path the issue names.

use limen_tests::in_process::InProcess;
use limen_tests::*;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

/// A user with a password and `member` on a fresh project; returns (user id, project id).
async fn member_on_project(s: &impl Api, name: &str) -> (String, String) {
    let p = s
        .create(
            "projects",
            "project",
            json!({"name": format!("{name}-p"), "domain_id": "default"}),
        )
        .await;
    let u = s
        .create(
            "users",
            "user",
            json!({"name": name, "domain_id": "default", "password": "pw-123456"}),
        )
        .await;
    let (uid, pid) = (
        u["id"].as_str().unwrap().to_string(),
        p["id"].as_str().unwrap().to_string(),
    );
    let member = s.role_id("member").await;
    let (st, _) = s
        .put(
            &format!("/v3/projects/{pid}/users/{uid}/roles/{member}"),
            s.admin(),
        )
        .await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    (uid, pid)
}

fn role_names(body: &Value) -> Vec<String> {
    let mut v: Vec<String> = body["token"]["roles"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|r| r["name"].as_str().unwrap().to_string())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

#[tokio::test]
async fn project_token_has_keystone_shape_and_implied_roles() {
    let s = TestServer::start().await;
    let (uid, pid) = member_on_project(&s, "alice").await;
    let (id, body) = s
        .token(password_auth_by_id(
            &uid,
            "pw-123456",
            Some(project_scope(&pid)),
        ))
        .await;
    assert!(
        id.len() >= 180 && id.len() <= 190,
        "project Fernet tokens are ~183 chars, got {}",
        id.len()
    );
    let t = &body["token"];
    assert_eq!(t["methods"], json!(["password"]));
    assert_eq!(t["user"]["id"], json!(uid));
    assert_eq!(
        t["user"]["domain"],
        json!({"id": "default", "name": "Default"})
    );
    assert_eq!(t["user"]["password_expires_at"], Value::Null);
    assert_eq!(t["project"]["id"], json!(pid));
    assert_eq!(t["project"]["domain"]["name"], json!("Default"));
    assert_eq!(t["is_domain"], json!(false));
    assert_eq!(
        role_names(&body),
        vec!["member", "reader"],
        "member implies reader"
    );
    let expires = t["expires_at"].as_str().unwrap();
    let issued = t["issued_at"].as_str().unwrap();
    assert!(expires.ends_with(".000000Z") && issued.ends_with(".000000Z"));
    assert!(expires > issued);
    assert_eq!(t["audit_ids"].as_array().unwrap().len(), 1);
    assert_eq!(t["audit_ids"][0].as_str().unwrap().len(), 22);
    let catalog = t["catalog"].as_array().unwrap();
    let identity = catalog
        .iter()
        .find(|c| c["type"] == "identity")
        .expect("identity service");
    assert_eq!(identity["endpoints"].as_array().unwrap().len(), 3);
    assert!(identity["endpoints"][0]["region"] == "RegionOne");

    // Validation returns the same document.
    let resp = s
        .http
        .get(s.url("/v3/auth/tokens"))
        .header("X-Auth-Token", &s.admin_token)
        .header("X-Subject-Token", &id)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["x-subject-token"], id.as_str());
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v, body);

    // ?nocatalog drops the catalog only.
    let (_, b2) = s
        .token(password_auth_by_id(
            &uid,
            "pw-123456",
            Some(project_scope(&pid)),
        ))
        .await;
    assert!(b2["token"]["catalog"].is_array());
    let resp = s
        .http
        .post(s.url("/v3/auth/tokens?nocatalog"))
        .json(&password_auth_by_id(
            &uid,
            "pw-123456",
            Some(project_scope(&pid)),
        ))
        .send()
        .await
        .unwrap();
    let v: Value = resp.json().await.unwrap();
    assert!(v["token"].get("catalog").is_none());
    assert!(v["token"]["roles"].is_array());
}

#[tokio::test]
async fn every_way_to_name_user_and_scope() {
    let s = TestServer::start().await;
    let (_, pid) = member_on_project(&s, "bob").await;
    // user by name + domain id, project by name + domain name
    let body = json!({"auth": {"identity": {"methods": ["password"], "password": {"user": {"name": "bob", "domain": {"id": "default"}, "password": "pw-123456"}}},
        "scope": {"project": {"name": "bob-p", "domain": {"name": "Default"}}}}});
    let (_, b) = s.token(body).await;
    assert_eq!(b["token"]["project"]["id"], json!(pid));
    // unscoped: no roles, project or catalog keys at all
    let (id, b) = s
        .token(password_auth_by_name("bob", "Default", "pw-123456", None))
        .await;
    for k in ["roles", "project", "catalog", "domain", "system"] {
        assert!(b["token"].get(k).is_none(), "unscoped token has {k}");
    }
    assert!(id.len() < 180);
    // domain scope needs a role on the domain
    let (st, _, b) = s
        .authenticate(password_auth_by_name(
            "bob",
            "Default",
            "pw-123456",
            Some(json!({"domain": {"id": "default"}})),
        ))
        .await;
    assert_eq!(st, StatusCode::UNAUTHORIZED, "{b}");
    assert_eq!(b["error"]["code"], json!(401));
    // admin: domain and system scope
    let (_, b) = s
        .token(password_auth_by_name(
            "admin",
            "Default",
            ADMIN_PASSWORD,
            Some(json!({"system": {"all": true}})),
        ))
        .await;
    assert_eq!(b["token"]["system"], json!({"all": true}));
    assert!(role_names(&b).contains(&"admin".to_string()));
    let admin_id = b["token"]["user"]["id"].as_str().unwrap().to_string();
    let admin_role = s.role_id("admin").await;
    s.put(
        &format!("/v3/domains/default/users/{admin_id}/roles/{admin_role}"),
        &s.admin_token,
    )
    .await;
    let (_, b) = s
        .token(password_auth_by_name(
            "admin",
            "Default",
            ADMIN_PASSWORD,
            Some(json!({"domain": {"name": "Default"}})),
        ))
        .await;
    assert_eq!(
        b["token"]["domain"],
        json!({"id": "default", "name": "Default"})
    );
    assert_eq!(role_names(&b), vec!["admin", "manager", "member", "reader"]);
}

#[tokio::test]
async fn default_project_scopes_a_token_without_scope() {
    let s = TestServer::start().await;
    let (uid, pid) = member_on_project(&s, "carol").await;
    s.patch(
        &format!("/v3/users/{uid}"),
        &s.admin_token,
        json!({"user": {"default_project_id": pid}}),
    )
    .await;
    let (_, b) = s.token(password_auth_by_id(&uid, "pw-123456", None)).await;
    assert_eq!(b["token"]["project"]["id"], json!(pid));
    // "unscoped" forces an unscoped token
    let mut req = password_auth_by_id(&uid, "pw-123456", None);
    req["auth"]["scope"] = json!("unscoped");
    let (_, b) = s.token(req).await;
    assert!(b["token"].get("project").is_none());
}

#[tokio::test]
async fn rescoping_keeps_expiry_and_chains_audit_ids() {
    let s = TestServer::start().await;
    let (uid, pid) = member_on_project(&s, "dave").await;
    let (unscoped, ub) = s.token(password_auth_by_id(&uid, "pw-123456", None)).await;
    let (scoped, sb) = s
        .token(token_auth(&unscoped, Some(project_scope(&pid))))
        .await;
    assert_eq!(sb["token"]["expires_at"], ub["token"]["expires_at"]);
    let mut methods: Vec<String> = serde_json::from_value(sb["token"]["methods"].clone()).unwrap();
    methods.sort();
    assert_eq!(methods, vec!["password", "token"]);
    assert_eq!(sb["token"]["audit_ids"][1], ub["token"]["audit_ids"][0]);
    assert_eq!(sb["token"]["user"], ub["token"]["user"]);
    // Exchanging a scoped token without naming a scope gives an unscoped token.
    let (_, again) = s.token(token_auth(&scoped, None)).await;
    assert!(again["token"].get("project").is_none(), "{again}");
    // Revoking the rescoped token leaves its parent valid.
    assert_eq!(s.revoke(&scoped).await, StatusCode::NO_CONTENT);
    assert_eq!(s.validate(&scoped).await, StatusCode::NOT_FOUND);
    assert_eq!(s.validate(&unscoped).await, StatusCode::OK);
    // A revoked token cannot be rescoped: 404, as Keystone answers.
    let (st, _, _) = s
        .authenticate(token_auth(&scoped, Some(project_scope(&pid))))
        .await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    // ...and a garbage one neither.
    let (st, _, _) = s.authenticate(token_auth("gAAAAAgarbage", None)).await;
    assert_eq!(st, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn validate_check_revoke_and_their_errors() {
    let s = TestServer::start().await;
    let (uid, pid) = member_on_project(&s, "erin").await;
    let (tok, _) = s
        .token(password_auth_by_id(
            &uid,
            "pw-123456",
            Some(project_scope(&pid)),
        ))
        .await;
    // HEAD: 200, empty body
    let resp = s
        .http
        .head(s.url("/v3/auth/tokens"))
        .header("X-Auth-Token", &tok)
        .header("X-Subject-Token", &tok)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    // Missing subject: 404; missing or bad caller token: 401 with WWW-Authenticate.
    let (st, b) = s.get("/v3/auth/tokens", &tok).await;
    assert_eq!(st, StatusCode::NOT_FOUND, "{b}");
    let resp = s
        .http
        .get(s.url("/v3/auth/tokens"))
        .header("X-Subject-Token", &tok)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert!(resp.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .starts_with("Keystone uri="));
    let resp = s
        .http
        .get(s.url("/v3/auth/tokens"))
        .header("X-Auth-Token", "nonsense")
        .header("X-Subject-Token", &tok)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    // A member may not validate someone else's token.
    let resp = s
        .http
        .get(s.url("/v3/auth/tokens"))
        .header("X-Auth-Token", &tok)
        .header("X-Subject-Token", &s.admin_token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    // The subject may revoke itself.
    let resp = s
        .http
        .delete(s.url("/v3/auth/tokens"))
        .header("X-Auth-Token", &tok)
        .header("X-Subject-Token", &tok)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    assert_eq!(s.validate(&tok).await, StatusCode::NOT_FOUND);
    let (st, _) = s.get("/v3/auth/projects", &tok).await;
    assert_eq!(
        st,
        StatusCode::UNAUTHORIZED,
        "a revoked token no longer authenticates"
    );
    let resp = s
        .http
        .get(s.url("/v3/auth/tokens?allow_expired=1"))
        .header("X-Auth-Token", &s.admin_token)
        .header("X-Subject-Token", &tok)
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.status(),
        StatusCode::NOT_FOUND,
        "allow_expired does not resurrect revoked tokens"
    );
}

/// Each change that must invalidate existing tokens does.
#[tokio::test]
async fn revocation_follows_every_change() {
    let s = TestServer::start().await;
    let member = s.role_id("member").await;

    // password change (self-service)
    let (uid, pid) = member_on_project(&s, "u-pw").await;
    let (tok, _) = s
        .token(password_auth_by_id(
            &uid,
            "pw-123456",
            Some(project_scope(&pid)),
        ))
        .await;
    let (st, _) = s
        .call(
            Method::POST,
            &format!("/v3/users/{uid}/password"),
            None,
            Some(json!({"user": {"original_password": "pw-123456", "password": "new-pw-7890"}})),
        )
        .await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    assert_eq!(
        s.validate(&tok).await,
        StatusCode::NOT_FOUND,
        "password change"
    );

    // user disabled
    let (uid, pid) = member_on_project(&s, "u-dis").await;
    let (tok, _) = s
        .token(password_auth_by_id(
            &uid,
            "pw-123456",
            Some(project_scope(&pid)),
        ))
        .await;
    s.patch(
        &format!("/v3/users/{uid}"),
        &s.admin_token,
        json!({"user": {"enabled": false}}),
    )
    .await;
    assert_eq!(
        s.validate(&tok).await,
        StatusCode::NOT_FOUND,
        "user disabled"
    );
    s.patch(
        &format!("/v3/users/{uid}"),
        &s.admin_token,
        json!({"user": {"enabled": true}}),
    )
    .await;
    assert_eq!(
        s.validate(&tok).await,
        StatusCode::NOT_FOUND,
        "re-enabling does not revive old tokens"
    );

    // user deleted
    let (uid, pid) = member_on_project(&s, "u-del").await;
    let (tok, _) = s
        .token(password_auth_by_id(
            &uid,
            "pw-123456",
            Some(project_scope(&pid)),
        ))
        .await;
    s.delete(&format!("/v3/users/{uid}"), &s.admin_token).await;
    assert_eq!(
        s.validate(&tok).await,
        StatusCode::NOT_FOUND,
        "user deleted"
    );

    // project disabled
    let (uid, pid) = member_on_project(&s, "u-proj").await;
    let (tok, _) = s
        .token(password_auth_by_id(
            &uid,
            "pw-123456",
            Some(project_scope(&pid)),
        ))
        .await;
    let (unscoped, _) = s.token(password_auth_by_id(&uid, "pw-123456", None)).await;
    s.patch(
        &format!("/v3/projects/{pid}"),
        &s.admin_token,
        json!({"project": {"enabled": false}}),
    )
    .await;
    assert_eq!(
        s.validate(&tok).await,
        StatusCode::NOT_FOUND,
        "project disabled"
    );
    assert_eq!(
        s.validate(&unscoped).await,
        StatusCode::OK,
        "unscoped tokens are unaffected"
    );

    // grant removed
    let (uid, pid) = member_on_project(&s, "u-grant").await;
    let (tok, _) = s
        .token(password_auth_by_id(
            &uid,
            "pw-123456",
            Some(project_scope(&pid)),
        ))
        .await;
    let (st, _) = s
        .delete(
            &format!("/v3/projects/{pid}/users/{uid}/roles/{member}"),
            &s.admin_token,
        )
        .await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    assert_eq!(
        s.validate(&tok).await,
        StatusCode::NOT_FOUND,
        "grant removed"
    );
    s.put(
        &format!("/v3/projects/{pid}/users/{uid}/roles/{member}"),
        &s.admin_token,
    )
    .await;
    // Roles are recomputed on every validation: granting again makes the token whole.
    assert_eq!(s.validate(&tok).await, StatusCode::OK);
    // A new login right away works too.
    let (fresh, _) = s
        .token(password_auth_by_id(
            &uid,
            "pw-123456",
            Some(project_scope(&pid)),
        ))
        .await;
    assert_eq!(s.validate(&fresh).await, StatusCode::OK);

    // removed from the group that gave it its role
    let (uid, pid) = member_on_project(&s, "u-group").await;
    let g = s.create("groups", "group", json!({"name": "grp"})).await;
    let gid = g["id"].as_str().unwrap();
    s.put(&format!("/v3/groups/{gid}/users/{uid}"), &s.admin_token)
        .await;
    let (tok, _) = s
        .token(password_auth_by_id(
            &uid,
            "pw-123456",
            Some(project_scope(&pid)),
        ))
        .await;
    assert_eq!(
        s.delete(&format!("/v3/groups/{gid}/users/{uid}"), &s.admin_token)
            .await
            .0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        s.validate(&tok).await,
        StatusCode::NOT_FOUND,
        "group membership removed"
    );

    // domain disabled
    let d = s
        .create("domains", "domain", json!({"name": "dom-x"}))
        .await;
    let did = d["id"].as_str().unwrap();
    let p = s
        .create(
            "projects",
            "project",
            json!({"name": "px", "domain_id": did}),
        )
        .await;
    let u = s
        .create(
            "users",
            "user",
            json!({"name": "ux", "domain_id": did, "password": "pw-123456"}),
        )
        .await;
    let (pid, uid) = (p["id"].as_str().unwrap(), u["id"].as_str().unwrap());
    s.put(
        &format!("/v3/projects/{pid}/users/{uid}/roles/{member}"),
        &s.admin_token,
    )
    .await;
    let (tok, _) = s
        .token(password_auth_by_id(
            uid,
            "pw-123456",
            Some(project_scope(pid)),
        ))
        .await;
    s.patch(
        &format!("/v3/domains/{did}"),
        &s.admin_token,
        json!({"domain": {"enabled": false}}),
    )
    .await;
    assert_eq!(
        s.validate(&tok).await,
        StatusCode::NOT_FOUND,
        "domain disabled"
    );
    let (st, _, _) = s
        .authenticate(password_auth_by_id(uid, "pw-123456", None))
        .await;
    assert_eq!(
        st,
        StatusCode::UNAUTHORIZED,
        "users of a disabled domain cannot log in"
    );
}

#[tokio::test]
async fn authentication_failures_are_401_and_generic() {
    let s = TestServer::start().await;
    let (uid, pid) = member_on_project(&s, "frank").await;
    for body in [
        password_auth_by_id(&uid, "wrong", None),
        password_auth_by_id("no-such-user", "pw-123456", None),
        password_auth_by_name("frank", "NoSuchDomain", "pw-123456", None),
        password_auth_by_id(&uid, "pw-123456", Some(project_scope("no-such-project"))),
        json!({"auth": {"identity": {"methods": [], "password": {"user": {"id": uid, "password": "pw-123456"}}}}}),
        json!({"auth": {"identity": {"methods": ["totp-unknown"]}}}),
    ] {
        let (st, id, b) = s.authenticate(body).await;
        assert_eq!(st, StatusCode::UNAUTHORIZED, "{b}");
        assert!(id.is_none());
        assert_eq!(b["error"]["title"], json!("Unauthorized"));
    }
    // Malformed requests are 400.
    for body in [
        json!({}),
        json!({"auth": {}}),
        json!({"auth": {"identity": {"methods": ["password"]}}}),
        json!({"auth": {"identity": {"methods": ["password"], "password": {"user": {"name": "frank", "password": "x"}}}}}),
        json!({"auth": {"identity": {"methods": ["password"], "password": {"user": {"id": uid, "password": 5}}}}}),
        json!({"auth": {"identity": {"methods": ["token"], "token": {}}}}),
        json!({"auth": {"identity": {"methods": ["password"], "password": {"user": {"id": uid, "password": "pw-123456"}}}, "scope": {"project": {"id": pid}, "domain": {"id": "default"}}}}),
    ] {
        let (st, _, b) = s.authenticate(body.clone()).await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{body} → {b}");
        assert_eq!(b["error"]["code"], json!(400));
    }
}

#[tokio::test]
async fn expired_tokens_and_allow_expired() {
    let s = InProcess::start_with("[token]\nexpiration = 2\n").await;
    let (uid, pid) = member_on_project(&s, "gina").await;
    let (tok, _) = s
        .token(password_auth_by_id(
            &uid,
            "pw-123456",
            Some(project_scope(&pid)),
        ))
        .await;
    assert_eq!(s.validate(&tok).await, StatusCode::OK);
    s.advance(1);
    assert_eq!(s.validate(&tok).await, StatusCode::OK, "not yet expired");
    s.advance(2);
    let admin = s.admin_project_token().await;
    let get = |q: &'static str| {
        let (s, admin, tok) = (&s, admin.clone(), tok.clone());
        async move {
            let headers = [
                ("X-Auth-Token", admin.as_str()),
                ("X-Subject-Token", tok.as_str()),
            ];
            s.exchange(Method::GET, &format!("/v3/auth/tokens{q}"), &headers, None)
                .await
                .0
        }
    };
    assert_eq!(get("").await, StatusCode::NOT_FOUND);
    assert_eq!(get("?allow_expired=1").await, StatusCode::OK);
    let (st, _) = s.get("/v3/auth/projects", &tok).await;
    assert_eq!(
        st,
        StatusCode::UNAUTHORIZED,
        "an expired token does not authenticate"
    );
}

#[tokio::test]
async fn auth_catalog_projects_domains_system() {
    let s = TestServer::start().await;
    let (uid, pid) = member_on_project(&s, "hank").await;
    let (tok, _) = s
        .token(password_auth_by_id(
            &uid,
            "pw-123456",
            Some(project_scope(&pid)),
        ))
        .await;
    let (st, v) = s.get("/v3/auth/catalog", &tok).await;
    assert_eq!(st, StatusCode::OK);
    assert!(v["catalog"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c["type"] == "identity"));
    let (_, v) = s.get("/v3/auth/projects", &tok).await;
    let ids: Vec<&str> = v["projects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec![pid.as_str()]);
    let (_, v) = s.get("/v3/auth/domains", &tok).await;
    assert_eq!(v["domains"], json!([]));
    let (_, v) = s.get("/v3/auth/system", &tok).await;
    assert_eq!(v["system"], json!([]));
    let (_, v) = s.get("/v3/auth/system", &s.admin_token).await;
    assert_eq!(v["system"], json!([{"all": true}]));
    let (unscoped, _) = s.token(password_auth_by_id(&uid, "pw-123456", None)).await;
    let (st, _) = s.get("/v3/auth/catalog", &unscoped).await;
    assert_eq!(st, StatusCode::FORBIDDEN);
}
