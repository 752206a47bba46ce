//! The device authorization grant (RFC 8628): a device asks, polls, and gets tokens once
//! a second actor (a person in a browser) approved through the device page; every other
//! outcome of a poll (`authorization_pending`, `slow_down`, `access_denied`,
//! `expired_token`, a used code) and the limit on wrong user codes.

use limen_tests::in_process::InProcess;
use limen_tests::oauth::*;
use limen_tests::*;
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::time::Duration;

const DEVICE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// A provider with a public `kubectl` client that may use the device grant, and alice.
async fn with_device_client<A: Api>(s: A) -> (A, String) {
    let (client, _) = register_client(
        &s,
        json!({"name": "kubectl", "confidential": false,
               "grant_types": [DEVICE_GRANT, "refresh_token"]}),
    )
    .await;
    s.create(
        "users",
        "user",
        json!({"name": "alice", "password": USER_PASSWORD}),
    )
    .await;
    (s, client)
}

async fn setup(extra_config: &str) -> (TestServer, String) {
    with_device_client(start_provider(extra_config).await).await
}

/// The same, in this process with a clock the test moves.
async fn setup_in_process(extra_config: &str) -> (InProcess, String) {
    with_device_client(InProcess::provider(extra_config).await).await
}

async fn start(s: &impl Api, client: &str, scope: &str) -> (StatusCode, Value) {
    let form = [("client_id", client), ("scope", scope)];
    let (status, _, text) = s
        .post_form("/oauth2/device_authorization", &[], &form)
        .await;
    (status, serde_json::from_str(&text).expect("json"))
}

async fn poll(s: &impl Api, client: &str, device_code: &str) -> (StatusCode, Value) {
    token_request(
        s,
        &[
            ("grant_type", DEVICE_GRANT),
            ("client_id", client),
            ("device_code", device_code),
        ],
    )
    .await
}

fn error_of(body: &Value) -> &str {
    body["error"].as_str().unwrap_or("")
}

#[tokio::test]
async fn a_device_gets_tokens_once_its_person_approves() {
    let (s, client) = setup_in_process("device_poll_interval = 1").await;
    let (status, d) = start(&s, &client, "openid profile").await;
    assert_eq!(status, StatusCode::OK, "{d}");
    let user_code = d["user_code"].as_str().unwrap();
    assert_eq!(user_code.len(), 9);
    assert!(
        user_code
            .chars()
            .all(|c| c == '-' || "BCDFGHJKLMNPQRSTVWXZ".contains(c)),
        "{user_code}"
    );
    assert_eq!(d["verification_uri"], s.url("/device"));
    assert_eq!(d["expires_in"], 600);
    assert_eq!(d["interval"], 1);
    let device_code = d["device_code"].as_str().unwrap();

    let (status, body) = poll(&s, &client, device_code).await;
    assert_eq!(
        (status, error_of(&body)),
        (StatusCode::BAD_REQUEST, "authorization_pending")
    );

    let mut browser = s.browser();
    let link = d["verification_uri_complete"].as_str().unwrap();
    let done = answer_device(&mut browser, link, "alice", "approve").await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.body);
    assert!(done.body.contains("Device approved"), "{}", done.body);

    s.advance(1);
    let (status, tokens) = poll(&s, &client, device_code).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    let id = verified_jwt(&s, tokens["id_token"].as_str().unwrap(), &client, "JWT").await;
    assert_eq!(id["preferred_username"], "alice");
    assert!(tokens["refresh_token"].is_string());
    // A device code gives tokens once.
    s.advance(1);
    let (_, body) = poll(&s, &client, device_code).await;
    assert_eq!(error_of(&body), "invalid_grant", "{body}");
    // The user code was used: the page no longer knows it.
    let again = browser.get(link).await;
    assert_eq!(again.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn denied_expired_and_guessed_codes() {
    let config =
        "device_poll_interval = 1\ndevice_code_lifetime = 3\nuser_code_attempts_per_minute = 3";
    let (s, client) = setup_in_process(config).await;
    let mut browser = s.browser();

    let (_, d) = start(&s, &client, "openid").await;
    let device_code = d["device_code"].as_str().unwrap();
    let (_, body) = poll(&s, &client, device_code).await;
    assert_eq!(error_of(&body), "authorization_pending", "{body}");
    // At once again: too fast, and the interval grows by five seconds, so a poll a
    // second later is still too fast.
    let (_, body) = poll(&s, &client, device_code).await;
    assert_eq!(error_of(&body), "slow_down", "{body}");
    s.advance(1);
    let (_, body) = poll(&s, &client, device_code).await;
    assert_eq!(error_of(&body), "slow_down", "{body}");

    let (_, d) = start(&s, &client, "openid").await;
    let link = d["verification_uri_complete"].as_str().unwrap();
    let done = answer_device(&mut browser, link, "alice", "deny").await;
    assert!(done.body.contains("Request denied"), "{}", done.body);
    let (_, body) = poll(&s, &client, d["device_code"].as_str().unwrap()).await;
    assert_eq!(error_of(&body), "access_denied", "{body}");

    let (_, d) = start(&s, &client, "openid").await;
    s.advance(2);
    let (_, body) = poll(&s, &client, d["device_code"].as_str().unwrap()).await;
    assert_eq!(error_of(&body), "authorization_pending", "{body}");
    s.advance(2);
    let (_, body) = poll(&s, &client, d["device_code"].as_str().unwrap()).await;
    assert_eq!(error_of(&body), "expired_token", "{body}");
    // An expired code cannot be approved either.
    let page = browser
        .get(d["verification_uri_complete"].as_str().unwrap())
        .await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST, "{}", page.body);

    // Wrong codes are counted per address: after the limit, 429 even for a good one.
    let (_, d) = start(&s, &client, "openid").await;
    for guess in ["BBBB-BBBB", "CCCC-CCCC"] {
        let page = browser
            .get(&s.url(&format!("/device?user_code={guess}")))
            .await;
        assert_eq!(page.status, StatusCode::BAD_REQUEST, "{}", page.body);
        assert!(page.body.contains("role=\"alert\""));
    }
    let page = browser
        .get(d["verification_uri_complete"].as_str().unwrap())
        .await;
    assert_eq!(page.status, StatusCode::TOO_MANY_REQUESTS, "{}", page.body);
    assert!(page.headers.get("retry-after").is_some());

    // Refusals at the endpoints.
    let (_, body) = poll(&s, &client, "no-such-device-code").await;
    assert_eq!(error_of(&body), "invalid_grant");
    let (status, body) = start(&s, &client, "openid admin").await;
    assert_eq!(
        (status, error_of(&body)),
        (StatusCode::BAD_REQUEST, "invalid_scope")
    );
    let (web, _) = register_client(
        &s,
        json!({"name": "web", "confidential": false, "redirect_uris": ["http://127.0.0.1:9/cb"]}),
    )
    .await;
    let (_, body) = start(&s, &web, "openid").await;
    assert_eq!(error_of(&body), "unauthorized_client", "{body}");
    let (status, body) = start(&s, "nobody", "openid").await;
    assert_eq!(
        (status, error_of(&body)),
        (StatusCode::UNAUTHORIZED, "invalid_client")
    );
}

/// A poll and the person's approval arriving at the same moment: the approval is never
/// lost (a poll that read "pending" before the approval landed must not write it back),
/// so the next poll gets tokens. Many devices at once make the overlap certain to occur.
#[tokio::test]
async fn an_approval_racing_a_poll_is_never_lost() {
    let (s, client) = setup("device_poll_interval = 1").await;
    let mut browser = PageClient::new();
    let mut forms = Vec::new();
    for _ in 0..24 {
        let (_, d) = start(&s, &client, "openid").await;
        let link = d["verification_uri_complete"].as_str().unwrap();
        let mut page = browser.get(link).await;
        if page.status == StatusCode::SEE_OTHER {
            let login = browser
                .log_in(page.location(), "alice", USER_PASSWORD)
                .await;
            assert_eq!(login.status, StatusCode::SEE_OTHER, "{}", login.body);
            page = browser.get(login.location()).await;
        }
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        let fields = (page.field("user_code"), page.field("csrf"));
        forms.push((d["device_code"].as_str().unwrap().to_string(), fields));
    }
    let races = forms.iter().map(|(device_code, (user_code, csrf))| {
        let mut tab = browser.clone();
        let (s, client) = (&s, &client);
        async move {
            let action = s.url("/device");
            let form = [
                ("csrf", csrf.as_str()),
                ("user_code", user_code.as_str()),
                ("decision", "approve"),
            ];
            let (page, (status, _)) =
                tokio::join!(tab.post(&action, &form), poll(s, client, device_code));
            assert_eq!(page.status, StatusCode::OK, "{}", page.body);
            status
        }
    });
    let first_polls = futures_util::future::join_all(races).await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    for ((device_code, _), first) in forms.iter().zip(first_polls) {
        let (status, body) = poll(&s, &client, device_code).await;
        // Tokens exactly once: at the racing poll (the approval came first) or now.
        let got = [first, status]
            .iter()
            .filter(|s| **s == StatusCode::OK)
            .count();
        assert_eq!(got, 1, "the approval was lost or used twice: {body}");
    }
}
