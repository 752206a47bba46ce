//! Application credentials: creation rules, authentication by id and by name, what their
//! tokens carry, and every way they stop working.

use limen_tests::*;
use reqwest::StatusCode;
use serde_json::{json, Value};

fn id(v: &Value) -> String {
    v["id"].as_str().unwrap().to_string()
}

/// A user with member (and so reader) on a project; returns (user id, project id, token).
async fn member(s: &TestServer) -> (String, String, String) {
    let p = s
        .create(
            "projects",
            "project",
            json!({"name": "ac-p", "domain_id": "default"}),
        )
        .await;
    let (user_id, tok) = s.new_member("ac-u", &id(&p)).await;
    (user_id, id(&p), tok)
}

fn app_cred_auth(cred_id: &str, secret: &str) -> Value {
    json!({"auth": {"identity": {"methods": ["application_credential"], "application_credential": {"id": cred_id, "secret": secret}}}})
}

#[tokio::test]
async fn create_and_authenticate() {
    let s = TestServer::start().await;
    let (uid, pid, tok) = member(&s).await;
    let path = format!("/v3/users/{uid}/application_credentials");
    let (st, v) = s.post(&path, &tok, json!({"application_credential": {"name": "ci", "roles": [{"name": "reader"}], "access_rules": [{"service": "compute", "path": "/v2.1/servers", "method": "GET"}]}})).await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    let c = &v["application_credential"];
    let secret = c["secret"].as_str().unwrap().to_string();
    assert!(secret.len() >= 64);
    assert_eq!(c["project_id"], json!(pid));
    assert_eq!(c["unrestricted"], json!(false));
    assert_eq!(c["roles"].as_array().unwrap().len(), 1);
    assert_eq!(c["access_rules"][0]["service"], json!("compute"));
    let cid = id(c);
    // The secret is shown once only.
    let (_, got) = s.get(&format!("{path}/{cid}"), &tok).await;
    assert!(got["application_credential"].get("secret").is_none());
    let (_, listed) = s.get(&format!("{path}?name=ci"), &tok).await;
    assert_eq!(
        listed["application_credentials"].as_array().unwrap().len(),
        1
    );
    // Duplicate names are a conflict.
    assert_eq!(
        s.post(
            &path,
            &tok,
            json!({"application_credential": {"name": "ci"}})
        )
        .await
        .0,
        StatusCode::CONFLICT
    );

    // By id and secret.
    let (ac_tok, body) = s.token(app_cred_auth(&cid, &secret)).await;
    let t = &body["token"];
    assert_eq!(t["methods"], json!(["application_credential"]));
    assert_eq!(t["project"]["id"], json!(pid));
    assert_eq!(
        t["roles"].as_array().unwrap().len(),
        1,
        "only the credential's roles"
    );
    assert_eq!(t["roles"][0]["name"], json!("reader"));
    assert_eq!(t["application_credential"]["id"], json!(cid));
    assert_eq!(t["application_credential"]["restricted"], json!(true));
    assert_eq!(
        t["application_credential"]["access_rules"][0]["method"],
        json!("GET")
    );
    // Its access rules show to a validator that enforces them; to others it is unknown.
    assert_eq!(s.validate(&ac_tok).await, StatusCode::NOT_FOUND);
    let validated = s
        .http
        .get(s.url("/v3/auth/tokens"))
        .header("X-Auth-Token", &s.admin_token)
        .header("X-Subject-Token", &ac_tok)
        .header("OpenStack-Identity-Access-Rules", "1.0")
        .send()
        .await
        .unwrap();
    assert_eq!(validated.status(), StatusCode::OK);
    // By name and user (by id and by name + domain).
    for user in [
        json!({"id": uid}),
        json!({"name": "ac-u", "domain": {"name": "Default"}}),
    ] {
        let body = json!({"auth": {"identity": {"methods": ["application_credential"], "application_credential": {"name": "ci", "user": user, "secret": secret}}}});
        assert_eq!(s.authenticate(body).await.0, StatusCode::CREATED);
    }
    // Wrong secret, unknown credential, other scope: 401.
    assert_eq!(
        s.authenticate(app_cred_auth(&cid, "wrong")).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        s.authenticate(app_cred_auth("nope", &secret)).await.0,
        StatusCode::UNAUTHORIZED
    );
    let mut scoped = app_cred_auth(&cid, &secret);
    scoped["auth"]["scope"] = json!({"domain": {"id": "default"}});
    assert_eq!(s.authenticate(scoped).await.0, StatusCode::UNAUTHORIZED);

    // This credential's token cannot make more credentials: its access rules (compute
    // only) keep it off the identity API altogether.
    assert_eq!(
        s.post(
            &path,
            &ac_tok,
            json!({"application_credential": {"name": "more"}})
        )
        .await
        .0,
        StatusCode::UNAUTHORIZED
    );
    // Without access rules, a restricted credential's token still cannot.
    let (_, plain_tok) = s.application_credential_token(&uid, &tok, "plain").await;
    assert_eq!(
        s.post(
            &path,
            &plain_tok,
            json!({"application_credential": {"name": "more"}})
        )
        .await
        .0,
        StatusCode::FORBIDDEN
    );
    // Nobody makes credentials for someone else, and roles must be held.
    assert_eq!(
        s.post(
            &path,
            &s.admin_token,
            json!({"application_credential": {"name": "x"}})
        )
        .await
        .0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        s.post(
            &path,
            &tok,
            json!({"application_credential": {"name": "x", "roles": [{"name": "admin"}]}})
        )
        .await
        .0,
        StatusCode::FORBIDDEN
    );

    // Access rules belong to the user; one in use cannot go.
    let (_, rules) = s.get(&format!("/v3/users/{uid}/access_rules"), &tok).await;
    let rule_id = rules["access_rules"][0]["id"].as_str().unwrap().to_string();
    assert_eq!(
        s.delete(&format!("/v3/users/{uid}/access_rules/{rule_id}"), &tok)
            .await
            .0,
        StatusCode::FORBIDDEN
    );

    // Deleting the credential kills its tokens, then the rule can go.
    assert_eq!(
        s.delete(&format!("{path}/{cid}"), &tok).await.0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(s.validate(&ac_tok).await, StatusCode::NOT_FOUND);
    assert_eq!(
        s.authenticate(app_cred_auth(&cid, &secret)).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        s.delete(&format!("/v3/users/{uid}/access_rules/{rule_id}"), &tok)
            .await
            .0,
        StatusCode::NO_CONTENT
    );
}

#[tokio::test]
async fn lost_roles_expiry_and_unrestricted() {
    let s = TestServer::start().await;
    let (uid, pid, tok) = member(&s).await;
    let path = format!("/v3/users/{uid}/application_credentials");
    // Expiry caps the token's lifetime.
    let soon = "2099-01-01T00:00:00Z";
    let (_, v) = s.post(&path, &tok, json!({"application_credential": {"name": "capped", "expires_at": soon, "unrestricted": true}})).await;
    let (cid, secret) = (
        id(&v["application_credential"]),
        v["application_credential"]["secret"]
            .as_str()
            .unwrap()
            .to_string(),
    );
    assert_eq!(
        v["application_credential"]["expires_at"],
        json!("2099-01-01T00:00:00.000000")
    );
    let (ac_tok, _) = s.token(app_cred_auth(&cid, &secret)).await;
    // An unrestricted credential may create another.
    assert_eq!(
        s.post(
            &path,
            &ac_tok,
            json!({"application_credential": {"name": "child"}})
        )
        .await
        .0,
        StatusCode::CREATED
    );
    // Past expiry is refused.
    assert_eq!(
        s.post(
            &path,
            &tok,
            json!({"application_credential": {"name": "old", "expires_at": "2001-01-01T00:00:00Z"}})
        )
        .await
        .0,
        StatusCode::BAD_REQUEST
    );
    // Losing the role on the project ends the credential.
    let member_role = s.role_id("member").await;
    s.delete(
        &format!("/v3/projects/{pid}/users/{uid}/roles/{member_role}"),
        &s.admin_token,
    )
    .await;
    assert_eq!(s.validate(&ac_tok).await, StatusCode::NOT_FOUND);
    assert_eq!(
        s.authenticate(app_cred_auth(&cid, &secret)).await.0,
        StatusCode::UNAUTHORIZED
    );
    // ...for good: granting the role again does not bring it (or its tokens) back.
    s.put(
        &format!("/v3/projects/{pid}/users/{uid}/roles/{member_role}"),
        &s.admin_token,
    )
    .await;
    assert_eq!(
        s.authenticate(app_cred_auth(&cid, &secret)).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(s.validate(&ac_tok).await, StatusCode::NOT_FOUND);
    let (_, listed) = s.get(&path, &s.admin_project_token().await).await;
    assert!(listed["application_credentials"]
        .as_array()
        .unwrap()
        .iter()
        .all(|c| c["name"] != "capped"));
    // Deleting the user removes its credentials.
    let (tok, _) = s
        .token(password_auth_by_id(
            &uid,
            "pw-123456",
            Some(project_scope(&pid)),
        ))
        .await;
    let (_, v) = s
        .post(
            &path,
            &tok,
            json!({"application_credential": {"name": "last"}}),
        )
        .await;
    let (cid, secret) = (
        id(&v["application_credential"]),
        v["application_credential"]["secret"]
            .as_str()
            .unwrap()
            .to_string(),
    );
    assert_eq!(
        s.authenticate(app_cred_auth(&cid, &secret)).await.0,
        StatusCode::CREATED
    );
    s.delete(&format!("/v3/users/{uid}"), &s.admin_token).await;
    assert_eq!(
        s.authenticate(app_cred_auth(&cid, &secret)).await.0,
        StatusCode::UNAUTHORIZED
    );
}

/// `GET` or `HEAD /v3/auth/tokens` of `subject` by `caller`, with the access-rules
/// version header if `rules_version` is given: the status and the body.
async fn validate_with(
    s: &TestServer,
    method: reqwest::Method,
    caller: &str,
    subject: &str,
    rules_version: Option<&str>,
) -> (StatusCode, Value) {
    let mut req = s
        .http
        .request(method, s.url("/v3/auth/tokens"))
        .header("X-Auth-Token", caller)
        .header("X-Subject-Token", subject);
    if let Some(v) = rules_version {
        req = req.header("OpenStack-Identity-Access-Rules", v);
    }
    let resp = req.send().await.expect("validate");
    let status = resp.status();
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// The admin's own credential with `rules`, and a token from it.
async fn admin_credential(s: &TestServer, name: &str, rules: Value) -> (Value, String) {
    let admin_token = s.admin_project_token().await;
    let (st, me) = validate_with(s, reqwest::Method::GET, &admin_token, &admin_token, None).await;
    assert_eq!(st, StatusCode::OK, "{me}");
    let admin_id = me["token"]["user"]["id"].as_str().unwrap().to_string();
    let (st, v) = s
        .post(
            &format!("/v3/users/{admin_id}/application_credentials"),
            &admin_token,
            json!({"application_credential": {"name": name, "access_rules": rules}}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    let c = v["application_credential"].clone();
    let (tok, _) = s
        .token(app_cred_auth(&id(&c), c["secret"].as_str().unwrap()))
        .await;
    (c, tok)
}

#[tokio::test]
async fn access_rules_hold_on_limens_own_api() {
    let s = TestServer::start().await;
    // The admin's credential for listing servers on compute, nothing else.
    let compute = json!([{"service": "compute", "path": "/v2.1/servers", "method": "GET"}]);
    let (cred, tok) = admin_credential(&s, "servers", compute).await;
    let admin_id = cred["user_id"].as_str().unwrap().to_string();
    let new_user = json!({"user": {"name": "made-by-a-compute-credential"}});
    let (st, v) = s.post("/v3/users", &tok, new_user.clone()).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED, "{v}");
    for path in [
        "/v3/users",
        "/v3/projects",
        &format!("/v3/users/{admin_id}"),
    ] {
        assert_eq!(
            s.get(path, &tok).await.0,
            StatusCode::UNAUTHORIZED,
            "{path}"
        );
    }
    // Keystone's exception: the token may validate (itself, here).
    let (st, v) = validate_with(&s, reqwest::Method::GET, &tok, &tok, Some("1.0")).await;
    assert_eq!(st, StatusCode::OK, "{v}");

    // Validation shows the rules only to a validator that enforces them.
    let admin = &s.admin_token;
    for method in [reqwest::Method::GET, reqwest::Method::HEAD] {
        for version in [None, Some("0.9"), Some("junk")] {
            let (st, _) = validate_with(&s, method.clone(), admin, &tok, version).await;
            assert_eq!(st, StatusCode::NOT_FOUND, "{method} with {version:?}");
        }
        let (st, _) = validate_with(&s, method.clone(), admin, &tok, Some("1.0")).await;
        assert_eq!(st, StatusCode::OK, "{method}");
    }
    let (_, v) = validate_with(&s, reqwest::Method::GET, admin, &tok, Some("1.0")).await;
    let rules = &v["token"]["application_credential"]["access_rules"];
    assert_eq!(rules.as_array().map(Vec::len), Some(1), "{v}");
    assert_eq!(rules[0]["service"], json!("compute"));
    assert_eq!(rules[0]["path"], json!("/v2.1/servers"));
    assert_eq!(rules[0]["method"], json!("GET"));
    assert!(rules[0]["id"].is_string(), "{v}");

    // No way around them: no new token from it (rescoping), ...
    let (st, _, v) = s.authenticate(token_auth(&tok, None)).await;
    assert_eq!(st, StatusCode::NOT_FOUND, "{v}");

    // An identity rule opens exactly what it names.
    let identity = json!([
        {"service": "identity", "path": "/v3/users/{user_id}", "method": "GET"},
        {"service": "identity", "path": "/v3/projects/**", "method": "GET"},
    ]);
    let (_, tok2) = admin_credential(&s, "read-users", identity).await;
    assert_eq!(
        s.get(&format!("/v3/users/{admin_id}"), &tok2).await.0,
        StatusCode::OK
    );
    let (st, v) = s.get("/v3/projects/nope", &tok2).await;
    assert_ne!(st, StatusCode::UNAUTHORIZED, "{v}");
    for (method, path) in [
        (reqwest::Method::GET, "/v3/users".to_string()),
        (
            reqwest::Method::GET,
            format!("/v3/users/{admin_id}/projects"),
        ),
        (reqwest::Method::GET, "/v3/projects".to_string()),
        (reqwest::Method::PATCH, format!("/v3/users/{admin_id}")),
    ] {
        let (st, v) = s
            .call(
                method.clone(),
                &path,
                Some(&tok2),
                Some(json!({"user": {}})),
            )
            .await;
        assert_eq!(st, StatusCode::UNAUTHORIZED, "{method} {path}: {v}");
    }
    let (st, v) = s.post("/v3/users", &tok2, new_user).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED, "{v}");

    // A limited token can still be revoked.
    assert_eq!(s.revoke(&tok).await, StatusCode::NO_CONTENT);
    let (st, _) = validate_with(&s, reqwest::Method::GET, admin, &tok, Some("1.0")).await;
    assert_eq!(st, StatusCode::NOT_FOUND);
}
