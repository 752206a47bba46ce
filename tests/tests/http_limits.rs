//! What an unauthenticated client cannot do to the server (docs/security.md, "Limits"):
//! hold connections open by sending slowly, take more connections than the cap, guess
//! passwords faster than the limit by sending them all at once, hide behind (or pose as)
//! a proxy, or steer the links the server writes with a Host header.

use limen_tests::*;
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn addr_of(s: &TestServer) -> String {
    s.base.trim_start_matches("http://").to_string()
}

/// Reads until the server closes the connection or `within` passes: what it sent, and
/// whether it closed.
async fn read_until_closed(stream: &mut TcpStream, within: Duration) -> (String, bool) {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = Instant::now() + within;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return (String::from_utf8_lossy(&got).into(), true),
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
            Err(_) => return (String::from_utf8_lossy(&got).into(), false),
        }
    }
}

#[tokio::test]
async fn slow_headers_and_trickling_bodies_are_cut_off() {
    let s = TestServer::start_with(&format!(
        "{DEFAULT_CONFIG}\n[http]\nheader_read_timeout = 2\nbody_read_timeout = 2\n"
    ))
    .await;
    // A header line every second never finishes the headers: closed after ~2 s.
    let started = Instant::now();
    let mut slow = TcpStream::connect(addr_of(&s)).await.unwrap();
    slow.write_all(b"GET /v3 HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let mut closed = false;
    for i in 0..8 {
        tokio::time::sleep(Duration::from_secs(1)).await;
        if slow
            .write_all(format!("X-Slow-{i}: y\r\n").as_bytes())
            .await
            .is_err()
        {
            closed = true;
            break;
        }
        let mut probe = [0u8; 512];
        if let Ok(Ok(0)) =
            tokio::time::timeout(Duration::from_millis(10), slow.read(&mut probe)).await
        {
            closed = true;
            break;
        }
    }
    assert!(closed, "a header trickle kept its connection for 8 s");
    assert!(started.elapsed() < Duration::from_secs(6));

    // A body of one byte a second: 408 once the body deadline passes.
    let mut trickle = TcpStream::connect(addr_of(&s)).await.unwrap();
    trickle
        .write_all(
            b"POST /v3/auth/tokens HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
              Content-Length: 100\r\n\r\n{",
        )
        .await
        .unwrap();
    let started = Instant::now();
    let mut answer = String::new();
    for _ in 0..8 {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let _ = trickle.write_all(b" ").await;
        let (got, closed) = read_until_closed(&mut trickle, Duration::from_millis(10)).await;
        answer.push_str(&got);
        if closed || answer.contains("\r\n\r\n") {
            break;
        }
    }
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer:?}");
    assert!(answer.contains("\"code\": 408") || answer.contains("\"code\":408"));
    assert!(started.elapsed() < Duration::from_secs(6));

    // An idle kept-alive connection is closed after the header timeout too.
    let mut idle = TcpStream::connect(addr_of(&s)).await.unwrap();
    idle.write_all(b"GET /v3 HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let (got, closed) = read_until_closed(&mut idle, Duration::from_secs(5)).await;
    assert!(got.starts_with("HTTP/1.1 200"), "{got}");
    assert!(closed, "an idle connection stayed open");

    // Ordinary requests still work.
    let (status, _) = s.get("/v3/users", &s.admin_token).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn connections_beyond_the_cap_get_503_and_free_slots_are_reused() {
    let s = TestServer::start_with(&format!(
        "{DEFAULT_CONFIG}\n[http]\nmax_connections = 3\nheader_read_timeout = 30\n"
    ))
    .await;
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(TcpStream::connect(addr_of(&s)).await.unwrap());
    }
    // Let the server take all three before the next one knocks.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut extra = TcpStream::connect(addr_of(&s)).await.unwrap();
    let (got, closed) = read_until_closed(&mut extra, Duration::from_secs(5)).await;
    assert!(got.starts_with("HTTP/1.1 503"), "{got:?}");
    assert!(got.contains("Retry-After: 1"), "{got}");
    let body: Value = serde_json::from_str(got.split("\r\n\r\n").nth(1).unwrap_or("")).unwrap();
    assert_eq!(body["error"]["code"], 503);
    assert!(closed);
    drop(held);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (status, _) = s.get("/v3/users", &s.admin_token).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn concurrent_guesses_cannot_overtake_the_failed_login_limit() {
    // A hash slow enough that all the guesses are in flight together.
    let s = TestServer::start_with(&format!(
        "{}\n[auth]\nfailed_logins_per_minute = 10\n",
        DEFAULT_CONFIG.replace("password_hash_rounds = 4", "password_hash_rounds = 10")
    ))
    .await;
    let u = s
        .create(
            "users",
            "user",
            json!({"name": "target", "password": "right-pw-1",
                   "options": {"ignore_lockout_failure_attempts": true}}),
        )
        .await;
    let uid = u["id"].as_str().unwrap().to_string();
    let guesses = (0..60).map(|i| {
        let s = &s;
        let body = password_auth_by_id(&uid, &format!("guess-{i}"), None);
        async move { s.authenticate(body).await.0 }
    });
    let statuses = futures_util::future::join_all(guesses).await;
    let checked = statuses
        .iter()
        .filter(|s| **s == StatusCode::UNAUTHORIZED)
        .count();
    let refused = statuses
        .iter()
        .filter(|s| **s == StatusCode::TOO_MANY_REQUESTS)
        .count();
    assert_eq!(checked + refused, 60, "{statuses:?}");
    assert!(checked <= 10, "{checked} guesses were checked at once");
}

#[tokio::test]
async fn behind_trusted_proxies_limits_and_logs_follow_the_real_client() {
    let s = TestServer::start_with(&format!(
        "{DEFAULT_CONFIG}\n[auth]\nfailed_logins_per_minute = 2\n\
         [http]\ntrusted_proxies = [\"127.0.0.0/8\"]\n"
    ))
    .await;
    let u = s
        .create(
            "users",
            "user",
            json!({"name": "t", "password": "right-pw-1",
                   "options": {"ignore_lockout_failure_attempts": true}}),
        )
        .await;
    let uid = u["id"].as_str().unwrap().to_string();
    let guess = |forwarded_for: &'static str, header: &'static str| {
        let s = &s;
        let body = password_auth_by_id(&uid, "wrong", None);
        async move {
            s.http
                .post(s.url("/v3/auth/tokens"))
                .header(header, forwarded_for)
                .json(&body)
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    for _ in 0..2 {
        assert_eq!(
            guess("203.0.113.1", "X-Forwarded-For").await,
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(
        guess("203.0.113.1", "X-Forwarded-For").await,
        StatusCode::TOO_MANY_REQUESTS
    );
    // Another client behind the same proxy is not locked out…
    assert_eq!(
        guess("for=203.0.113.2", "Forwarded").await,
        StatusCode::UNAUTHORIZED
    );
    // …and a client cannot slip out of its limit by naming someone else before itself.
    assert_eq!(
        guess("198.51.100.9, 203.0.113.1", "X-Forwarded-For").await,
        StatusCode::TOO_MANY_REQUESTS
    );
    // The log is written in batches within a tenth of a second.
    let mut log = String::new();
    for _ in 0..30 {
        log = s.log_tail();
        if log.contains("client=203.0.113.2") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        log.contains("client=203.0.113.2"),
        "the log names the client: {log}"
    );

    // Without trusted proxies, forwarding headers are the client's own words: ignored.
    let plain = TestServer::start_with(&format!(
        "{DEFAULT_CONFIG}\n[auth]\nfailed_logins_per_minute = 2\n"
    ))
    .await;
    let u = plain
        .create(
            "users",
            "user",
            json!({"name": "t", "password": "right-pw-1"}),
        )
        .await;
    let uid = u["id"].as_str().unwrap().to_string();
    let mut last = StatusCode::OK;
    for i in 0..3 {
        last = plain
            .http
            .post(plain.url("/v3/auth/tokens"))
            .header("X-Forwarded-For", format!("203.0.113.{i}"))
            .json(&password_auth_by_id(&uid, "wrong", None))
            .send()
            .await
            .unwrap()
            .status();
    }
    assert_eq!(last, StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn a_host_header_does_not_steer_links_once_the_public_url_is_set() {
    let s = TestServer::start_with(&format!(
        "public_url = \"http://127.0.0.1:@PORT@\"\n{DEFAULT_CONFIG}"
    ))
    .await;
    let resp = s
        .http
        .get(s.url("/v3"))
        .header("Host", "evil.example")
        .send()
        .await
        .unwrap();
    let body: Value = resp.json().await.unwrap();
    let links = body.to_string();
    assert!(
        links.contains(&s.base) && !links.contains("evil.example"),
        "{links}"
    );
    let resp = s
        .http
        .get(s.url("/v3/users"))
        .header("Host", "evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let challenge = resp.headers()["www-authenticate"].to_str().unwrap();
    assert_eq!(challenge, format!("Keystone uri=\"{}\"", s.base));
}

#[tokio::test]
async fn the_start_script_pins_the_public_url() {
    // The README's first command, with the binary built already: its server must not
    // build links on a Host header a client made up.
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the repository")
        .to_path_buf();
    let data = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut child = std::process::Command::new("bash")
        .arg(root.join("scripts/start.sh"))
        .env("LIMEN_BIN", limen_bin())
        .env("LIMEN_DATA_DIR", data.path().join("limen-data"))
        .env("LIMEN_LISTEN", format!("127.0.0.1:{port}"))
        .env("LIMEN_ADMIN_PASSWORD", ADMIN_PASSWORD)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("run scripts/start.sh");
    let stdout = child.stdout.take().unwrap();
    let listening = tokio::task::spawn_blocking(move || {
        use std::io::BufRead;
        std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .any(|l| l.contains("listening on"))
    })
    .await
    .unwrap();
    assert!(listening, "start.sh did not start the server");
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    let body: Value = http
        .get(format!("{base}/v3"))
        .header("Host", "evil.example")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let resp = http
        .get(format!("{base}/v3/users"))
        .header("Host", "evil.example")
        .send()
        .await
        .unwrap();
    let challenge = resp.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_string();
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        body.to_string().contains(&base) && !body.to_string().contains("evil.example"),
        "{body}"
    );
    assert_eq!(challenge, format!("Keystone uri=\"{base}\""));
}
