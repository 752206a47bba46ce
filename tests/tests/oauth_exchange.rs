//! Token exchange (RFC 8693): a Keystone token becomes a short-lived JWT for one
//! audience (a cluster) that verifies against the published keys, names the person, the
//! project and the roles, and never outlives the token it came from; every refusal is
//! the RFC's error.

use limen_tests::oauth::*;
use reqwest::StatusCode;
use serde_json::{json, Value};

fn error_of(body: &Value) -> &str {
    body["error"].as_str().unwrap_or("")
}

#[tokio::test]
async fn a_keystone_token_becomes_a_cluster_token() {
    // Longer than a Keystone token lives, so the subject's expiry decides.
    let s = start_provider("exchanged_token_lifetime = 7200").await;
    let (client, _) = register_client(
        &s,
        json!({"name": "kubectl", "confidential": false, "grant_types": [EXCHANGE],
               "audiences": ["cluster-a"]}),
    )
    .await;
    let project = s.new_project("team-a").await;
    let (user, keystone) = s.new_member("bob", &project).await;

    let (status, body) = exchange(&s, &client, &keystone, &[("audience", "cluster-a")]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body["issued_token_type"],
        "urn:ietf:params:oauth:token-type:jwt"
    );
    assert_eq!(body["token_type"], "Bearer");
    assert!(body.get("refresh_token").is_none());
    let claims = verified_jwt(
        &s,
        body["access_token"].as_str().unwrap(),
        "cluster-a",
        EXCHANGED_TYP,
    )
    .await;
    assert_eq!(claims["sub"], json!(user));
    assert_eq!(claims["azp"], json!(client));
    assert_eq!(claims["preferred_username"], "bob");
    assert_eq!(claims["limen"]["project"]["id"], json!(project));
    // The token's roles, implied ones included (member implies reader).
    let roles = claims["limen"]["roles"].as_array().expect("roles");
    assert!(
        roles.contains(&json!("member")) && roles.contains(&json!("reader")),
        "{roles:?}"
    );
    // Never past the subject token's own expiry.
    let resp = s
        .http
        .get(s.url("/v3/auth/tokens"))
        .header("X-Auth-Token", &s.admin_token)
        .header("X-Subject-Token", &keystone)
        .send()
        .await
        .expect("validate");
    let info: Value = resp.json().await.expect("json");
    let expires = time::OffsetDateTime::parse(
        info["token"]["expires_at"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .expect("a time");
    assert_eq!(claims["exp"].as_i64().unwrap(), expires.unix_timestamp());

    // A client with its own lifetime and algorithm: a 90-second ES256 cluster token.
    let (short, _) = register_client(
        &s,
        json!({"name": "ci-deployer", "confidential": false, "grant_types": [EXCHANGE],
               "audiences": ["cluster-a"], "token_signing_alg": "ES256",
               "exchanged_token_lifetime": 90}),
    )
    .await;
    let (status, body) = exchange(&s, &short, &keystone, &[("audience", "cluster-a")]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["expires_in"], 90);
    let token = body["access_token"].as_str().unwrap();
    assert_eq!(
        jsonwebtoken::decode_header(token).unwrap().alg,
        jsonwebtoken::Algorithm::ES256
    );
    let short_claims = verified_jwt(&s, token, "cluster-a", EXCHANGED_TYP).await;
    assert_eq!(
        short_claims["exp"].as_i64().unwrap() - short_claims["iat"].as_i64().unwrap(),
        90
    );

    // Refusals.
    let (status, body) = exchange(&s, &client, &keystone, &[("audience", "cluster-b")]).await;
    assert_eq!(
        (status, error_of(&body)),
        (StatusCode::BAD_REQUEST, "invalid_target"),
        "{body}"
    );
    let (_, body) = exchange(
        &s,
        &client,
        &keystone,
        &[("audience", "cluster-a"), ("audience", "cluster-b")],
    )
    .await;
    assert_eq!(error_of(&body), "invalid_target", "{body}");
    let (_, body) = exchange(&s, &client, &keystone, &[]).await;
    assert_eq!(error_of(&body), "invalid_target", "{body}");
    let (_, body) = exchange(&s, &client, "not-a-token", &[("audience", "cluster-a")]).await;
    assert_eq!(error_of(&body), "invalid_request", "{body}");
    let (_, body) = exchange(
        &s,
        &client,
        &keystone,
        &[
            ("audience", "cluster-a"),
            ("actor_token", "x"),
            ("actor_token_type", ACCESS),
        ],
    )
    .await;
    assert_eq!(error_of(&body), "invalid_request", "{body}");
    let (other, _) = register_client(
        &s,
        json!({"name": "web", "confidential": false, "redirect_uris": ["http://127.0.0.1:9/cb"],
               "audiences": ["cluster-a"]}),
    )
    .await;
    let (_, body) = exchange(&s, &other, &keystone, &[("audience", "cluster-a")]).await;
    assert_eq!(error_of(&body), "unauthorized_client", "{body}");
    // A revoked subject token exchanges for nothing.
    assert_eq!(s.revoke(&keystone).await, StatusCode::NO_CONTENT);
    let (_, body) = exchange(&s, &client, &keystone, &[("audience", "cluster-a")]).await;
    assert_eq!(error_of(&body), "invalid_request", "{body}");
}
