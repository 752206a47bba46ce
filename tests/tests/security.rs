//! Keystone's `[security_compliance]` rules: lockout, password history, self-service
//! password change, expiry and first-use changes.

use limen_tests::*;
use reqwest::{Method, StatusCode};
use serde_json::json;

async fn change(s: &TestServer, uid: &str, old: &str, new: &str) -> StatusCode {
    s.call(
        Method::POST,
        &format!("/v3/users/{uid}/password"),
        None,
        Some(json!({"user": {"original_password": old, "password": new}})),
    )
    .await
    .0
}

#[tokio::test]
async fn lockout_after_failures_then_unlock() {
    let s = TestServer::start().await;
    let u = s
        .create(
            "users",
            "user",
            json!({"name": "lock", "password": "right-pw-1"}),
        )
        .await;
    let uid = u["id"].as_str().unwrap();
    for _ in 0..2 {
        assert_eq!(
            s.authenticate(password_auth_by_id(uid, "wrong", None))
                .await
                .0,
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(
        s.authenticate(password_auth_by_id(uid, "right-pw-1", None))
            .await
            .0,
        StatusCode::UNAUTHORIZED,
        "locked out"
    );
    tokio::time::sleep(std::time::Duration::from_secs(6)).await;
    assert_eq!(
        s.authenticate(password_auth_by_id(uid, "right-pw-1", None))
            .await
            .0,
        StatusCode::CREATED,
        "unlocked after lockout_duration"
    );
    // A user that ignores lockout never locks.
    let v = s.create("users", "user", json!({"name": "nolock", "password": "right-pw-1", "options": {"ignore_lockout_failure_attempts": true}})).await;
    let vid = v["id"].as_str().unwrap();
    for _ in 0..3 {
        s.authenticate(password_auth_by_id(vid, "wrong", None))
            .await;
    }
    assert_eq!(
        s.authenticate(password_auth_by_id(vid, "right-pw-1", None))
            .await
            .0,
        StatusCode::CREATED
    );
}

#[tokio::test]
async fn password_history_and_self_service() {
    let s = TestServer::start().await;
    let u = s
        .create(
            "users",
            "user",
            json!({"name": "hist", "password": "pw-one-1"}),
        )
        .await;
    let uid = u["id"].as_str().unwrap();
    assert_eq!(
        change(&s, uid, "wrong", "pw-two-2").await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        change(&s, uid, "pw-one-1", "pw-two-2").await,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        change(&s, uid, "pw-two-2", "pw-two-2").await,
        StatusCode::BAD_REQUEST,
        "the current password"
    );
    assert_eq!(
        change(&s, uid, "pw-two-2", "pw-one-1").await,
        StatusCode::BAD_REQUEST,
        "the one before"
    );
    assert_eq!(
        change(&s, uid, "pw-two-2", "pw-three-3").await,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        change(&s, uid, "pw-three-3", "pw-one-1").await,
        StatusCode::NO_CONTENT,
        "three back is allowed"
    );
    // A token issued right after the change is valid (not caught by the change's own
    // revocation within the same second).
    let (fresh, _) = s.token(password_auth_by_id(uid, "pw-one-1", None)).await;
    assert_eq!(s.validate(&fresh).await, StatusCode::OK);
    // An administrator's reset is not bound by history.
    let (st, _) = s
        .patch(
            &format!("/v3/users/{uid}"),
            &s.admin_token,
            json!({"user": {"password": "pw-one-1"}}),
        )
        .await;
    assert_eq!(st, StatusCode::OK);
    // Unknown users get the same 401 as a wrong password.
    assert_eq!(
        change(&s, "nobody", "x", "y").await,
        StatusCode::UNAUTHORIZED
    );
    let (st, _) = s
        .call(
            Method::POST,
            &format!("/v3/users/{uid}/password"),
            None,
            Some(json!({"user": {"password": "x"}})),
        )
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn expiry_first_use_and_regex() {
    let config = format!(
        "{DEFAULT_CONFIG}password_expires_days = 90\nchange_password_upon_first_use = true\npassword_regex = '^(?=.*\\d)(?=.*[a-zA-Z]).{{7,}}$'\npassword_regex_description = 'at least 7 characters with a letter and a digit'\n"
    );
    let s = TestServer::start_with(&config).await;
    let (st, v) = s
        .post(
            "/v3/users",
            &s.admin_token,
            json!({"user": {"name": "short", "password": "abc"}}),
        )
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert!(v["error"]["message"]
        .as_str()
        .unwrap()
        .contains("with a letter and a digit"));
    let (st, _) = s
        .post(
            "/v3/users",
            &s.admin_token,
            json!({"user": {"name": "nodigit", "password": "abcdefghij"}}),
        )
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "look-ahead rules apply");
    let u = s
        .create(
            "users",
            "user",
            json!({"name": "fresh", "password": "initial-pw1"}),
        )
        .await;
    let uid = u["id"].as_str().unwrap();
    assert!(
        u["password_expires_at"].is_string(),
        "first-use password expires at once"
    );
    let (st, _, b) = s
        .authenticate(password_auth_by_id(uid, "initial-pw1", None))
        .await;
    assert_eq!(st, StatusCode::UNAUTHORIZED, "must change first: {b}");
    assert!(b["error"]["message"].as_str().unwrap().contains("expired"));
    assert_eq!(
        change(&s, uid, "initial-pw1", "my-own-password1").await,
        StatusCode::NO_CONTENT
    );
    let (_, b) = s
        .token(password_auth_by_id(uid, "my-own-password1", None))
        .await;
    let exp = b["token"]["user"]["password_expires_at"].as_str().unwrap();
    assert!(exp.len() == 26 && !exp.ends_with('Z'), "{exp}");
    // Users exempt from first-use change can log in directly.
    let e = s.create("users", "user", json!({"name": "exempt", "password": "initial-pw1", "options": {"ignore_change_password_upon_first_use": true}})).await;
    assert_eq!(
        s.authenticate(password_auth_by_id(
            e["id"].as_str().unwrap(),
            "initial-pw1",
            None
        ))
        .await
        .0,
        StatusCode::CREATED
    );
}

#[tokio::test]
async fn failed_logins_are_rate_limited_per_address() {
    let s = TestServer::start_with(&format!(
        "{DEFAULT_CONFIG}\n[auth]\nfailed_logins_per_minute = 3\n"
    ))
    .await;
    let u = s.create("users", "user", json!({"name": "guess", "password": "right-pw-1", "options": {"ignore_lockout_failure_attempts": true}})).await;
    let uid = u["id"].as_str().unwrap();
    for _ in 0..3 {
        assert_eq!(
            s.authenticate(password_auth_by_id(uid, "wrong", None))
                .await
                .0,
            StatusCode::UNAUTHORIZED
        );
    }
    let resp = s
        .send(
            Method::POST,
            "/v3/auth/tokens",
            None,
            Some(password_auth_by_id(uid, "right-pw-1", None)),
        )
        .await;
    assert_eq!(
        resp.status(),
        StatusCode::TOO_MANY_REQUESTS,
        "even a right password waits"
    );
    let wait: u64 = resp.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=20).contains(&wait), "{wait}");
    let v: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(v["error"]["code"], json!(429));
    assert_eq!(
        change(&s, uid, "wrong", "x-new-pw-1").await,
        StatusCode::TOO_MANY_REQUESTS
    );
    // Token validation and other APIs are not affected.
    assert_eq!(s.get("/v3/users", &s.admin_token).await.0, StatusCode::OK);
}
