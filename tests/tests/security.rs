//! Keystone's `[security_compliance]` rules: lockout, password history, self-service
//! password change, expiry and first-use changes.

use limen_tests::in_process::InProcess;
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
    let s = InProcess::start().await;
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
    // `lockout_duration` is 5 seconds.
    s.advance(4);
    assert_eq!(
        s.authenticate(password_auth_by_id(uid, "right-pw-1", None))
            .await
            .0,
        StatusCode::UNAUTHORIZED,
        "still locked out"
    );
    s.advance(2);
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

/// RFC 6238 TOTP for a base32 secret at Unix time `t` (what an authenticator app shows).
fn totp_code(secret_b32: &str, t: u64) -> String {
    use hmac::{Hmac, Mac};
    let mut bits = 0u64;
    let mut n = 0;
    let mut key = Vec::new();
    for c in secret_b32.chars() {
        let v = match c {
            'A'..='Z' => c as u64 - 'A' as u64,
            '2'..='7' => c as u64 - '2' as u64 + 26,
            _ => continue,
        };
        bits = (bits << 5) | v;
        n += 5;
        if n >= 8 {
            n -= 8;
            key.push((bits >> n) as u8);
            bits &= (1 << n) - 1;
        }
    }
    let mut mac = Hmac::<sha1::Sha1>::new_from_slice(&key).unwrap();
    mac.update(&(t / 30).to_be_bytes());
    let h = mac.finalize().into_bytes();
    let o = (h[19] & 0xf) as usize;
    let code = u32::from_be_bytes([h[o] & 0x7f, h[o + 1], h[o + 2], h[o + 3]]) % 1_000_000;
    format!("{code:06}")
}

#[tokio::test]
async fn mfa_with_totp_and_auth_receipts() {
    let s = TestServer::start().await;
    let u = s
        .create(
            "users",
            "user",
            json!({"name": "mfa", "password": "pw-123456"}),
        )
        .await;
    let uid = u["id"].as_str().unwrap();
    let secret = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";
    let (st, _) = s
        .post(
            "/v3/credentials",
            &s.admin_token,
            json!({"credential": {"user_id": uid, "type": "totp", "blob": secret}}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED);
    let now = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
    };
    let totp_body = |code: String| json!({"auth": {"identity": {"methods": ["totp"], "totp": {"user": {"id": uid, "passcode": code}}}}});
    // Without rules, TOTP alone logs in; a wrong code does not.
    assert_eq!(
        s.authenticate(totp_body(totp_code(secret, now()))).await.0,
        StatusCode::CREATED
    );
    assert_eq!(
        s.authenticate(totp_body("000000".into())).await.0,
        StatusCode::UNAUTHORIZED
    );

    s.patch(&format!("/v3/users/{uid}"), &s.admin_token, json!({"user": {"options": {"multi_factor_auth_enabled": true, "multi_factor_auth_rules": [["password", "totp"]]}}})).await;
    // The password alone yields a receipt, not a token.
    let resp = s
        .send(
            Method::POST,
            "/v3/auth/tokens",
            None,
            Some(password_auth_by_id(uid, "pw-123456", None)),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert!(resp.headers().get("x-subject-token").is_none());
    let receipt = resp.headers()["openstack-auth-receipt"]
        .to_str()
        .unwrap()
        .to_string();
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["receipt"]["methods"], json!(["password"]));
    assert_eq!(body["required_auth_methods"], json!([["password", "totp"]]));
    // The receipt plus the second factor give the token.
    let resp = s
        .http
        .post(s.url("/v3/auth/tokens"))
        .header("Openstack-Auth-Receipt", &receipt)
        .json(&totp_body(totp_code(secret, now())))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    let body: serde_json::Value = resp.json().await.unwrap();
    let mut methods: Vec<String> =
        serde_json::from_value(body["token"]["methods"].clone()).unwrap();
    methods.sort();
    assert_eq!(methods, vec!["password", "totp"]);
    // A forged receipt or a wrong code does not.
    let resp = s
        .http
        .post(s.url("/v3/auth/tokens"))
        .header("Openstack-Auth-Receipt", "garbage")
        .json(&totp_body(totp_code(secret, now())))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let resp = s
        .http
        .post(s.url("/v3/auth/tokens"))
        .header("Openstack-Auth-Receipt", &receipt)
        .json(&totp_body("000000".into()))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    // Both factors in one request work directly.
    let both = json!({"auth": {"identity": {"methods": ["password", "totp"], "password": {"user": {"id": uid, "password": "pw-123456"}}, "totp": {"user": {"id": uid, "passcode": totp_code(secret, now())}}}}});
    assert_eq!(s.authenticate(both).await.0, StatusCode::CREATED);
    // Rules naming only unknown methods are ignored, as in Keystone.
    s.patch(
        &format!("/v3/users/{uid}"),
        &s.admin_token,
        json!({"user": {"options": {"multi_factor_auth_rules": [["kerberos-nonexistent"]]}}}),
    )
    .await;
    assert_eq!(
        s.authenticate(password_auth_by_id(uid, "pw-123456", None))
            .await
            .0,
        StatusCode::CREATED
    );
}

/// A proof is for the object the policy saw: a write given a proof checked against one
/// user (or project, domain, group) refuses to change another, whatever the handler did.
#[tokio::test]
async fn a_proof_checked_against_one_object_does_not_write_another() {
    let s = InProcess::start().await;
    let a = s.create("users", "user", json!({"name": "a"})).await;
    let b = s.create("users", "user", json!({"name": "b"})).await;
    let (a, b) = (a["id"].as_str().unwrap(), b["id"].as_str().unwrap());
    let admin = s
        .limen
        .token()
        .validate_token(&s.admin_token, false)
        .await
        .unwrap();
    let caller = limen_core::authz::Caller::new(admin, None);
    let proof_for_a = s
        .limen
        .authorize(
            &caller,
            "identity:delete_user",
            json!({"target": {"user": {"id": a}}, "user_id": a}),
        )
        .unwrap();
    let refused = s.limen.identity().delete_user(&proof_for_a, b).await;
    assert!(
        matches!(refused, Err(limen_core::CoreError::Forbidden(_))),
        "{refused:?}"
    );
    assert_eq!(
        s.get(&format!("/v3/users/{b}"), &s.admin_token).await.0,
        StatusCode::OK,
        "b is still there"
    );
    s.limen
        .identity()
        .delete_user(&proof_for_a, a)
        .await
        .unwrap();
    assert_eq!(
        s.get(&format!("/v3/users/{a}"), &s.admin_token).await.0,
        StatusCode::NOT_FOUND
    );
}
