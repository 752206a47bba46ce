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

fn hmac256(key: &[u8], msg: &[u8]) -> Vec<u8> {
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(key).unwrap();
    mac.update(msg);
    mac.finalize().into_bytes().to_vec()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex(&sha2::Sha256::digest(bytes))
}

/// The AWS signature version 4 signing key of `secret` for `day` (YYYYMMDD).
fn v4_key(secret: &str, day: &str, service: &str) -> Vec<u8> {
    let k = hmac256(format!("AWS4{secret}").as_bytes(), day.as_bytes());
    let k = hmac256(&k, b"RegionOne");
    let k = hmac256(&k, service.as_bytes());
    hmac256(&k, b"aws4_request")
}

/// An ec2tokens body for a POST signed with AWS signature version 4 in the
/// Authorization header, dated `amz_date` (basic ISO 8601) with the credential scope of
/// `scope_day`; `params` are the (unsigned) form parameters.
fn ec2_v4_post_body(
    access: &str,
    secret: &str,
    amz_date: &str,
    scope_day: &str,
    params: Value,
) -> Value {
    let host = "ec2.example:8773";
    let body_hash = sha256_hex(b"Action=DescribeInstances");
    let canonical =
        format!("POST\n/\n\nhost:{host}\nx-amz-date:{amz_date}\n\nhost;x-amz-date\n{body_hash}");
    let scope = format!("{scope_day}/RegionOne/ec2/aws4_request");
    let to_sign = format!(
        "AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}",
        sha256_hex(canonical.as_bytes())
    );
    let signature = hex(&hmac256(
        &v4_key(secret, scope_day, "ec2"),
        to_sign.as_bytes(),
    ));
    let authorization = format!(
        "AWS4-HMAC-SHA256 Credential={access}/{scope}, SignedHeaders=host;x-amz-date, \
         Signature={signature}"
    );
    json!({"credentials": {"access": access, "signature": signature, "host": host,
        "verb": "POST", "path": "/", "params": params, "body_hash": body_hash,
        "headers": {"Host": host, "X-Amz-Date": amz_date, "Authorization": authorization}}})
}

/// An ec2tokens body for a v2-signed DescribeInstances with these time parameters.
fn ec2_v2_body(access: &str, secret: &str, times: &[(&str, &str)]) -> Value {
    let mut params = vec![
        ("Action", "DescribeInstances"),
        ("AWSAccessKeyId", access),
        ("SignatureVersion", "2"),
        ("SignatureMethod", "HmacSHA256"),
    ];
    params.extend_from_slice(times);
    let signature = sign_v2(secret, "h", &params);
    let params: serde_json::Map<String, Value> = params
        .iter()
        .map(|(k, v)| (k.to_string(), json!(v)))
        .collect();
    json!({"credentials": {"access": access, "signature": signature, "host": "h",
                           "verb": "GET", "path": "/", "params": params}})
}

/// An s3tokens body for this string to sign (v1 when it does not start with `AWS4`).
fn s3_body(access: &str, secret: &str, string_to_sign: &str) -> Value {
    let signature = if let Some(rest) = string_to_sign.strip_prefix("AWS4-HMAC-SHA256\n") {
        let day = &rest.split('\n').nth(1).unwrap()[..8];
        hex(&hmac256(
            &v4_key(secret, day, "s3"),
            string_to_sign.as_bytes(),
        ))
    } else {
        let mut mac = Hmac::<sha1::Sha1>::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(string_to_sign.as_bytes());
        base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
    };
    let token = base64::engine::general_purpose::URL_SAFE.encode(string_to_sign);
    json!({"credentials": {"access": access, "token": token, "signature": signature}})
}

fn shifted(offset_minutes: i64) -> OffsetDateTime {
    (OffsetDateTime::now_utc() + time::Duration::minutes(offset_minutes))
        .replace_nanosecond(0)
        .unwrap()
}

/// `X-Amz-Date` form: 20250101T000000Z.
fn amz_date(offset_minutes: i64) -> String {
    let t = shifted(offset_minutes);
    format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// HTTP date form: Tue, 01 Jan 2025 00:00:00 GMT.
fn http_date(offset_minutes: i64) -> String {
    shifted(offset_minutes)
        .format(&time::format_description::well_known::Rfc2822)
        .unwrap()
        .replace("+0000", "GMT")
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
    let string_to_sign = format!("GET\n\n\n{}\n/bucket/key", http_date(0));
    let body = s3_body(&f.access, &f.secret, &string_to_sign);
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

async fn ec2_status(f: &Fixture, body: Value) -> StatusCode {
    f.s.post("/v3/ec2tokens", &f.s.admin_token, body).await.0
}

async fn s3_status(f: &Fixture, string_to_sign: String) -> StatusCode {
    let body = s3_body(&f.access, &f.secret, &string_to_sign);
    f.s.post("/v3/s3tokens", &f.s.admin_token, body).await.0
}

#[tokio::test]
async fn ec2_replay_window_counts_only_signed_times() {
    let f = fixture().await;
    let ec2 = |body: Value| ec2_status(&f, body);
    // Signature v4: the signed X-Amz-Date counts, both ways; the form parameters of a
    // POST are not signed, so a fresh Timestamp among them changes nothing.
    let today = amz_date(0)[..8].to_string();
    let v4 = |date: String, params: Value| {
        let day = date[..8].to_string();
        ec2_v4_post_body(&f.access, &f.secret, &date, &day, params)
    };
    assert_eq!(
        ec2(v4(amz_date(0), json!({"Action": "DescribeInstances"}))).await,
        StatusCode::OK
    );
    let stale_with_fresh_timestamp = v4(
        amz_date(-20),
        json!({"Action": "DescribeInstances", "Timestamp": now_stamp(0)}),
    );
    assert_eq!(
        ec2(stale_with_fresh_timestamp).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        ec2(v4(amz_date(20), json!({}))).await,
        StatusCode::UNAUTHORIZED
    );
    // The credential scope names the day of the signed date.
    let other_day = if today.ends_with('1') {
        "20200102"
    } else {
        "20200101"
    };
    assert_eq!(
        ec2(ec2_v4_post_body(
            &f.access,
            &f.secret,
            &amz_date(0),
            other_day,
            json!({})
        ))
        .await,
        StatusCode::UNAUTHORIZED
    );

    // Signature v2: Timestamp within auth_ttl (15 minutes) either way, Expires not past,
    // and one of them signed.
    let v2 = |times: &[(&str, &str)]| ec2_v2_body(&f.access, &f.secret, times);
    let (past, soon, later) = (now_stamp(-1), now_stamp(20), now_stamp(60 * 24));
    for (times, expected) in [
        (vec![("Timestamp", now_stamp(0))], StatusCode::OK),
        (
            vec![("Timestamp", now_stamp(-20))],
            StatusCode::UNAUTHORIZED,
        ),
        (vec![("Timestamp", soon.clone())], StatusCode::UNAUTHORIZED),
        (vec![("Expires", later.clone())], StatusCode::OK),
        (vec![("Expires", past.clone())], StatusCode::UNAUTHORIZED),
        (
            vec![("Timestamp", now_stamp(0)), ("Expires", past.clone())],
            StatusCode::UNAUTHORIZED,
        ),
        (vec![], StatusCode::UNAUTHORIZED),
    ] {
        let times: Vec<(&str, &str)> = times.iter().map(|(k, v)| (*k, v.as_str())).collect();
        assert_eq!(ec2(v2(&times)).await, expected, "{times:?}");
    }
}

#[tokio::test]
async fn s3_replay_window_uses_the_signed_date() {
    let f = fixture().await;
    let s3 = |string_to_sign: String| s3_status(&f, string_to_sign);
    let v1 = |date: String| format!("GET\n\n\n{date}\n/bucket/key");
    assert_eq!(s3(v1(http_date(0))).await, StatusCode::OK);
    assert_eq!(s3(v1(http_date(-20))).await, StatusCode::UNAUTHORIZED);
    assert_eq!(s3(v1(http_date(20))).await, StatusCode::UNAUTHORIZED);
    assert_eq!(
        s3(v1("Tue, 01 Jan 2019 00:00:00 GMT".into())).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(s3(v1(String::new())).await, StatusCode::UNAUTHORIZED);
    // x-amz-date, when signed, is the request's date (S3 then ignores Date).
    let amz = |date: String| format!("PUT\n\n\n\nx-amz-date:{date}\n/bucket/key");
    assert_eq!(s3(amz(http_date(0))).await, StatusCode::OK);
    assert_eq!(s3(amz(http_date(-60))).await, StatusCode::UNAUTHORIZED);
    // A query-signed request carries its Expires where the date is.
    let expires = |minutes: i64| v1(shifted(minutes).unix_timestamp().to_string());
    assert_eq!(s3(expires(60)).await, StatusCode::OK);
    assert_eq!(s3(expires(-1)).await, StatusCode::UNAUTHORIZED);
    // Signature v4: the second line, whose day the scope must name.
    let v4 = |date: String, day: &str| {
        format!(
            "AWS4-HMAC-SHA256\n{date}\n{day}/RegionOne/s3/aws4_request\n{}",
            sha256_hex(b"canonical request")
        )
    };
    let now = amz_date(0);
    assert_eq!(s3(v4(now.clone(), &now[..8])).await, StatusCode::OK);
    let old = amz_date(-60 * 24 * 400);
    assert_eq!(
        s3(v4(old.clone(), &old[..8])).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(s3(v4(now, &old[..8])).await, StatusCode::UNAUTHORIZED);
}
