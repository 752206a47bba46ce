//! `/v3/ec2tokens` and `/v3/s3tokens`: a front end holding an admin token trades requests
//! signed with a user's EC2 credential for tokens that carry the `ec2credential` method,
//! and such tokens (like every delegated token) stay away from credentials.

use base64::Engine;
use hmac::{Hmac, Mac};
use limen_tests::*;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

fn id(v: &Value) -> String {
    v["id"].as_str().unwrap().to_string()
}

/// AWS signature version 2, written out here independently of the server's code.
fn sign_v2(secret: &str, host: &str, params: &[(&str, &str)]) -> String {
    let mut pairs: Vec<(String, String)> = params
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    pairs.retain(|(k, _)| k != "SignatureMethod");
    pairs.push(("SignatureMethod".into(), "HmacSHA256".into()));
    pairs.sort();
    let enc = |s: &str| -> String {
        s.bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() || b"_.-~".contains(&b) {
                    (b as char).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect()
    };
    let qs: Vec<String> = pairs
        .iter()
        .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
        .collect();
    let to_sign = format!("GET\n{host}\n/\n{}", qs.join("&"));
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(to_sign.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

fn now_stamp(offset_minutes: i64) -> String {
    (OffsetDateTime::now_utc() + time::Duration::minutes(offset_minutes))
        .replace_nanosecond(0)
        .unwrap()
        .format(&Rfc3339)
        .unwrap()
}

/// An ec2tokens body for a v2-signed DescribeInstances, signed for `signed_host` and
/// presented as coming from `host`.
fn ec2_body(access: &str, secret: &str, signed_host: &str, host: &str, stamp: &str) -> Value {
    let params = [
        ("Action", "DescribeInstances"),
        ("AWSAccessKeyId", access),
        ("SignatureVersion", "2"),
        ("SignatureMethod", "HmacSHA256"),
        ("Timestamp", stamp),
    ];
    let signature = sign_v2(secret, signed_host, &params);
    let params: serde_json::Map<String, Value> = params
        .iter()
        .map(|(k, v)| (k.to_string(), json!(v)))
        .collect();
    json!({"credentials": {"access": access, "signature": signature, "host": host,
                           "verb": "GET", "path": "/", "params": params}})
}

struct Fixture {
    s: TestServer,
    user_id: String,
    project_id: String,
    user_token: String,
    access: String,
    secret: String,
}

async fn fixture() -> Fixture {
    let s = TestServer::start().await;
    let p = s
        .create(
            "projects",
            "project",
            json!({"name": "ec2p", "domain_id": "default"}),
        )
        .await;
    let (user_id, user_token) = s.new_member("ec2u", &id(&p)).await;
    let (st, v) = s
        .post(
            &format!("/v3/users/{user_id}/credentials/OS-EC2"),
            &user_token,
            json!({"tenant_id": id(&p)}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    Fixture {
        access: v["credential"]["access"].as_str().unwrap().to_string(),
        secret: v["credential"]["secret"].as_str().unwrap().to_string(),
        user_id,
        project_id: id(&p),
        user_token,
        s,
    }
}

#[tokio::test]
async fn signed_ec2_requests_get_project_tokens() {
    let f = fixture().await;
    let s = &f.s;
    let good = ec2_body(
        &f.access,
        &f.secret,
        "ec2.example:8773",
        "ec2.example:8773",
        &now_stamp(0),
    );

    // Only an admin or a service may trade signatures for tokens.
    assert_eq!(
        s.call(Method::POST, "/v3/ec2tokens", None, Some(good.clone()))
            .await
            .0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        s.post("/v3/ec2tokens", &f.user_token, good.clone()).await.0,
        StatusCode::FORBIDDEN
    );

    let resp = s
        .http
        .post(s.url("/v3/ec2tokens"))
        .header("X-Auth-Token", &s.admin_token)
        .json(&good)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let ec2_token = resp
        .headers()
        .get("x-subject-token")
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    let body: Value = resp.json().await.unwrap();
    let t = &body["token"];
    assert_eq!(t["methods"], json!(["ec2credential"]));
    assert_eq!(t["user"]["id"], json!(f.user_id));
    assert_eq!(t["project"]["id"], json!(f.project_id));
    let roles: Vec<&str> = t["roles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert!(
        roles.contains(&"member") && roles.contains(&"reader"),
        "{roles:?}"
    );
    assert!(t["catalog"].is_array());

    // The token validates, but authorizes nothing on the identity API and cannot be
    // exchanged for another token.
    assert_eq!(s.validate(&ec2_token).await, StatusCode::OK);
    assert_eq!(
        s.get(&format!("/v3/users/{}", f.user_id), &ec2_token)
            .await
            .0,
        StatusCode::FORBIDDEN
    );
    let (st, _, v) = s.authenticate(token_auth(&ec2_token, None)).await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    assert_eq!(
        v["error"]["message"],
        "You are not authorized to perform the requested action: Using a delegated token to \
         create another token is not allowed.."
    );

    // Clients that sign without the port are accepted too.
    let no_port = ec2_body(
        &f.access,
        &f.secret,
        "ec2.example",
        "ec2.example:8773",
        &now_stamp(0),
    );
    assert_eq!(
        s.post("/v3/ec2tokens", &s.admin_token, no_port).await.0,
        StatusCode::OK
    );

    // Bad input: every refusal is a clear 4xx.
    assert_eq!(
        s.post("/v3/ec2tokens", &s.admin_token, json!({})).await.0,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        s.post(
            "/v3/ec2tokens",
            &s.admin_token,
            json!({"credentials": {"signature": "x"}})
        )
        .await
        .0,
        StatusCode::UNAUTHORIZED
    );
    let (st, v) = s
        .post(
            "/v3/ec2tokens",
            &s.admin_token,
            ec2_body("nosuchaccess", "x", "h", "h", &now_stamp(0)),
        )
        .await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    assert_eq!(v["error"]["message"], json!("EC2 access key not found."));
    let wrong_secret = ec2_body(&f.access, "not-the-secret", "h", "h", &now_stamp(0));
    assert_eq!(
        s.post("/v3/ec2tokens", &s.admin_token, wrong_secret)
            .await
            .0,
        StatusCode::UNAUTHORIZED
    );
    let mut tampered = good.clone();
    tampered["credentials"]["params"]["Action"] = json!("TerminateInstances");
    assert_eq!(
        s.post("/v3/ec2tokens", &s.admin_token, tampered).await.0,
        StatusCode::UNAUTHORIZED
    );
    let mut unsigned = good.clone();
    unsigned["credentials"]
        .as_object_mut()
        .unwrap()
        .remove("signature");
    assert_eq!(
        s.post("/v3/ec2tokens", &s.admin_token, unsigned).await.0,
        StatusCode::UNAUTHORIZED
    );
    let mut no_version = good.clone();
    no_version["credentials"]["params"]
        .as_object_mut()
        .unwrap()
        .remove("SignatureVersion");
    assert_eq!(
        s.post("/v3/ec2tokens", &s.admin_token, no_version).await.0,
        StatusCode::UNAUTHORIZED
    );
    // A signed request older than [credential] auth_ttl (15 minutes) is a replay.
    let stale = ec2_body(&f.access, &f.secret, "h", "h", &now_stamp(-20));
    assert_eq!(
        s.post("/v3/ec2tokens", &s.admin_token, stale).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        s.get("/v3/ec2tokens", &s.admin_token).await.0,
        StatusCode::METHOD_NOT_ALLOWED
    );

    // Without a role on the credential's project there is no token.
    let member = s.role_id("member").await;
    s.delete(
        &format!(
            "/v3/projects/{}/users/{}/roles/{member}",
            f.project_id, f.user_id
        ),
        &s.admin_token,
    )
    .await;
    let fresh = ec2_body(&f.access, &f.secret, "h", "h", &now_stamp(0));
    assert_eq!(
        s.post("/v3/ec2tokens", &s.admin_token, fresh).await.0,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn signed_s3_requests_get_tokens() {
    let f = fixture().await;
    let s = &f.s;
    let string_to_sign = "GET\n\n\nTue, 01 Jan 2030 00:00:00 GMT\n/bucket/key";
    let mut mac = Hmac::<sha1::Sha1>::new_from_slice(f.secret.as_bytes()).unwrap();
    mac.update(string_to_sign.as_bytes());
    let signature = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    let token = base64::engine::general_purpose::URL_SAFE.encode(string_to_sign);
    let body = json!({"credentials": {"access": f.access, "token": token, "signature": signature}});
    let resp = s
        .http
        .post(s.url("/v3/s3tokens"))
        .header("X-Auth-Token", &s.admin_token)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(resp.headers().get("x-subject-token").is_none());
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["token"]["methods"], json!(["ec2credential"]));
    assert_eq!(v["token"]["project"]["id"], json!(f.project_id));

    let mut bad = body.clone();
    bad["credentials"]["signature"] = json!("AAAA");
    assert_eq!(
        s.post("/v3/s3tokens", &s.admin_token, bad).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        s.post("/v3/s3tokens", &f.user_token, body).await.0,
        StatusCode::FORBIDDEN
    );
}

#[tokio::test]
async fn delegated_tokens_stay_away_from_credentials() {
    let f = fixture().await;
    let s = &f.s;
    let (_, ac_token) = s
        .application_credential_token(&f.user_id, &f.user_token, "ac")
        .await;
    let ec2 = format!("/v3/users/{}/credentials/OS-EC2", f.user_id);

    // An application credential cannot mint EC2 keys (which would outlive it) nor read
    // the user's.
    let (st, v) = s
        .post(&ec2, &ac_token, json!({"tenant_id": f.project_id}))
        .await;
    assert_eq!(st, StatusCode::FORBIDDEN, "{v}");
    assert_eq!(s.get(&ec2, &ac_token).await.0, StatusCode::FORBIDDEN);
    assert_eq!(
        s.get(&format!("{ec2}/{}", f.access), &ac_token).await.0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        s.delete(&format!("{ec2}/{}", f.access), &ac_token).await.0,
        StatusCode::FORBIDDEN
    );
    let (st, v) = s.get("/v3/credentials", &ac_token).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(v["credentials"], json!([]));
    let (st, _) = s
        .post(
            "/v3/credentials",
            &ac_token,
            json!({"credential": {"type": "cert", "user_id": f.user_id, "blob": "x"}}),
        )
        .await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    // The user's own login still sees the key, untouched.
    let (st, v) = s.get(&ec2, &f.user_token).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(v["credentials"].as_array().unwrap().len(), 1);

    // A credential cannot be handed to another user by a PATCH.
    let (st, v) = s
        .post(
            "/v3/credentials",
            &f.user_token,
            json!({"credential": {"type": "cert", "user_id": f.user_id, "blob": "mine"}}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    let cred_id = id(&v["credential"]);
    let other = s
        .create(
            "users",
            "user",
            json!({"name": "other", "password": "pw-123456"}),
        )
        .await;
    let (st, _) = s
        .patch(
            &format!("/v3/credentials/{cred_id}"),
            &f.user_token,
            json!({"credential": {"user_id": id(&other)}}),
        )
        .await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    let (_, v) = s
        .get(&format!("/v3/credentials/{cred_id}"), &s.admin_token)
        .await;
    assert_eq!(v["credential"]["user_id"], json!(f.user_id));
}
