//! Regression tests for the OSSA-2026-015 class: policy targets are never taken from
//! request bodies, nobody acts through another user's application credential, and
//! exchanging a token never extends its lifetime.

use limen_tests::in_process::InProcess;
use limen_tests::*;
use reqwest::StatusCode;
use serde_json::{json, Value};

fn id(v: &Value) -> String {
    v["id"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn policy_targets_come_from_storage_not_the_body() {
    let s = TestServer::start().await;
    let (a, a_tok) = s.domain_manager("dom-a").await;
    let (b, _) = s.domain_manager("dom-b").await;
    let victim = s
        .create(
            "users",
            "user",
            json!({"name": "victim", "domain_id": b, "password": "pw-123456"}),
        )
        .await;
    let b_project = s
        .create(
            "projects",
            "project",
            json!({"name": "b-proj", "domain_id": b}),
        )
        .await;
    // Naming the caller's own domain in the body does not make another domain's user its own.
    let (st, _) = s
        .patch(
            &format!("/v3/users/{}", id(&victim)),
            &a_tok,
            json!({"user": {"domain_id": a, "enabled": false}}),
        )
        .await;
    assert!(
        st == StatusCode::FORBIDDEN || st == StatusCode::BAD_REQUEST,
        "{st}"
    );
    let (st, _) = s
        .patch(
            &format!("/v3/users/{}", id(&victim)),
            &a_tok,
            json!({"user": {"password": "taken-over-1"}}),
        )
        .await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    let (st, _) = s
        .patch(
            &format!("/v3/projects/{}", id(&b_project)),
            &a_tok,
            json!({"project": {"domain_id": a, "name": "stolen"}}),
        )
        .await;
    assert!(
        st == StatusCode::FORBIDDEN || st == StatusCode::BAD_REQUEST,
        "{st}"
    );
    // The victim is untouched.
    let (_, v) = s
        .get(&format!("/v3/users/{}", id(&victim)), &s.admin_token)
        .await;
    assert_eq!(v["user"]["enabled"], json!(true));
    assert_eq!(
        s.authenticate(password_auth_by_id(&id(&victim), "pw-123456", None))
            .await
            .0,
        StatusCode::CREATED
    );
    let (_, p) = s
        .get(&format!("/v3/projects/{}", id(&b_project)), &s.admin_token)
        .await;
    assert_eq!(p["project"]["name"], json!("b-proj"));
    // A project whose parent lies in another domain cannot be smuggled into it.
    let (st, _) = s
        .post(
            "/v3/projects",
            &a_tok,
            json!({"project": {"name": "child", "domain_id": a, "parent_id": id(&b_project)}}),
        )
        .await;
    assert!(
        st == StatusCode::BAD_REQUEST || st == StatusCode::FORBIDDEN,
        "{st}"
    );
    // Grants read the role from storage: an allow-listed name in a query string changes nothing.
    let admin = s.role_id("admin").await;
    let a_user = s
        .create("users", "user", json!({"name": "a-user", "domain_id": a}))
        .await;
    let a_proj = s
        .create(
            "projects",
            "project",
            json!({"name": "a-proj", "domain_id": a}),
        )
        .await;
    let (st, _) = s
        .put(
            &format!(
                "/v3/projects/{}/users/{}/roles/{admin}?name=member",
                id(&a_proj),
                id(&a_user)
            ),
            &a_tok,
        )
        .await;
    assert_eq!(st, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn nobody_acts_through_someone_elses_application_credential() {
    let s = TestServer::start().await;
    let p = s
        .create(
            "projects",
            "project",
            json!({"name": "shared", "domain_id": "default"}),
        )
        .await;
    let member = s.role_id("member").await;
    let mut users = Vec::new();
    for name in ["owner", "intruder"] {
        let u = s
            .create(
                "users",
                "user",
                json!({"name": name, "password": "pw-123456"}),
            )
            .await;
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
        users.push((id(&u), tok));
    }
    let (owner, owner_tok) = &users[0];
    let (intruder, intruder_tok) = &users[1];
    let (_, v) = s
        .post(
            &format!("/v3/users/{owner}/application_credentials"),
            owner_tok,
            json!({"application_credential": {"name": "ci"}}),
        )
        .await;
    let cred = &v["application_credential"];
    let secret = cred["secret"].as_str().unwrap();
    // The intruder can neither see, delete nor create the owner's credentials...
    for path in [
        format!("/v3/users/{owner}/application_credentials"),
        format!("/v3/users/{owner}/application_credentials/{}", id(cred)),
    ] {
        assert_eq!(
            s.get(&path, intruder_tok).await.0,
            StatusCode::FORBIDDEN,
            "{path}"
        );
    }
    assert_eq!(
        s.delete(
            &format!("/v3/users/{owner}/application_credentials/{}", id(cred)),
            intruder_tok
        )
        .await
        .0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        s.post(
            &format!("/v3/users/{owner}/application_credentials"),
            intruder_tok,
            json!({"application_credential": {"name": "x"}})
        )
        .await
        .0,
        StatusCode::FORBIDDEN
    );
    // ...nor reach the owner's credential through its own path,
    assert_eq!(
        s.get(
            &format!("/v3/users/{intruder}/application_credentials/{}", id(cred)),
            intruder_tok
        )
        .await
        .0,
        StatusCode::NOT_FOUND
    );
    // ...nor authenticate with it under its own name.
    let body = json!({"auth": {"identity": {"methods": ["application_credential"], "application_credential": {"name": "ci", "user": {"id": intruder}, "secret": secret}}}});
    assert_eq!(s.authenticate(body).await.0, StatusCode::UNAUTHORIZED);
    // The credential's token acts as the owner only, and cannot be turned into more.
    let (ac_tok, b) = s.token(json!({"auth": {"identity": {"methods": ["application_credential"], "application_credential": {"id": id(cred), "secret": secret}}}})).await;
    assert_eq!(b["token"]["user"]["id"], json!(owner));
    assert_eq!(
        s.authenticate(token_auth(&ac_tok, Some(project_scope(&id(&p)))))
            .await
            .0,
        StatusCode::FORBIDDEN
    );
    let trust = json!({"trust": {"trustor_user_id": owner, "trustee_user_id": intruder, "project_id": id(&p), "impersonation": true, "roles": [{"name": "member"}]}});
    assert_eq!(
        s.post("/v3/OS-TRUST/trusts", &ac_tok, trust).await.0,
        StatusCode::FORBIDDEN
    );
}

#[tokio::test]
async fn exchanging_tokens_never_extends_their_lifetime() {
    let s = InProcess::start_with("[token]\nexpiration = 60\n").await;
    let p = s
        .create(
            "projects",
            "project",
            json!({"name": "life", "domain_id": "default"}),
        )
        .await;
    let u = s
        .create(
            "users",
            "user",
            json!({"name": "life", "password": "pw-123456"}),
        )
        .await;
    let member = s.role_id("member").await;
    s.put(
        &format!("/v3/projects/{}/users/{}/roles/{member}", id(&p), id(&u)),
        &s.admin_token,
    )
    .await;
    let (first, fb) = s
        .token(password_auth_by_id(&id(&u), "pw-123456", None))
        .await;
    let expires = fb["token"]["expires_at"].clone();
    s.advance(1);
    let (second, sb) = s
        .token(token_auth(&first, Some(project_scope(&id(&p)))))
        .await;
    assert_eq!(sb["token"]["expires_at"], expires);
    s.advance(1);
    let (_, tb) = s.token(token_auth(&second, None)).await;
    assert_eq!(
        tb["token"]["expires_at"], expires,
        "a chain of exchanges keeps the first expiry"
    );
    // Trust and application-credential tokens are capped by their grant's own expiry.
    let soon = time_in(30);
    let (_, v) = s
        .post(
            &format!("/v3/users/{}/application_credentials", id(&u)),
            &second,
            json!({"application_credential": {"name": "short", "expires_at": soon}}),
        )
        .await;
    let (_, ab) = s.token(json!({"auth": {"identity": {"methods": ["application_credential"], "application_credential": {"id": id(&v["application_credential"]), "secret": v["application_credential"]["secret"]}}}})).await;
    assert!(ab["token"]["expires_at"].as_str().unwrap() <= soon.replace('Z', ".000000Z").as_str());
}

/// An ISO time `secs` from now, whole seconds, with `Z`.
fn time_in(secs: i64) -> String {
    let t = time::OffsetDateTime::now_utc() + time::Duration::seconds(secs);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}
