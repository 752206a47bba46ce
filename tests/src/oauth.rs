//! Helpers for driving Limen's OpenID Provider: a provider with keys, client
//! registration, PKCE pairs, JWT verification against the served key set, and a
//! `PageClient` that walks the login and consent pages as a browser without scripts
//! would (cookies kept by hand, redirects not followed, so every step can be checked).

pub use crate::Api;
use crate::{TestServer, DEFAULT_CONFIG};
use base64::Engine;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{DecodingKey, Validation};
use reqwest::header::{HeaderMap, COOKIE, LOCATION, SET_COOKIE};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// A provider whose issuer is the server's own URL, with signing keys in place.
pub async fn start_provider(extra_config: &str) -> TestServer {
    let config =
        format!("{DEFAULT_CONFIG}\n[oidc]\nissuer = \"http://127.0.0.1:@PORT@\"\n{extra_config}\n");
    let s = TestServer::start_with(&config).await;
    s.limen(&["keys", "oidc", "setup"]);
    wait_for_oidc_keys(&s).await;
    s
}

/// Waits until the server publishes its signing keys (it re-reads them within a second).
pub async fn wait_for_oidc_keys(s: &TestServer) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while s
        .http
        .get(s.url("/oauth2/jwks"))
        .send()
        .await
        .expect("jwks")
        .status()
        != StatusCode::OK
    {
        assert!(Instant::now() < deadline, "the keys never showed up");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Registers an OAuth client as the admin: (client id, secret if confidential).
pub async fn register_client(s: &impl Api, client: Value) -> (String, Option<String>) {
    let (status, v) = s
        .post(
            "/v3/limen/oauth_clients",
            s.admin(),
            json!({ "oauth_client": client }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    let c = &v["oauth_client"];
    (
        c["id"].as_str().expect("id").to_string(),
        c["secret"].as_str().map(str::to_string),
    )
}

/// A PKCE verifier and its S256 challenge.
pub fn pkce(seed: &str) -> (String, String) {
    let verifier = format!("{seed:-<43}").replace(|c: char| !c.is_ascii_alphanumeric(), "-");
    let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(Sha256::digest(verifier.as_bytes()));
    (verifier, challenge)
}

/// `POST /oauth2/token` with a form: status and body.
pub async fn token_request(s: &impl Api, form: &[(&str, &str)]) -> (StatusCode, Value) {
    let (status, _, text) = s.post_form("/oauth2/token", &[], form).await;
    (status, serde_json::from_str(&text).expect("a JSON body"))
}

/// The `client_credentials` grant for `id` with `secret` (an OAuth client's, or a
/// Keystone application credential's).
pub async fn client_credentials(s: &impl Api, id: &str, secret: &str) -> (StatusCode, Value) {
    token_request(
        s,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", id),
            ("client_secret", secret),
        ],
    )
    .await
}

pub const EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
pub const ACCESS: &str = "urn:ietf:params:oauth:token-type:access_token";

/// A token exchange (RFC 8693) by public `client` of `subject` (an access token: Limen's
/// or Keystone's), with `extra` parameters such as the audience.
pub async fn exchange(
    s: &impl Api,
    client: &str,
    subject: &str,
    extra: &[(&str, &str)],
) -> (StatusCode, Value) {
    let mut form = vec![
        ("grant_type", EXCHANGE),
        ("client_id", client),
        ("subject_token", subject),
        ("subject_token_type", ACCESS),
    ];
    form.extend_from_slice(extra);
    token_request(s, &form).await
}

/// The JOSE `typ` of an exchanged (cluster) token: neither an ID token's nor an access
/// token's, so neither check accepts one.
pub const EXCHANGED_TYP: &str = "limen-exchanged+jwt";

/// The claims of a JWT the provider (issuer: the server's own URL) signed, verified
/// against the served JWK set by its kid, for audience `aud`, with header `typ`.
pub async fn verified_jwt(s: &impl Api, token: &str, aud: &str, typ: &str) -> Value {
    verified_jwt_of(s, &s.url(""), token, aud, typ).await
}

/// [`verified_jwt`] for a provider whose issuer is `issuer`.
pub async fn verified_jwt_of(
    s: &impl Api,
    issuer: &str,
    token: &str,
    aud: &str,
    typ: &str,
) -> Value {
    let set = fetch_jwk_set(s).await;
    verify_jwt(&set, token, issuer, aud, typ).unwrap_or_else(|e| panic!("{e}"))
}

/// The JWK set `s` serves now.
pub async fn fetch_jwk_set(s: &impl Api) -> JwkSet {
    let (_, _, text) = s.exchange(Method::GET, "/oauth2/jwks", &[], None).await;
    serde_json::from_str(&text).expect("a JWK set")
}

/// The claims of `token` if a key of `set` (found by its kid) signed it for `aud` at
/// `issuer` with header `typ`, and it has not expired; else why not.
pub fn verify_jwt(
    set: &JwkSet,
    token: &str,
    issuer: &str,
    aud: &str,
    typ: &str,
) -> Result<Value, String> {
    let header = jsonwebtoken::decode_header(token).map_err(|e| format!("not a JWT: {e}"))?;
    if header.typ.as_deref() != Some(typ) {
        return Err(format!("typ {:?}, not {typ}", header.typ));
    }
    let kid = header.kid.as_deref().ok_or("no kid")?;
    let jwk = set
        .find(kid)
        .ok_or_else(|| format!("the kid {kid} is not in the key set"))?;
    let key = DecodingKey::from_jwk(jwk).map_err(|e| format!("bad JWK {kid}: {e}"))?;
    let mut v = Validation::new(header.alg);
    v.set_audience(&[aud]);
    v.set_issuer(&[issuer]);
    jsonwebtoken::decode::<Value>(token, &key, &v)
        .map(|d| d.claims)
        .map_err(|e| format!("does not verify with {kid}: {e}"))
}

/// The consent page's form, answered with `decision`.
pub fn consent_answer(page: &Page, decision: &str) -> Vec<(String, String)> {
    let mut form: Vec<(String, String)> = [
        "client_id",
        "redirect_uri",
        "response_type",
        "scope",
        "state",
        "nonce",
        "code_challenge",
        "code_challenge_method",
        "csrf",
    ]
    .iter()
    .map(|k| (k.to_string(), page.field(k)))
    .collect();
    form.push(("decision".into(), decision.into()));
    form
}

/// One page response.
pub struct Page {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

impl Page {
    pub fn location(&self) -> &str {
        self.headers
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    /// The value of the form field `name` (hidden or text) on this page.
    pub fn field(&self, name: &str) -> String {
        let needle = format!("name=\"{name}\" value=\"");
        let start = self
            .body
            .find(&needle)
            .unwrap_or_else(|| panic!("no field {name} in {}", self.body))
            + needle.len();
        let end = self.body[start..].find('"').expect("closing quote") + start;
        self.body[start..end].replace("&amp;", "&")
    }

    /// Every `Set-Cookie` header, as sent.
    pub fn set_cookies(&self) -> Vec<String> {
        self.headers
            .get_all(SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .map(str::to_string)
            .collect()
    }
}

/// The query parameter `name` of a URL (percent-decoded).
pub fn query_param(url: &str, name: &str) -> Option<String> {
    let query = url.split_once('?')?.1;
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        (k == name).then(|| percent_decode(v))
    })
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let Ok(b) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(if bytes[i] == b'+' { b' ' } else { bytes[i] });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `user` opens a device login's `verification_uri_complete`, signs in if asked (with
/// [`crate::USER_PASSWORD`]), and answers `decision` (`approve` or `deny`): the last page.
pub async fn answer_device(
    browser: &mut PageClient,
    link: &str,
    user: &str,
    decision: &str,
) -> Page {
    let mut page = browser.get(link).await;
    if page.status == StatusCode::SEE_OTHER {
        let login = browser
            .log_in(page.location(), user, crate::USER_PASSWORD)
            .await;
        assert_eq!(login.status, StatusCode::SEE_OTHER, "{}", login.body);
        page = browser.get(login.location()).await;
    }
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(
        page.body.contains("kubectl"),
        "the client is named: {}",
        page.body
    );
    let code = page.field("user_code");
    let csrf = page.field("csrf");
    let action = format!("{}/device", link.split("/device").next().unwrap_or(""));
    browser
        .post(
            &action,
            &[
                ("csrf", &csrf),
                ("user_code", &code),
                ("decision", decision),
            ],
        )
        .await
}

/// A browser without scripts: keeps cookies, follows nothing by itself. A clone is a
/// second tab of the same browser (the same cookies from then on).
#[derive(Clone)]
pub struct PageClient {
    transport: Transport,
    pub cookies: BTreeMap<String, String>,
}

#[derive(Clone)]
enum Transport {
    Http(reqwest::Client),
    InProcess(crate::in_process::Link),
}

impl Default for PageClient {
    fn default() -> Self {
        Self::new()
    }
}

impl PageClient {
    /// A browser for a real server.
    pub fn new() -> Self {
        PageClient {
            transport: Transport::Http(
                reqwest::Client::builder()
                    .redirect(reqwest::redirect::Policy::none())
                    .build()
                    .expect("client"),
            ),
            cookies: BTreeMap::new(),
        }
    }

    /// A browser for an in-process node.
    pub fn in_process(link: crate::in_process::Link) -> Self {
        PageClient {
            transport: Transport::InProcess(link),
            cookies: BTreeMap::new(),
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    async fn send(&mut self, method: Method, url: &str, form: Option<&[(&str, &str)]>) -> Page {
        let cookie = self.cookie_header();
        let (status, headers, body) = match &self.transport {
            Transport::Http(http) => {
                let mut req = http.request(method, url).header(COOKIE, cookie);
                if let Some(f) = form {
                    req = req.form(f);
                }
                let resp = req.send().await.expect("request");
                let (status, headers) = (resp.status(), resp.headers().clone());
                (status, headers, resp.text().await.expect("a body"))
            }
            Transport::InProcess(link) => {
                let body = form.map(|f| {
                    (
                        "application/x-www-form-urlencoded",
                        crate::api::form_urlencoded(f).into_bytes(),
                    )
                });
                link.send(method, url, &[("cookie", cookie.as_str())], body)
                    .await
            }
        };
        for c in headers
            .get_all(SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
        {
            let first = c.split(';').next().unwrap_or("");
            if let Some((k, v)) = first.split_once('=') {
                if v.is_empty() || c.contains("Max-Age=0") {
                    self.cookies.remove(k);
                } else {
                    self.cookies.insert(k.to_string(), v.to_string());
                }
            }
        }
        Page {
            status,
            headers,
            body,
        }
    }

    pub async fn get(&mut self, url: &str) -> Page {
        self.send(Method::GET, url, None).await
    }

    pub async fn post(&mut self, url: &str, form: &[(&str, &str)]) -> Page {
        self.send(Method::POST, url, Some(form)).await
    }

    /// Follows a login redirect: fills in the login form at `login_url` and submits it;
    /// the answer (a 303 to where the login was asked from, or the form again).
    pub async fn log_in(&mut self, login_url: &str, user: &str, password: &str) -> Page {
        let form = self.get(login_url).await;
        assert_eq!(form.status, StatusCode::OK, "{}", form.body);
        let csrf = form.field("csrf");
        let next = form
            .body
            .contains("name=\"next\"")
            .then(|| form.field("next"));
        let action = login_url.split('?').next().unwrap_or(login_url).to_string();
        let mut fields = vec![
            ("csrf", csrf.as_str()),
            ("username", user),
            ("password", password),
            ("domain", "Default"),
        ];
        if let Some(n) = &next {
            fields.push(("next", n));
        }
        self.post(&action, &fields).await
    }
}

/// A device login (RFC 8628) of `user` (a Default-domain user with
/// [`crate::USER_PASSWORD`]) through public `client`, approved on the real pages: the
/// token response (access, refresh and ID token). The server needs
/// `device_poll_interval = 1`, and the client's name must contain `kubectl`
/// ([`answer_device`] checks that the page names it).
pub async fn device_login(s: &TestServer, client: &str, user: &str) -> Value {
    let form = [("client_id", client), ("scope", "openid profile")];
    let (status, _, text) = s
        .post_form("/oauth2/device_authorization", &[], &form)
        .await;
    assert_eq!(status, StatusCode::OK);
    let d: Value = serde_json::from_str(&text).expect("json");
    let link = d["verification_uri_complete"].as_str().expect("link");
    let mut browser = s.browser();
    let done = answer_device(&mut browser, link, user, "approve").await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.body);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (status, tokens) = token_request(
        s,
        &[
            ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
            ("client_id", client),
            ("device_code", d["device_code"].as_str().expect("code")),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    tokens
}
