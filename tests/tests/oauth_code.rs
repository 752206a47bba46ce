//! The authorization code grant with PKCE through the provider's own pages: login,
//! consent, the code at the redirect URI, ID and access tokens that verify against the
//! published keys, userinfo, refresh rotation with reuse detection, and every refusal of
//! RFC 6749 (an error page where the redirect URI cannot be trusted, an error at the
//! redirect URI otherwise).

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve};
use limen_tests::oauth::*;
use limen_tests::*;
use reqwest::StatusCode;
use serde_json::{json, Value};

const CALLBACK: &str = "http://127.0.0.1:9/cb";

/// A provider, a public client allowed codes and refresh, and a person (alice, with an
/// email address and a group): (server, client id, alice's user id).
async fn setup() -> (TestServer, String, String) {
    let s = start_provider("").await;
    let (client, _) = register_client(
        &s,
        json!({"name": "Kube Dashboard", "confidential": false,
               "redirect_uris": [CALLBACK],
               "grant_types": ["authorization_code", "refresh_token"]}),
    )
    .await;
    let alice = s
        .create(
            "users",
            "user",
            json!({"name": "alice", "password": USER_PASSWORD,
                   "email": "alice@example.test"}),
        )
        .await;
    let alice = alice["id"].as_str().expect("id").to_string();
    let group = s.create("groups", "group", json!({"name": "admins"})).await;
    let gid = group["id"].as_str().expect("id");
    let (st, v) = s
        .put(&format!("/v3/groups/{gid}/users/{alice}"), &s.admin_token)
        .await;
    assert_eq!(st, StatusCode::NO_CONTENT, "{v}");
    (s, client, alice)
}

fn authorize_url(s: &TestServer, client: &str, challenge: &str, extra: &str) -> String {
    s.url(&format!(
        "/oauth2/authorize?response_type=code&client_id={client}&redirect_uri={}\
         &scope=openid%20profile%20email%20groups&state=st-1&nonce=n-1\
         &code_challenge={challenge}&code_challenge_method=S256{extra}",
        urlencode(CALLBACK)
    ))
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Logs alice in through the pages and allows the client: the code.
async fn code_for(
    s: &TestServer,
    browser: &mut PageClient,
    client: &str,
    challenge: &str,
) -> String {
    let start = browser.get(&authorize_url(s, client, challenge, "")).await;
    let mut page = if start.status == StatusCode::SEE_OTHER {
        assert!(
            start.location().contains("/login?next="),
            "{}",
            start.location()
        );
        let login = browser
            .log_in(start.location(), "alice", USER_PASSWORD)
            .await;
        assert_eq!(login.status, StatusCode::SEE_OTHER, "{}", login.body);
        browser.get(login.location()).await
    } else {
        start
    };
    if page.status == StatusCode::OK {
        assert!(page.body.contains("Kube Dashboard"), "{}", page.body);
        let form = consent_answer(&page, "allow");
        let fields: Vec<(&str, &str)> =
            form.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        page = browser.post(&s.url("/oauth2/authorize"), &fields).await;
    }
    assert_eq!(page.status, StatusCode::FOUND, "{}", page.body);
    let to = page.location().to_string();
    assert!(to.starts_with(CALLBACK), "{to}");
    assert_eq!(query_param(&to, "state").as_deref(), Some("st-1"));
    assert_eq!(query_param(&to, "iss").as_deref(), Some(s.base.as_str()));
    query_param(&to, "code").expect("a code")
}

async fn redeem(s: &TestServer, client: &str, code: &str, verifier: &str) -> (StatusCode, Value) {
    token_request(
        s,
        &[
            ("grant_type", "authorization_code"),
            ("client_id", client),
            ("code", code),
            ("redirect_uri", CALLBACK),
            ("code_verifier", verifier),
        ],
    )
    .await
}

async fn userinfo(s: &TestServer, access_token: &str) -> (StatusCode, Value) {
    let resp = s
        .http
        .get(s.url("/oauth2/userinfo"))
        .bearer_auth(access_token)
        .send()
        .await
        .expect("userinfo");
    let status = resp.status();
    (status, resp.json().await.unwrap_or(Value::Null))
}

fn error_of(body: &Value) -> &str {
    body["error"].as_str().unwrap_or("")
}

#[tokio::test]
async fn code_flow_with_pkce_gives_verifiable_id_and_access_tokens() {
    let (s, client, alice) = setup().await;
    let (verifier, challenge) = pkce("code-flow-verifier");
    let mut browser = PageClient::new();
    let code = code_for(&s, &mut browser, &client, &challenge).await;
    let (status, tokens) = redeem(&s, &client, &code, &verifier).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    assert_eq!(tokens["token_type"], "Bearer");
    assert_eq!(tokens["scope"], "openid profile email groups");
    assert!(tokens["refresh_token"]
        .as_str()
        .is_some_and(|r| r.len() >= 43));

    let id = verified_jwt(&s, tokens["id_token"].as_str().unwrap(), &client, "JWT").await;
    assert_eq!(id["sub"], json!(alice));
    assert_eq!(id["azp"], json!(client));
    assert_eq!(id["nonce"], "n-1");
    assert_eq!(id["amr"], json!(["pwd"]));
    assert_eq!(id["preferred_username"], "alice");
    assert_eq!(id["email"], "alice@example.test");
    assert_eq!(
        id["email_verified"], false,
        "nobody vouched for the address"
    );
    assert_eq!(id["groups"], json!(["Default/admins"]));
    assert_eq!(id["limen"]["domain"]["name"], "Default");
    assert!(id["auth_time"].as_i64().unwrap() <= id["iat"].as_i64().unwrap());

    let access = tokens["access_token"].as_str().unwrap();
    let at = verified_jwt(&s, access, &s.base, "at+jwt").await;
    assert_eq!(at["sub"], json!(alice));
    assert_eq!(at["client_id"], json!(client));
    let (status, info) = userinfo(&s, access).await;
    assert_eq!(status, StatusCode::OK, "{info}");
    assert_eq!(info["sub"], json!(alice));
    assert_eq!(info["email"], "alice@example.test");
    assert_eq!(info["groups"], json!(["Default/admins"]));

    // Consent is remembered: the next request goes straight back with a code.
    let (verifier2, challenge2) = pkce("second-verifier");
    let again = browser
        .get(&authorize_url(&s, &client, &challenge2, ""))
        .await;
    assert_eq!(again.status, StatusCode::FOUND, "{}", again.body);
    let code2 = query_param(again.location(), "code").expect("code");
    let (status, _) = redeem(&s, &client, &code2, &verifier2).await;
    assert_eq!(status, StatusCode::OK);

    // A disabled user's tokens stop working at once.
    let (st, v) = s
        .patch(
            &format!("/v3/users/{alice}"),
            &s.admin_token,
            json!({"user": {"enabled": false}}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let (status, body) = userinfo(&s, access).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(error_of(&body), "invalid_token");
}

#[tokio::test]
async fn a_replayed_code_is_refused_and_revokes_what_it_gave() {
    let (s, client, _) = setup().await;
    let (verifier, challenge) = pkce("replay-verifier");
    let mut browser = PageClient::new();
    let code = code_for(&s, &mut browser, &client, &challenge).await;

    // A wrong verifier fails, and does not burn the code for the client that holds the
    // right one (someone who intercepted the code cannot spoil the login).
    let (wrong, _) = pkce("someone-elses-verifier");
    let (status, body) = redeem(&s, &client, &code, &wrong).await;
    assert_eq!(
        (status, error_of(&body)),
        (StatusCode::BAD_REQUEST, "invalid_grant"),
        "{body}"
    );
    let (status, first) = redeem(&s, &client, &code, &verifier).await;
    assert_eq!(status, StatusCode::OK, "{first}");
    // Used once, the code is refused, whoever presents it.
    for v in [&verifier, &wrong] {
        let (status, body) = redeem(&s, &client, &code, v).await;
        assert_eq!(
            (status, error_of(&body)),
            (StatusCode::BAD_REQUEST, "invalid_grant"),
            "{body}"
        );
    }
    // Everything the first redemption gave is revoked.
    let (status, _) = userinfo(&s, first["access_token"].as_str().unwrap()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let refresh = first["refresh_token"].as_str().unwrap();
    let (_, body) = token_request(
        &s,
        &[
            ("grant_type", "refresh_token"),
            ("client_id", &client),
            ("refresh_token", refresh),
        ],
    )
    .await;
    assert_eq!(error_of(&body), "invalid_grant", "{body}");

    // A code is bound to its redirect URI and its client.
    let (verifier, challenge) = pkce("bound-verifier");
    let code = code_for(&s, &mut browser, &client, &challenge).await;
    let (_, body) = token_request(
        &s,
        &[
            ("grant_type", "authorization_code"),
            ("client_id", &client),
            ("code", &code),
            ("redirect_uri", "http://127.0.0.1:9/other"),
            ("code_verifier", &verifier),
        ],
    )
    .await;
    assert_eq!(error_of(&body), "invalid_grant", "{body}");
    let (other, _) = register_client(
        &s,
        json!({"name": "other", "confidential": false, "redirect_uris": [CALLBACK]}),
    )
    .await;
    let code = code_for(&s, &mut browser, &client, &challenge).await;
    let (_, body) = redeem(&s, &other, &code, &verifier).await;
    assert_eq!(error_of(&body), "invalid_grant", "{body}");
}

#[tokio::test]
async fn refresh_tokens_rotate_and_a_reused_one_ends_the_family() {
    let (s, client, _) = setup().await;
    let (verifier, challenge) = pkce("refresh-verifier");
    let mut browser = PageClient::new();
    let code = code_for(&s, &mut browser, &client, &challenge).await;
    let (_, first) = redeem(&s, &client, &code, &verifier).await;
    let r1 = first["refresh_token"].as_str().unwrap().to_string();

    let refresh = |token: String, scope: Option<&'static str>| {
        let s = &s;
        let client = client.clone();
        async move {
            let mut form = vec![
                ("grant_type", "refresh_token".to_string()),
                ("client_id", client),
                ("refresh_token", token),
            ];
            if let Some(sc) = scope {
                form.push(("scope", sc.to_string()));
            }
            let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
            token_request(s, &form).await
        }
    };
    // A narrower scope is fine; the ID token is renewed without the nonce.
    let (status, second) = refresh(r1.clone(), Some("openid profile")).await;
    assert_eq!(status, StatusCode::OK, "{second}");
    assert_eq!(second["scope"], "openid profile");
    let r2 = second["refresh_token"].as_str().unwrap().to_string();
    assert_ne!(r1, r2, "the refresh token rotates");
    let id = verified_jwt(&s, second["id_token"].as_str().unwrap(), &client, "JWT").await;
    assert!(id.get("nonce").is_none(), "{id}");
    assert!(id.get("email").is_none(), "narrowed away: {id}");

    // A wider scope than granted is refused (and uses nothing up).
    let (r3_status, r3) = refresh(r2.clone(), None).await;
    assert_eq!(r3_status, StatusCode::OK, "{r3}");
    let r3 = r3["refresh_token"].as_str().unwrap().to_string();
    let (_, body) = refresh(r3.clone(), Some("openid offline_access")).await;
    assert_eq!(error_of(&body), "invalid_scope", "{body}");

    // r1 again: reuse. The whole family dies, r3 and its access tokens included.
    let (status, body) = refresh(r1, None).await;
    assert_eq!(
        (status, error_of(&body)),
        (StatusCode::BAD_REQUEST, "invalid_grant"),
        "{body}"
    );
    let (_, body) = refresh(r3, None).await;
    assert_eq!(error_of(&body), "invalid_grant", "{body}");
    let (status, _) = userinfo(&s, second["access_token"].as_str().unwrap()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn bad_authorization_requests_get_the_right_refusal() {
    let (s, client, _) = setup().await;
    let (_, challenge) = pkce("errors");
    let mut browser = PageClient::new();

    // Untrustworthy client or redirect URI: an error page, never a redirect.
    for url in [
        authorize_url(&s, "no-such-client", &challenge, ""),
        s.url(&format!(
            "/oauth2/authorize?response_type=code&client_id={client}\
             &redirect_uri=http%3A%2F%2F127.0.0.1%3A9%2Fevil&code_challenge={challenge}\
             &code_challenge_method=S256"
        )),
        authorize_url(&s, &client, &challenge, &format!("&client_id={client}")),
    ] {
        let page = browser.get(&url).await;
        assert_eq!(page.status, StatusCode::BAD_REQUEST, "{url}");
        assert!(page.headers.get("location").is_none(), "{url}");
        assert!(page.body.contains("role=\"alert\""), "{}", page.body);
    }

    // Everything else: an error at the redirect URI, with the state.
    let cases = [
        (
            authorize_url(&s, &client, &challenge, "&prompt=none"),
            "login_required",
        ),
        (
            authorize_url(&s, &client, &challenge, "")
                .replace("response_type=code", "response_type=token"),
            "unsupported_response_type",
        ),
        (
            authorize_url(&s, &client, &challenge, "")
                .replace("code_challenge_method=S256", "code_challenge_method=plain"),
            "invalid_request",
        ),
        (
            authorize_url(&s, &client, "", "")
                .replace("&code_challenge=&code_challenge_method=S256", ""),
            "invalid_request",
        ),
        (
            authorize_url(&s, &client, &challenge, "&scope=admin"),
            "invalid_request",
        ),
        (
            authorize_url(&s, &client, &challenge, "")
                .replace("scope=openid", "scope=admin%20openid"),
            "invalid_scope",
        ),
    ];
    for (url, expected) in cases {
        let page = browser.get(&url).await;
        assert_eq!(page.status, StatusCode::FOUND, "{url}: {}", page.body);
        let to = page.location();
        assert!(to.starts_with(CALLBACK), "{to}");
        assert_eq!(
            query_param(to, "error").as_deref(),
            Some(expected),
            "{url} -> {to}"
        );
        assert_eq!(query_param(to, "state").as_deref(), Some("st-1"));
    }

    // Denying consent is access_denied at the redirect URI.
    let start = browser
        .get(&authorize_url(&s, &client, &challenge, ""))
        .await;
    let login = browser
        .log_in(start.location(), "alice", USER_PASSWORD)
        .await;
    let consent = browser.get(login.location()).await;
    assert_eq!(consent.status, StatusCode::OK);
    let form = consent_answer(&consent, "deny");
    let fields: Vec<(&str, &str)> = form.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let denied = browser.post(&s.url("/oauth2/authorize"), &fields).await;
    assert_eq!(
        query_param(denied.location(), "error").as_deref(),
        Some("access_denied")
    );
    // A forged consent (wrong anti-forgery token) gives nothing.
    let forged: Vec<(&str, &str)> = fields
        .iter()
        .map(|(k, v)| {
            if *k == "csrf" {
                (*k, "forged")
            } else if *k == "decision" {
                (*k, "allow")
            } else {
                (*k, *v)
            }
        })
        .collect();
    let page = browser.post(&s.url("/oauth2/authorize"), &forged).await;
    assert_eq!(page.status, StatusCode::FORBIDDEN, "{}", page.body);
    // With a session but no consent, prompt=none is consent_required.
    let page = browser
        .get(&authorize_url(&s, &client, &challenge, "&prompt=none"))
        .await;
    assert_eq!(
        query_param(page.location(), "error").as_deref(),
        Some("consent_required")
    );
}

#[tokio::test]
async fn the_login_pages_are_protected() {
    let (s, _, _) = setup().await;
    let mut browser = PageClient::new();
    let form = browser.get(&s.url("/login")).await;
    assert_eq!(form.status, StatusCode::OK);
    let h = &form.headers;
    assert_eq!(
        h["content-security-policy"],
        "default-src 'none'; style-src 'self'; img-src 'self'; base-uri 'none'; frame-ancestors 'none'"
    );
    assert_eq!(h["x-frame-options"], "DENY");
    assert_eq!(h["referrer-policy"], "same-origin");
    assert_eq!(h["cache-control"], "no-store");
    assert!(
        form.body.contains("<label for=\"username\">"),
        "{}",
        form.body
    );
    let csrf_cookie = &form.set_cookies()[0];
    assert!(
        csrf_cookie.contains("HttpOnly") && csrf_cookie.contains("SameSite=Lax"),
        "{csrf_cookie}"
    );

    // Without the double-submit token, or from another site: refused.
    let csrf = form.field("csrf");
    let creds = [
        ("username", "alice"),
        ("password", USER_PASSWORD),
        ("domain", "Default"),
    ];
    let page = browser.post(&s.url("/login"), &creds).await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    let resp = reqwest::Client::new()
        .post(s.url("/login"))
        .header("Origin", "https://evil.example")
        .header("Cookie", format!("limen_csrf={csrf}"))
        .form(&[
            ("csrf", csrf.as_str()),
            ("username", "alice"),
            ("password", USER_PASSWORD),
        ])
        .send()
        .await
        .expect("post");
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);

    // A wrong password: the form again with an alert; no session.
    let page = browser.log_in(&s.url("/login"), "alice", "wrong").await;
    assert_eq!(page.status, StatusCode::UNAUTHORIZED);
    assert!(page.body.contains("role=\"alert\""));
    assert!(!browser.cookies.contains_key("limen_session"));

    // A good one: a session cookie, the signed-in page, and a logout that needs the
    // session's anti-forgery token.
    let page = browser
        .log_in(&s.url("/login"), "alice", USER_PASSWORD)
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    let session_cookie = page
        .set_cookies()
        .into_iter()
        .find(|c| c.starts_with("limen_session="))
        .expect("a session cookie");
    assert!(session_cookie.contains("HttpOnly"), "{session_cookie}");
    let signed_in = browser.get(&s.url("/login")).await;
    assert!(
        signed_in
            .body
            .contains("signed in as <strong>alice</strong>"),
        "{}",
        signed_in.body
    );
    let page = browser.post(&s.url("/logout"), &[("csrf", "forged")]).await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    let csrf = signed_in.field("csrf");
    let page = browser.post(&s.url("/logout"), &[("csrf", &csrf)]).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(!browser.cookies.contains_key("limen_session"));
    let after = browser.get(&s.url("/login")).await;
    assert!(after.body.contains("Sign in"), "{}", after.body);

    // Failed logins lock the account as on the API (lockout_failure_attempts = 2).
    for _ in 0..2 {
        browser.log_in(&s.url("/login"), "alice", "wrong").await;
    }
    let page = browser
        .log_in(&s.url("/login"), "alice", USER_PASSWORD)
        .await;
    assert_eq!(page.status, StatusCode::UNAUTHORIZED);
    assert!(page.body.contains("locked"), "{}", page.body);
}

/// A client that signs ES256 with its own lifetimes: its ID and access tokens name the
/// published P-256 key and live as long as it says, userinfo accepts them, its refresh
/// tokens and grants end when it says.
#[tokio::test]
async fn a_clients_signing_algorithm_and_lifetimes_shape_its_tokens() {
    let (s, client, alice) = setup().await;
    let path = format!("/v3/limen/oauth_clients/{client}");
    let set_client = |settings: Value| {
        let (s, path) = (&s, &path);
        async move {
            let (st, v) = s
                .patch(path, &s.admin_token, json!({ "oauth_client": settings }))
                .await;
            assert_eq!(st, StatusCode::OK, "{v}");
        }
    };
    set_client(
        json!({"token_signing_alg": "ES256", "access_token_lifetime": 120,
                      "refresh_token_lifetime": 1}),
    )
    .await;
    let (verifier, challenge) = pkce("es256-verifier");
    let mut browser = PageClient::new();
    let code = code_for(&s, &mut browser, &client, &challenge).await;
    let (status, tokens) = redeem(&s, &client, &code, &verifier).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    assert_eq!(tokens["expires_in"], 120);
    let jwks = fetch_jwk_set(&s).await;
    for (token, aud, typ) in [
        (&tokens["id_token"], client.as_str(), "JWT"),
        (&tokens["access_token"], s.base.as_str(), "at+jwt"),
    ] {
        let token = token.as_str().expect("a token");
        let header = jsonwebtoken::decode_header(token).expect("a JWT");
        assert_eq!(header.alg, jsonwebtoken::Algorithm::ES256);
        let kid = header.kid.expect("kid");
        let key = jwks.find(&kid).expect("the kid is published");
        assert!(
            matches!(&key.algorithm, AlgorithmParameters::EllipticCurve(p)
                if p.curve == EllipticCurve::P256),
            "a P-256 key: {key:?}"
        );
        let claims = verified_jwt(&s, token, aud, typ).await;
        assert_eq!(claims["sub"], json!(alice));
        assert_eq!(
            claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
            120
        );
    }
    let (status, info) = userinfo(&s, tokens["access_token"].as_str().unwrap()).await;
    assert_eq!(status, StatusCode::OK, "{info}");

    // Its refresh tokens live a second unused.
    let refresh = tokens["refresh_token"].as_str().unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let (status, body) = token_request(
        &s,
        &[
            ("grant_type", "refresh_token"),
            ("client_id", &client),
            ("refresh_token", refresh),
        ],
    )
    .await;
    assert_eq!(
        (status, error_of(&body)),
        (StatusCode::BAD_REQUEST, "invalid_grant"),
        "{body}"
    );

    // A grant of 30 seconds caps its access tokens; back to RS256.
    set_client(json!({"token_signing_alg": "RS256", "grant_lifetime": 30,
                      "refresh_token_lifetime": null}))
    .await;
    let (verifier, challenge) = pkce("short-grant-verifier");
    let code = code_for(&s, &mut browser, &client, &challenge).await;
    let (status, tokens) = redeem(&s, &client, &code, &verifier).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    let id_token = tokens["id_token"].as_str().unwrap();
    assert_eq!(
        jsonwebtoken::decode_header(id_token).unwrap().alg,
        jsonwebtoken::Algorithm::RS256
    );
    let id = verified_jwt(&s, id_token, &client, "JWT").await;
    let lived = id["exp"].as_i64().unwrap() - id["iat"].as_i64().unwrap();
    assert!((29..=30).contains(&lived), "{lived}");
}

/// A password change or reset ends what the old password gave, as Keystone revokes the
/// user's tokens then: the login session, the grants with their access and refresh
/// tokens (and the exchange of their ID tokens), and a code not yet redeemed. Signing in
/// with the new password works.
#[tokio::test]
async fn a_password_reset_ends_sessions_grants_and_pending_codes() {
    let (s, client, alice) = setup().await;
    let (st, v) = s
        .patch(
            &format!("/v3/limen/oauth_clients/{client}"),
            &s.admin_token,
            json!({"oauth_client": {"audiences": ["cluster-a"], "grant_types": [
                "authorization_code", "refresh_token",
                "urn:ietf:params:oauth:grant-type:token-exchange"]}}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let exchange = |id_token: String| {
        let (s, client) = (&s, client.clone());
        async move {
            token_request(
                s,
                &[
                    (
                        "grant_type",
                        "urn:ietf:params:oauth:grant-type:token-exchange",
                    ),
                    ("client_id", &client),
                    ("subject_token", &id_token),
                    (
                        "subject_token_type",
                        "urn:ietf:params:oauth:token-type:id_token",
                    ),
                    ("audience", "cluster-a"),
                ],
            )
            .await
        }
    };
    let mut browser = PageClient::new();
    let (verifier, challenge) = pkce("before-the-reset");
    let code = code_for(&s, &mut browser, &client, &challenge).await;
    let (status, tokens) = redeem(&s, &client, &code, &verifier).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    let (pending_verifier, pending_challenge) = pkce("pending-over-the-reset");
    let pending = code_for(&s, &mut browser, &client, &pending_challenge).await;
    let id_token = tokens["id_token"].as_str().unwrap().to_string();
    let (status, body) = exchange(id_token.clone()).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    let new_password = "Another-Secret-77";
    let (st, v) = s
        .patch(
            &format!("/v3/users/{alice}"),
            &s.admin_token,
            json!({"user": {"password": new_password}}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");

    let (status, body) = userinfo(&s, tokens["access_token"].as_str().unwrap()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    let (status, body) = token_request(
        &s,
        &[
            ("grant_type", "refresh_token"),
            ("client_id", &client),
            ("refresh_token", tokens["refresh_token"].as_str().unwrap()),
        ],
    )
    .await;
    assert_eq!(
        (status, error_of(&body)),
        (StatusCode::BAD_REQUEST, "invalid_grant"),
        "{body}"
    );
    let (_, body) = redeem(&s, &client, &pending, &pending_verifier).await;
    assert_eq!(error_of(&body), "invalid_grant", "{body}");
    let (status, body) = exchange(id_token).await;
    assert_eq!(
        (status, error_of(&body)),
        (StatusCode::BAD_REQUEST, "invalid_request"),
        "the ID token of an ended grant: {body}"
    );

    // The session is gone: the next authorization asks for a login, and the old
    // password no longer passes it.
    let (verifier, challenge) = pkce("after-the-reset");
    let start = browser
        .get(&authorize_url(&s, &client, &challenge, ""))
        .await;
    assert_eq!(start.status, StatusCode::SEE_OTHER, "{}", start.body);
    let refused = browser
        .log_in(start.location(), "alice", USER_PASSWORD)
        .await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED, "{}", refused.body);
    let login = browser
        .log_in(start.location(), "alice", new_password)
        .await;
    assert_eq!(login.status, StatusCode::SEE_OTHER, "{}", login.body);
    let back = browser.get(login.location()).await;
    assert_eq!(back.status, StatusCode::FOUND, "consent is remembered");
    let code = query_param(back.location(), "code").expect("a code");
    let (status, fresh) = redeem(&s, &client, &code, &verifier).await;
    assert_eq!(status, StatusCode::OK, "{fresh}");
    let (status, _) = userinfo(&s, fresh["access_token"].as_str().unwrap()).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn consent_names_what_a_login_can_become_and_is_asked_again_when_that_grows() {
    let (s, client, _) = setup().await;
    let (_, challenge) = pkce("consent-verifier");
    let mut browser = PageClient::new();
    code_for(&s, &mut browser, &client, &challenge).await;
    // Remembered: no page the second time.
    let again = browser
        .get(&authorize_url(&s, &client, &challenge, ""))
        .await;
    assert_eq!(again.status, StatusCode::FOUND, "{}", again.body);

    // The client may now turn logins into tokens for a vault and for a cluster.
    let (status, body) = s
        .patch(
            &format!("/v3/limen/oauth_clients/{client}"),
            &s.admin_token,
            json!({"oauth_client": {"grant_types": ["authorization_code", "refresh_token", EXCHANGE],
                                    "audiences": ["https://vault.example"]}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = s
        .post(
            "/v3/limen/clusters",
            &s.admin_token,
            json!({"cluster": {"name": "prod-eu", "api_server": "https://k.example.com",
                               "login_client_id": client}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let page = browser
        .get(&authorize_url(&s, &client, &challenge, ""))
        .await;
    assert_eq!(page.status, StatusCode::OK, "asked again: {}", page.body);
    for shown in ["https://vault.example", "prod-eu", "Default"] {
        assert!(page.body.contains(shown), "{shown} not on {}", page.body);
    }
    let form = consent_answer(&page, "allow");
    let fields: Vec<(&str, &str)> = form.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let done = browser.post(&s.url("/oauth2/authorize"), &fields).await;
    assert_eq!(done.status, StatusCode::FOUND, "{}", done.body);
    let again = browser
        .get(&authorize_url(&s, &client, &challenge, ""))
        .await;
    assert_eq!(
        again.status,
        StatusCode::FOUND,
        "remembered with the audiences"
    );
}
