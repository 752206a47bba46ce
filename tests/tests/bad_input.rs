//! Bad input gets Keystone's error body and the right status, never a 5xx, and nothing
//! is half-written.

use limen_tests::*;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

async fn raw(
    s: &TestServer,
    method: Method,
    path: &str,
    content_type: Option<&str>,
    body: Vec<u8>,
) -> (StatusCode, String, Value) {
    let mut req = s
        .http
        .request(method, s.url(path))
        .header("X-Auth-Token", &s.admin_token);
    if let Some(ct) = content_type {
        req = req.header("Content-Type", ct);
    }
    let resp = req.body(body).send().await.unwrap();
    let status = resp.status();
    let ct = resp
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    let text = resp.text().await.unwrap();
    assert!(!status.is_server_error(), "{path}: {status} {text}");
    (
        status,
        ct,
        serde_json::from_str(&text).unwrap_or(Value::Null),
    )
}

fn is_keystone_error(v: &Value, code: u16) -> bool {
    v["error"]["code"] == json!(code)
        && v["error"]["title"].is_string()
        && v["error"]["message"].is_string()
}

#[tokio::test]
async fn malformed_bodies() {
    let s = TestServer::start().await;
    let json_ct = Some("application/json");
    let cases: Vec<(&str, Option<&str>, Vec<u8>, u16)> = vec![
        ("/v3/users", json_ct, b"{not json".to_vec(), 400),
        ("/v3/users", json_ct, b"[1,2]".to_vec(), 400),
        ("/v3/users", json_ct, b"\"str\"".to_vec(), 400),
        (
            "/v3/users",
            Some("text/plain"),
            br#"{"user": {"name": "x"}}"#.to_vec(),
            400,
        ),
        (
            "/v3/users",
            json_ct,
            br#"{"user": {"name": 5}}"#.to_vec(),
            400,
        ),
        (
            "/v3/users",
            json_ct,
            br#"{"user": {"name": "x", "enabled": "yes"}}"#.to_vec(),
            400,
        ),
        ("/v3/users", json_ct, br#"{"user": "x"}"#.to_vec(), 400),
        (
            "/v3/users",
            json_ct,
            br#"{"user": {"name": "x"}, "extra": 1}"#.to_vec(),
            400,
        ),
        (
            "/v3/projects",
            json_ct,
            br#"{"project": {"name": ""}}"#.to_vec(),
            400,
        ),
        (
            "/v3/domains",
            json_ct,
            format!(r#"{{"domain": {{"name": "{}"}}}}"#, "d".repeat(65)).into_bytes(),
            400,
        ),
        ("/v3/groups", json_ct, br#"{"group": {}}"#.to_vec(), 400),
        (
            "/v3/roles",
            json_ct,
            br#"{"role": {"name": null}}"#.to_vec(),
            400,
        ),
        (
            "/v3/services",
            json_ct,
            br#"{"service": {"name": "no type"}}"#.to_vec(),
            400,
        ),
        (
            "/v3/regions",
            json_ct,
            br#"{"region": {"parent_region_id": "missing"}}"#.to_vec(),
            404,
        ),
        ("/v3/users", json_ct, Vec::new(), 400),
    ];
    for (path, ct, body, want) in cases {
        let shown = String::from_utf8_lossy(&body)
            .chars()
            .take(60)
            .collect::<String>();
        let (st, content_type, v) = raw(&s, Method::POST, path, ct, body).await;
        assert_eq!(st.as_u16(), want, "{path} {shown}: {v}");
        assert!(
            content_type.starts_with("application/json"),
            "{path}: {content_type}"
        );
        assert!(is_keystone_error(&v, want), "{path}: {v}");
    }
    // Nothing was stored by any of them.
    let (_, v) = s.get("/v3/users", &s.admin_token).await;
    assert_eq!(
        v["users"].as_array().unwrap().len(),
        1,
        "only the admin exists: {v}"
    );
}

#[tokio::test]
async fn oversized_body_is_413() {
    let s = TestServer::start().await;
    let big = format!(
        r#"{{"user": {{"name": "big", "description": "{}"}}}}"#,
        "x".repeat(120_000)
    );
    let (st, _, v) = raw(
        &s,
        Method::POST,
        "/v3/users",
        Some("application/json"),
        big.into_bytes(),
    )
    .await;
    assert_eq!(st, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(is_keystone_error(&v, 413), "{v}");
    // A chunked body without Content-Length is cut off too: the server answers 413 or
    // closes the connection before reading it all; either way nothing is stored and the
    // server keeps serving.
    let sent = s
        .http
        .post(s.url("/v3/users"))
        .header("X-Auth-Token", &s.admin_token)
        .header("Content-Type", "application/json")
        .body(futures_body(200_000))
        .send()
        .await;
    if let Ok(resp) = sent {
        assert_eq!(resp.status(), StatusCode::PAYLOAD_TOO_LARGE);
    }
    let (st, v) = s.get("/v3/users?name=big", &s.admin_token).await;
    assert_eq!((st, v["users"].clone()), (StatusCode::OK, json!([])));
}

fn futures_body(n: usize) -> reqwest::Body {
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        (0..n / 1000).map(|_| Ok(vec![b' '; 1000])).collect();
    reqwest::Body::wrap_stream(futures_util::stream::iter(chunks))
}

#[tokio::test]
async fn unknown_routes_methods_and_ids() {
    let s = TestServer::start().await;
    let t = &s.admin_token;
    let (st, v) = s.get("/v3/nonexistent", t).await;
    assert!(
        st == StatusCode::NOT_FOUND && is_keystone_error(&v, 404),
        "{v}"
    );
    let (st, v) = s
        .call(Method::PUT, "/v3/users/x", Some(t), Some(json!({})))
        .await;
    assert!(
        st == StatusCode::METHOD_NOT_ALLOWED && is_keystone_error(&v, 405),
        "{v}"
    );
    for path in [
        "/v3/users/nope",
        "/v3/projects/nope",
        "/v3/domains/nope",
        "/v3/groups/nope",
        "/v3/roles/nope",
        "/v3/regions/nope",
        "/v3/services/nope",
        "/v3/endpoints/nope",
    ] {
        let (st, v) = s.get(path, t).await;
        assert_eq!(st, StatusCode::NOT_FOUND, "{path}");
        assert!(
            v["error"]["message"]
                .as_str()
                .unwrap()
                .starts_with("Could not find"),
            "{v}"
        );
        let (st, _) = s.patch(path, t, json!({"x": {}})).await;
        assert!(
            st == StatusCode::NOT_FOUND || st == StatusCode::BAD_REQUEST,
            "{path} {st}"
        );
        let (st, _) = s.delete(path, t).await;
        assert_eq!(st, StatusCode::NOT_FOUND, "{path}");
    }
    // Unknown query parameters are ignored, as Keystone ignores them.
    let (st, _) = s.get("/v3/users?bogus=1", t).await;
    assert_eq!(st, StatusCode::OK);
    // Bad boolean filters are a 400.
    let (st, _) = s.get("/v3/users?enabled=maybe", t).await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    // Odd ids and percent-encoding do not break anything.
    let (st, _) = s.get("/v3/users/%00%ff..%2F", t).await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    let long = "a".repeat(5000);
    let (st, _) = s.get(&format!("/v3/users/{long}"), t).await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    let resp = s
        .http
        .get(s.url("/v3/users"))
        .header("X-Auth-Token", "x".repeat(10_000))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn duplicates_are_409_under_concurrency() {
    let s = TestServer::start().await;
    let mut handles = Vec::new();
    for _ in 0..12 {
        let http = s.http.clone();
        let url = s.url("/v3/users");
        let tok = s.admin_token.clone();
        handles.push(tokio::spawn(async move {
            http.post(url)
                .header("X-Auth-Token", tok)
                .json(&json!({"user": {"name": "racer", "password": "pw-123456"}}))
                .send()
                .await
                .unwrap()
        }));
    }
    let mut created = 0;
    for h in handles {
        let resp = h.await.unwrap();
        match resp.status() {
            StatusCode::CREATED => created += 1,
            StatusCode::CONFLICT => {
                let v: Value = resp.json().await.unwrap();
                let msg = v["error"]["message"].as_str().unwrap();
                assert!(msg.contains("Duplicate entry"), "{msg}");
            }
            other => panic!("unexpected {other}"),
        }
    }
    assert_eq!(created, 1);
}
