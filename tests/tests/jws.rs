//! JWS tokens (`[token] provider = "jws"`): ES256 JWTs signed by the node's own key,
//! validated against every trusted public key; key rotation; and switching a running
//! cloud between Fernet and JWS without invalidating live tokens.

use limen_tests::*;
use reqwest::StatusCode;

fn with_tokens(provider: &str, accept: &[&str]) -> String {
    let accept: Vec<String> = accept.iter().map(|a| format!("{a:?}")).collect();
    format!(
        "{DEFAULT_CONFIG}\n[token]\nprovider = {provider:?}\naccept = [{}]\n",
        accept.join(", ")
    )
}

fn is_jws(token: &str) -> bool {
    token.split('.').count() == 3
}

async fn password_token(s: &TestServer) -> String {
    s.token(password_auth_by_name(
        "admin",
        "Default",
        ADMIN_PASSWORD,
        None,
    ))
    .await
    .0
}

#[tokio::test]
async fn jws_tokens_validate_rescope_revoke_and_survive_rotation() {
    let s = TestServer::start_with(&with_tokens("jws", &[])).await;
    assert!(
        is_jws(&s.admin_token),
        "bootstrap made JWS keys and the server issues JWS"
    );
    assert_eq!(s.validate(&s.admin_token).await, StatusCode::OK);

    // Rescoping, and the body of a JWS token, work as with Fernet.
    let unscoped = password_token(&s).await;
    let (scoped, body) = s
        .token(token_auth(
            &unscoped,
            Some(serde_json::json!({"system": {"all": true}})),
        ))
        .await;
    assert!(is_jws(&scoped));
    let mut methods: Vec<&str> = body["token"]["methods"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m.as_str().unwrap())
        .collect();
    methods.sort();
    assert_eq!(methods, ["password", "token"]);
    assert_eq!(body["token"]["system"], serde_json::json!({"all": true}));

    // A token with its claims changed, or signed by a key nobody trusts, is no token.
    let mut parts: Vec<String> = scoped.split('.').map(str::to_string).collect();
    parts[1] = parts[1].replacen('e', "f", 1);
    assert_eq!(s.validate(&parts.join(".")).await, StatusCode::NOT_FOUND);
    let stranger = TestServer::start_with(&with_tokens("jws", &[])).await;
    assert_eq!(
        s.validate(&stranger.admin_token).await,
        StatusCode::NOT_FOUND
    );

    // Revocation applies to JWS tokens as to any other.
    assert_eq!(s.revoke(&scoped).await, StatusCode::NO_CONTENT);
    assert_eq!(s.validate(&scoped).await, StatusCode::NOT_FOUND);

    // A new signing key: tokens of the old one stay valid, new ones use the new key.
    let before = password_token(&s).await;
    let out = s.limen(&["keys", "jws", "rotate"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    tokio::time::sleep(std::time::Duration::from_millis(1200)).await;
    let after = password_token(&s).await;
    assert_eq!(s.validate(&before).await, StatusCode::OK);
    assert_eq!(s.validate(&after).await, StatusCode::OK);
    let public = s.dir.path().join("jws-keys/public");
    assert_eq!(std::fs::read_dir(&public).unwrap().count(), 2);
}

#[tokio::test]
async fn switching_between_fernet_and_jws_keeps_live_tokens() {
    let mut s = TestServer::start().await;
    let fernet_token = password_token(&s).await;
    assert!(!is_jws(&fernet_token));

    let out = s.limen(&["keys", "jws", "setup"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Step 1: accept both, still issue Fernet.
    s.restart_with_config(&with_tokens("fernet", &["fernet", "jws"]));
    assert_eq!(s.validate(&fernet_token).await, StatusCode::OK);
    assert!(!is_jws(&password_token(&s).await));

    // Step 2: issue JWS; Fernet tokens from before keep validating.
    s.restart_with_config(&with_tokens("jws", &["fernet"]));
    let jws_token = password_token(&s).await;
    assert!(is_jws(&jws_token));
    assert_eq!(s.validate(&fernet_token).await, StatusCode::OK);
    assert_eq!(s.validate(&jws_token).await, StatusCode::OK);

    // Step 3: once the Fernet tokens have expired, stop accepting Fernet.
    s.restart_with_config(&with_tokens("jws", &[]));
    // (The harness's own admin token was Fernet too.)
    assert_eq!(s.validate(&jws_token).await, StatusCode::UNAUTHORIZED);
    s.admin_token = s.admin_project_token().await;
    assert_eq!(s.validate(&fernet_token).await, StatusCode::NOT_FOUND);
    assert_eq!(s.validate(&jws_token).await, StatusCode::OK);

    // And back: JWS tokens stay valid while Fernet is issued again.
    s.restart_with_config(&with_tokens("fernet", &["jws"]));
    assert!(!is_jws(&password_token(&s).await));
    assert_eq!(s.validate(&jws_token).await, StatusCode::OK);
}

#[tokio::test]
async fn jws_without_keys_is_a_clear_start_error() {
    let s = TestServer::start().await;
    std::fs::write(&s.config_path, with_tokens("jws", &[])).unwrap();
    let out = s.limen_unchecked(&["serve", "--listen", "127.0.0.1:0"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("limen keys jws setup"), "{err}");
}
