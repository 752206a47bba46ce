//! The OAuth1 delegation flow (`OS-OAUTH1`): a consumer gets a request token, a project
//! admin authorizes it with some roles, the consumer trades it for an access token and
//! signs token requests with that; the tokens carry the delegated roles while the
//! authorizing user holds them and die with their access token or consumer. Requests are
//! signed here with a small RFC 5849 signer of the test's own.

use base64::Engine;
use hmac::{Hmac, Mac};
use limen_tests::in_process::InProcess;
use limen_tests::*;
use rand::Rng;
use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::collections::HashMap;

fn id(v: &Value) -> String {
    v["id"].as_str().unwrap().to_string()
}

/// RFC 5849 §3.6 percent-encoding.
fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// What to sign a request with.
#[derive(Clone)]
struct Signing<'a> {
    consumer_key: &'a str,
    consumer_secret: &'a str,
    /// Token key and secret (request or access token).
    token: Option<(&'a str, &'a str)>,
    /// More protocol parameters (`oauth_callback`, `oauth_verifier`).
    extra: Vec<(&'a str, &'a str)>,
    timestamp: i64,
}

impl<'a> Signing<'a> {
    fn consumer(key: &'a str, secret: &'a str) -> Self {
        Signing {
            consumer_key: key,
            consumer_secret: secret,
            token: None,
            extra: vec![],
            timestamp: now(),
        }
    }

    /// The `Authorization` header for `method url` (with `query` pairs signed too).
    fn header(&self, method: &str, url: &str, query: &[(&str, &str)]) -> String {
        let nonce = rand::thread_rng().gen::<u64>().to_string();
        let ts = self.timestamp.to_string();
        let mut oauth: Vec<(&str, &str)> = vec![
            ("oauth_nonce", &nonce),
            ("oauth_timestamp", &ts),
            ("oauth_version", "1.0"),
            ("oauth_signature_method", "HMAC-SHA1"),
            ("oauth_consumer_key", self.consumer_key),
        ];
        if let Some((k, _)) = self.token {
            oauth.push(("oauth_token", k));
        }
        oauth.extend(self.extra.iter().copied());
        let mut pairs: Vec<(String, String)> = oauth
            .iter()
            .chain(query.iter())
            .map(|(k, v)| (enc(k), enc(v)))
            .collect();
        pairs.sort();
        let normalized: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let base = format!("{method}&{}&{}", enc(url), enc(&normalized.join("&")));
        let key = format!(
            "{}&{}",
            enc(self.consumer_secret),
            enc(self.token.map(|t| t.1).unwrap_or(""))
        );
        let mut mac = Hmac::<sha1::Sha1>::new_from_slice(key.as_bytes()).unwrap();
        mac.update(base.as_bytes());
        let sig = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
        let mut parts: Vec<String> = oauth
            .iter()
            .map(|(k, v)| format!("{}=\"{}\"", enc(k), enc(v)))
            .collect();
        parts.push(format!("oauth_signature=\"{}\"", enc(&sig)));
        format!("OAuth {}", parts.join(", "))
    }
}

struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    text: String,
}

impl Answer {
    fn form(&self) -> HashMap<String, String> {
        self.text
            .split('&')
            .filter_map(|p| p.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or(Value::Null)
    }

    fn message(&self) -> String {
        self.json()["error"]["message"]
            .as_str()
            .unwrap_or("")
            .to_string()
    }
}

/// A POST with optional Authorization header, extra headers and JSON body.
async fn post(
    s: &impl Api,
    path: &str,
    authorization: Option<String>,
    headers: &[(&str, &str)],
    body: Option<Value>,
) -> Answer {
    let mut all: Vec<(&str, &str)> = headers.to_vec();
    if let Some(a) = &authorization {
        all.push(("Authorization", a));
    }
    let (status, headers, text) = s.exchange(Method::POST, path, &all, body).await;
    assert!(
        !status.is_server_error(),
        "{path} answered {status}: {text}\n{}",
        s.diagnostics()
    );
    Answer {
        status,
        headers,
        text,
    }
}

const REQUEST_TOKEN: &str = "/v3/OS-OAUTH1/request_token";
const ACCESS_TOKEN: &str = "/v3/OS-OAUTH1/access_token";
const AUTH: &str = "/v3/auth/tokens";

async fn request_token(s: &impl Api, sign: &Signing<'_>, project: Option<&str>) -> Answer {
    let mut sign = sign.clone();
    sign.extra.push(("oauth_callback", "oob"));
    let auth = sign.header("POST", &s.url(REQUEST_TOKEN), &[]);
    let headers: Vec<(&str, &str)> = project
        .map(|p| vec![("Requested-Project-Id", p)])
        .unwrap_or_default();
    post(s, REQUEST_TOKEN, Some(auth), &headers, None).await
}

async fn access_token(
    s: &impl Api,
    consumer: (&str, &str),
    request: (&str, &str),
    verifier: &str,
) -> Answer {
    let mut sign = Signing::consumer(consumer.0, consumer.1);
    sign.token = Some(request);
    sign.extra.push(("oauth_verifier", verifier));
    let auth = sign.header("POST", &s.url(ACCESS_TOKEN), &[]);
    post(s, ACCESS_TOKEN, Some(auth), &[], None).await
}

fn oauth1_body() -> Value {
    json!({"auth": {"identity": {"methods": ["oauth1"], "oauth1": {}}}})
}

async fn oauth1_login(s: &impl Api, consumer: (&str, &str), access: (&str, &str)) -> Answer {
    let mut sign = Signing::consumer(consumer.0, consumer.1);
    sign.token = Some(access);
    let auth = sign.header("POST", &s.url(AUTH), &[]);
    post(s, AUTH, Some(auth), &[], Some(oauth1_body())).await
}

fn subject(a: &Answer) -> String {
    a.headers
        .get("x-subject-token")
        .expect("X-Subject-Token")
        .to_str()
        .unwrap()
        .to_string()
}

fn role_names(token: &Value) -> Vec<String> {
    let mut v: Vec<String> = token["roles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap().to_string())
        .collect();
    v.sort();
    v
}

struct Consumer {
    id: String,
    secret: String,
}

async fn new_consumer(s: &impl Api) -> Consumer {
    let c = s
        .create(
            "OS-OAUTH1/consumers",
            "consumer",
            json!({"description": "c"}),
        )
        .await;
    Consumer {
        id: id(&c),
        secret: c["secret"].as_str().unwrap().to_string(),
    }
}

/// A consumer's access token for `project`, authorized with `authorizer_token`.
async fn delegate(
    s: &impl Api,
    c: &Consumer,
    project: &str,
    authorizer_token: &str,
    roles: Value,
) -> (String, String) {
    let rt = request_token(s, &Signing::consumer(&c.id, &c.secret), Some(project)).await;
    assert_eq!(rt.status, StatusCode::CREATED, "{}", rt.text);
    let rt = rt.form();
    let (st, v) = s
        .call(
            Method::PUT,
            &format!("/v3/OS-OAUTH1/authorize/{}", rt["oauth_token"]),
            Some(authorizer_token),
            Some(json!({ "roles": roles })),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let verifier = v["token"]["oauth_verifier"].as_str().unwrap();
    let at = access_token(
        s,
        (&c.id, &c.secret),
        (&rt["oauth_token"], &rt["oauth_token_secret"]),
        verifier,
    )
    .await;
    assert_eq!(at.status, StatusCode::CREATED, "{}", at.text);
    let at = at.form();
    (at["oauth_token"].clone(), at["oauth_token_secret"].clone())
}

/// The admin's user id and project id (from the admin token).
async fn admin_ids(s: &impl Api) -> (String, String) {
    let headers = [("X-Auth-Token", s.admin()), ("X-Subject-Token", s.admin())];
    let (_, _, text) = s
        .exchange(Method::GET, "/v3/auth/tokens", &headers, None)
        .await;
    let v: Value = serde_json::from_str(&text).unwrap();
    (
        v["token"]["user"]["id"].as_str().unwrap().to_string(),
        v["token"]["project"]["id"].as_str().unwrap().to_string(),
    )
}

#[tokio::test]
async fn request_tokens() {
    let s = TestServer::start().await;
    let c = new_consumer(&s).await;
    let (_, project) = admin_ids(&s).await;
    let sign = Signing::consumer(&c.id, &c.secret);

    let ok = request_token(&s, &sign, Some(&project)).await;
    assert_eq!(ok.status, StatusCode::CREATED, "{}", ok.text);
    assert_eq!(
        ok.headers.get("content-type").unwrap(),
        "application/x-www-form-urlencoded"
    );
    let f = ok.form();
    assert_eq!(f["oauth_token"].len(), 32);
    assert_eq!(f["oauth_token_secret"].len(), 32);
    // Eight hours, to the second, in Keystone's format.
    let exp = &f["oauth_expires_at"];
    assert!(exp.ends_with(".000000Z"), "{exp}");
    let exp = time::OffsetDateTime::parse(exp, &time::format_description::well_known::Rfc3339)
        .unwrap()
        .unix_timestamp();
    assert!((exp - now() - 8 * 3600).abs() < 60, "{exp}");

    let missing = request_token(&s, &sign, None).await;
    assert_eq!(missing.status, StatusCode::BAD_REQUEST);
    assert!(
        missing
            .message()
            .starts_with("Expecting to find Requested-Project-Id in request."),
        "{}",
        missing.text
    );

    let wrong_secret = Signing::consumer(&c.id, "not-the-secret");
    assert_eq!(
        request_token(&s, &wrong_secret, Some(&project))
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );

    let unknown = Signing::consumer("0123456789abcdef0123456789abcdef", &c.secret);
    let a = request_token(&s, &unknown, Some(&project)).await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
    assert_eq!(a.message(), "Consumer not found");

    let a = request_token(&s, &sign, Some("nosuchproject")).await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
    assert_eq!(a.message(), "Could not find project: nosuchproject.");

    // Keystone answers 500 without an Authorization header; Limen, 401.
    let a = post(
        &s,
        REQUEST_TOKEN,
        None,
        &[("Requested-Project-Id", &project)],
        None,
    )
    .await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED, "{}", a.text);
    assert!(a.json()["error"]["message"].is_string());
    let a = post(
        &s,
        REQUEST_TOKEN,
        Some("OAuth oauth_nonce=\"unterminated".into()),
        &[("Requested-Project-Id", &project)],
        None,
    )
    .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST, "{}", a.text);

    // A stale timestamp is refused before the signature is looked at.
    let mut stale = sign.clone();
    stale.timestamp -= 3600;
    let a = request_token(&s, &stale, Some(&project)).await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        a.message(),
        "Validation failed with errors: invalid_request, detail message is: Timestamp given \
         is invalid, differ from allowed by over 600 seconds.."
    );

    // Signed for another URL: not this request.
    let mut moved = sign.clone();
    moved.extra.push(("oauth_callback", "oob"));
    let auth = moved.header("POST", &s.url("/v3/OS-OAUTH1/access_token"), &[]);
    let a = post(
        &s,
        REQUEST_TOKEN,
        Some(auth),
        &[("Requested-Project-Id", &project)],
        None,
    )
    .await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);

    // Query parameters are signed too.
    let mut q = sign.clone();
    q.extra.push(("oauth_callback", "oob"));
    let url = s.url(REQUEST_TOKEN);
    let auth = q.header("POST", &url, &[("x", "a b")]);
    let resp = s
        .http
        .post(format!("{url}?x=a+b"))
        .header("Authorization", &auth)
        .header("Requested-Project-Id", &project)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    let resp = s
        .http
        .post(format!("{url}?x=other"))
        .header("Authorization", &auth)
        .header("Requested-Project-Id", &project)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);

    // GET is not a method of this resource.
    assert_eq!(
        s.call(Method::GET, REQUEST_TOKEN, None, None).await.0,
        StatusCode::METHOD_NOT_ALLOWED
    );
}

#[tokio::test]
async fn the_whole_flow() {
    let s = TestServer::start().await;
    let c = new_consumer(&s).await;
    let (admin_id, project) = admin_ids(&s).await;
    let member = s.role_id("member").await;
    let sign = Signing::consumer(&c.id, &c.secret);

    let rt = request_token(&s, &sign, Some(&project)).await.form();
    let rt_key = rt["oauth_token"].clone();
    let rt_secret = rt["oauth_token_secret"].clone();
    let authorize = format!("/v3/OS-OAUTH1/authorize/{rt_key}");

    // Authorizing takes a project-scoped admin.
    let u = s
        .create(
            "users",
            "user",
            json!({"name": "plain", "password": "pw-123456"}),
        )
        .await;
    s.put(
        &format!("/v3/projects/{project}/users/{}/roles/{member}", id(&u)),
        &s.admin_token,
    )
    .await;
    let (member_token, _) = s
        .token(password_auth_by_id(
            &id(&u),
            "pw-123456",
            Some(project_scope(&project)),
        ))
        .await;
    let (system_token, _) = s
        .token(password_auth_by_name(
            "admin",
            "Default",
            ADMIN_PASSWORD,
            Some(json!({"system": {"all": true}})),
        ))
        .await;
    let roles = json!({"roles": [{"id": member}]});
    for t in [&member_token, &system_token] {
        let (st, v) = s
            .call(Method::PUT, &authorize, Some(t), Some(roles.clone()))
            .await;
        assert_eq!(st, StatusCode::FORBIDDEN, "{v}");
        assert_eq!(
            v["error"]["message"],
            "You are not authorized to perform the requested action: identity:authorize_request_token."
        );
    }
    // A role the admin does not hold there; an unknown token; an unknown role name.
    let other = s.create("roles", "role", json!({"name": "other"})).await;
    let (st, _) = s
        .call(
            Method::PUT,
            &authorize,
            Some(&s.admin_token),
            Some(json!({"roles": [{"id": id(&other)}]})),
        )
        .await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    let (st, v) = s
        .call(
            Method::PUT,
            "/v3/OS-OAUTH1/authorize/0123456789abcdef0123456789abcdef",
            Some(&s.admin_token),
            Some(roles.clone()),
        )
        .await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    assert_eq!(v["error"]["message"], "Request token not found");
    let (st, v) = s
        .call(
            Method::PUT,
            &authorize,
            Some(&s.admin_token),
            Some(json!({"roles": [{"name": "nosuchrole"}]})),
        )
        .await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    assert_eq!(v["error"]["message"], "Role nosuchrole is not defined");
    let (st, _) = s
        .call(
            Method::PUT,
            &authorize,
            Some(&s.admin_token),
            Some(json!({"roles": [{"id": member, "name": "member"}]})),
        )
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);

    // Authorized twice: the second verifier replaces the first.
    let (st, v) = s
        .call(
            Method::PUT,
            &authorize,
            Some(&s.admin_token),
            Some(json!({"roles": [{"name": "admin"}]})),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let first = v["token"]["oauth_verifier"].as_str().unwrap().to_string();
    assert_eq!(first.len(), 8);
    let (st, v) = s
        .call(
            Method::PUT,
            &authorize,
            Some(&s.admin_token),
            Some(json!({"roles": [{"id": member}]})),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let verifier = v["token"]["oauth_verifier"].as_str().unwrap().to_string();
    assert!(verifier
        .chars()
        .all(|ch| ch.is_ascii_alphanumeric() && !"jiIl1oO0".contains(ch)));

    let consumer = (c.id.as_str(), c.secret.as_str());
    let request = (rt_key.as_str(), rt_secret.as_str());
    let a = access_token(&s, consumer, request, "wrongverifier").await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        a.message(),
        "Validation failed with errors: invalid_request, detail message is: Invalid verifier \
         format.."
    );
    if first != verifier {
        assert_eq!(
            access_token(&s, consumer, request, &first).await.status,
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(
        access_token(&s, consumer, request, "ABCDEFGH").await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        access_token(&s, (&c.id, "not-the-secret"), request, &verifier)
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        access_token(&s, consumer, (&rt_key, "not-the-secret"), &verifier)
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    let other_consumer = new_consumer(&s).await;
    assert_eq!(
        access_token(
            &s,
            (&other_consumer.id, &other_consumer.secret),
            request,
            &verifier
        )
        .await
        .status,
        StatusCode::UNAUTHORIZED
    );

    let at = access_token(&s, consumer, request, &verifier).await;
    assert_eq!(at.status, StatusCode::CREATED, "{}", at.text);
    let at = at.form();
    let at_key = at["oauth_token"].clone();
    let at_secret = at["oauth_token_secret"].clone();
    let at_exp = at["oauth_expires_at"].clone();

    // The request token is used up.
    let again = access_token(&s, consumer, request, &verifier).await;
    assert_eq!(again.status, StatusCode::NOT_FOUND);
    assert_eq!(again.message(), "Request token not found");

    // The access token as its user's admin sees it.
    let base = format!("/v3/users/{admin_id}/OS-OAUTH1/access_tokens");
    let (st, v) = s.get(&format!("{base}/{at_key}"), &s.admin_token).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let t = &v["access_token"];
    assert_eq!(t["id"], json!(at_key));
    assert_eq!(t["consumer_id"], json!(c.id));
    assert_eq!(t["project_id"], json!(project));
    assert_eq!(t["authorizing_user_id"], json!(admin_id));
    assert_eq!(t["expires_at"], json!(at_exp));
    assert!(t.get("access_secret").is_none() && t.get("secret").is_none());
    assert_eq!(
        t["links"]["self"],
        json!(s.url(&format!("{base}/{at_key}")))
    );
    assert_eq!(
        t["links"]["roles"],
        json!(s.url(&format!("{base}/{at_key}/roles")))
    );
    let (st, v) = s.get(&base, &s.admin_token).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(v["access_tokens"].as_array().unwrap().len(), 1);
    let (st, v) = s
        .get(&format!("{base}/{at_key}/roles"), &s.admin_token)
        .await;
    assert_eq!(st, StatusCode::OK);
    let roles = v["roles"].as_array().unwrap();
    assert_eq!(roles.len(), 1);
    assert_eq!(roles[0]["id"], json!(member));
    assert_eq!(roles[0]["name"], json!("member"));
    assert!(roles[0].get("description").is_none());
    let (st, v) = s
        .get(&format!("{base}/{at_key}/roles/{member}"), &s.admin_token)
        .await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(v["role"]["id"], json!(member));
    let admin_role = s.role_id("admin").await;
    let (st, _) = s
        .get(
            &format!("{base}/{at_key}/roles/{admin_role}"),
            &s.admin_token,
        )
        .await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    // Under another user's path the token is not there; nor for a system admin or a
    // member (project admins only).
    let (st, _) = s
        .get(
            &format!("/v3/users/{}/OS-OAUTH1/access_tokens/{at_key}", id(&u)),
            &s.admin_token,
        )
        .await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    assert_eq!(s.get(&base, &system_token).await.0, StatusCode::FORBIDDEN);
    assert_eq!(s.get(&base, &member_token).await.0, StatusCode::FORBIDDEN);

    // A token for a request signed with the access token.
    let access = (at_key.as_str(), at_secret.as_str());
    let login = oauth1_login(&s, consumer, access).await;
    assert_eq!(login.status, StatusCode::CREATED, "{}", login.text);
    let token = subject(&login);
    let body = login.json();
    let t = &body["token"];
    assert_eq!(t["methods"], json!(["oauth1"]));
    assert_eq!(t["user"]["id"], json!(admin_id));
    assert_eq!(t["project"]["id"], json!(project));
    assert_eq!(role_names(t), vec!["member", "reader"]);
    assert_eq!(
        t["OS-OAUTH1"],
        json!({"access_token_id": at_key, "consumer_id": c.id})
    );
    assert!(t["catalog"].is_array());
    let resp = s
        .http
        .get(s.url(AUTH))
        .header("X-Auth-Token", &s.admin_token)
        .header("X-Subject-Token", &token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["token"]["OS-OAUTH1"], t["OS-OAUTH1"]);
    assert_eq!(role_names(&v["token"]), vec!["member", "reader"]);

    // The token acts with the delegated roles only.
    assert_eq!(
        s.get(&format!("/v3/projects/{project}"), &token).await.0,
        StatusCode::OK
    );
    assert_eq!(s.get("/v3/users", &token).await.0, StatusCode::FORBIDDEN);

    // A scope in the body is ignored.
    let mut sign_at = Signing::consumer(&c.id, &c.secret);
    sign_at.token = Some(access);
    let mut body = oauth1_body();
    body["auth"]["scope"] = json!({"system": {"all": true}});
    let a = post(
        &s,
        AUTH,
        Some(sign_at.header("POST", &s.url(AUTH), &[])),
        &[],
        Some(body),
    )
    .await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.text);
    assert_eq!(a.json()["token"]["project"]["id"], json!(project));

    // Failures: a bad signature, no Authorization (Keystone: 500), a request token, the
    // oauth1 method mixed with another, the wrong consumer.
    assert_eq!(
        oauth1_login(&s, consumer, (&at_key, "not-the-secret"))
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        oauth1_login(&s, (&c.id, "not-the-secret"), access)
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    let a = post(&s, AUTH, None, &[], Some(oauth1_body())).await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED, "{}", a.text);
    let rt2 = request_token(&s, &sign, Some(&project)).await.form();
    let a = oauth1_login(
        &s,
        consumer,
        (&rt2["oauth_token"], &rt2["oauth_token_secret"]),
    )
    .await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
    assert_eq!(a.message(), "Access token not found");
    let mut mixed = oauth1_body();
    mixed["auth"]["identity"]["methods"] = json!(["password", "oauth1"]);
    mixed["auth"]["identity"]["password"] =
        json!({"user": {"id": admin_id, "password": ADMIN_PASSWORD}});
    let a = post(
        &s,
        AUTH,
        Some(sign_at.header("POST", &s.url(AUTH), &[])),
        &[],
        Some(mixed),
    )
    .await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        oauth1_login(
            &s,
            (&other_consumer.id, &other_consumer.secret),
            (&at_key, &at_secret)
        )
        .await
        .status,
        StatusCode::UNAUTHORIZED
    );

    // Revoking the access token: its tokens stop validating and working, the token is
    // gone, and no new tokens come from it.
    assert_eq!(
        s.delete(&format!("{base}/{at_key}"), &member_token).await.0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        s.delete(&format!("{base}/{at_key}"), &s.admin_token)
            .await
            .0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(s.validate(&token).await, StatusCode::NOT_FOUND);
    assert_eq!(
        s.get(&format!("/v3/projects/{project}"), &token).await.0,
        StatusCode::UNAUTHORIZED
    );
    let (st, v) = s.get(&format!("{base}/{at_key}"), &s.admin_token).await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    assert_eq!(v["error"]["message"], "Access token not found");
    assert_eq!(
        s.delete(&format!("{base}/{at_key}"), &s.admin_token)
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    let a = oauth1_login(&s, consumer, access).await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn oauth1_tokens_are_delegations() {
    let s = TestServer::start().await;
    let c = new_consumer(&s).await;
    let (admin_id, project) = admin_ids(&s).await;
    // Everything the admin holds, so only the delegation rules stand in the way.
    let (key, secret) =
        delegate(&s, &c, &project, &s.admin_token, json!([{"name": "admin"}])).await;
    let login = oauth1_login(&s, (&c.id, &c.secret), (&key, &secret)).await;
    assert_eq!(login.status, StatusCode::CREATED, "{}", login.text);
    let token = subject(&login);
    assert_eq!(
        role_names(&login.json()["token"]),
        vec!["admin", "manager", "member", "reader"]
    );

    // No new token from it.
    let (st, _, v) = s.authenticate(token_auth(&token, None)).await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    assert_eq!(
        v["error"]["message"],
        "You are not authorized to perform the requested action: Using OAuth-scoped token to \
         create another token. Create a new OAuth-scoped token instead."
    );
    // No trust, application credential or EC2 credential.
    let trustee = s
        .create(
            "users",
            "user",
            json!({"name": "trustee", "password": "pw-123456"}),
        )
        .await;
    let (st, v) = s
        .post(
            "/v3/OS-TRUST/trusts",
            &token,
            json!({"trust": {"trustor_user_id": admin_id, "trustee_user_id": id(&trustee),
                             "project_id": project, "impersonation": false,
                             "roles": [{"name": "reader"}]}}),
        )
        .await;
    assert_eq!(st, StatusCode::FORBIDDEN, "{v}");
    let (st, _) = s
        .post(
            &format!("/v3/users/{admin_id}/application_credentials"),
            &token,
            json!({"application_credential": {"name": "from-oauth"}}),
        )
        .await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    let (st, _) = s
        .post(
            &format!("/v3/users/{admin_id}/credentials/OS-EC2"),
            &token,
            json!({"tenant_id": project}),
        )
        .await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    // No managing access tokens, and no authorizing new request tokens.
    let base = format!("/v3/users/{admin_id}/OS-OAUTH1/access_tokens");
    for path in [
        base.clone(),
        format!("{base}/{key}"),
        format!("{base}/{key}/roles"),
    ] {
        assert_eq!(
            s.get(&path, &token).await.0,
            StatusCode::FORBIDDEN,
            "{path}"
        );
    }
    assert_eq!(
        s.delete(&format!("{base}/{key}"), &token).await.0,
        StatusCode::FORBIDDEN
    );
    let rt = request_token(&s, &Signing::consumer(&c.id, &c.secret), Some(&project))
        .await
        .form();
    let (st, v) = s
        .call(
            Method::PUT,
            &format!("/v3/OS-OAUTH1/authorize/{}", rt["oauth_token"]),
            Some(&token),
            Some(json!({"roles": [{"name": "reader"}]})),
        )
        .await;
    assert_eq!(st, StatusCode::FORBIDDEN, "{v}");
    // It still is the admin's token for what the admin may do there.
    assert_eq!(s.get("/v3/users", &token).await.0, StatusCode::OK);
    assert_eq!(s.validate(&token).await, StatusCode::OK);
}

#[tokio::test]
async fn roles_follow_the_authorizing_user() {
    let s = TestServer::start().await;
    let c = new_consumer(&s).await;
    let p = s
        .create(
            "projects",
            "project",
            json!({"name": "op", "domain_id": "default"}),
        )
        .await;
    let alice = s
        .create(
            "users",
            "user",
            json!({"name": "alice", "password": "pw-123456"}),
        )
        .await;
    let admin_role = s.role_id("admin").await;
    let reader = s.role_id("reader").await;
    let grant = |role: &str| format!("/v3/projects/{}/users/{}/roles/{role}", id(&p), id(&alice));
    s.put(&grant(&admin_role), &s.admin_token).await;
    let (alice_token, _) = s
        .token(password_auth_by_id(
            &id(&alice),
            "pw-123456",
            Some(project_scope(&id(&p))),
        ))
        .await;
    let (key, secret) = delegate(&s, &c, &id(&p), &alice_token, json!([{"name": "member"}])).await;
    let login = oauth1_login(&s, (&c.id, &c.secret), (&key, &secret)).await;
    assert_eq!(login.status, StatusCode::CREATED, "{}", login.text);
    let token = subject(&login);
    assert_eq!(role_names(&login.json()["token"]), vec!["member", "reader"]);

    // A delegation of no roles is made, but gives no token.
    let (none, none_secret) = delegate(&s, &c, &id(&p), &alice_token, json!([])).await;
    let a = oauth1_login(&s, (&c.id, &c.secret), (&none, &none_secret)).await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED, "{}", a.text);

    // Alice loses her roles there: the token is dead and no new one comes.
    s.delete(&grant(&admin_role), &s.admin_token).await;
    assert_eq!(s.validate(&token).await, StatusCode::NOT_FOUND);
    assert_eq!(
        oauth1_login(&s, (&c.id, &c.secret), (&key, &secret))
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    // With reader alone, the tokens carry what is left of the delegation.
    s.put(&grant(&reader), &s.admin_token).await;
    let login = oauth1_login(&s, (&c.id, &c.secret), (&key, &secret)).await;
    assert_eq!(login.status, StatusCode::CREATED, "{}", login.text);
    assert_eq!(role_names(&login.json()["token"]), vec!["reader"]);
    let resp = s
        .http
        .get(s.url(AUTH))
        .header("X-Auth-Token", &s.admin_token)
        .header("X-Subject-Token", &token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(role_names(&v["token"]), vec!["reader"]);

    // A disabled authorizing user: nothing works.
    let (st, _) = s
        .patch(
            &format!("/v3/users/{}", id(&alice)),
            &s.admin_token,
            json!({"user": {"enabled": false}}),
        )
        .await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(s.validate(&token).await, StatusCode::NOT_FOUND);
    assert_eq!(
        oauth1_login(&s, (&c.id, &c.secret), (&key, &secret))
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn deleting_the_consumer_deletes_its_access_tokens() {
    let s = TestServer::start().await;
    let c = new_consumer(&s).await;
    let keep = new_consumer(&s).await;
    let (admin_id, project) = admin_ids(&s).await;
    let roles = json!([{"name": "member"}]);
    let (key, secret) = delegate(&s, &c, &project, &s.admin_token, roles.clone()).await;
    let (kept, kept_secret) = delegate(&s, &keep, &project, &s.admin_token, roles).await;
    let login = oauth1_login(&s, (&c.id, &c.secret), (&key, &secret)).await;
    assert_eq!(login.status, StatusCode::CREATED);
    let token = subject(&login);
    let kept_login = oauth1_login(&s, (&keep.id, &keep.secret), (&kept, &kept_secret)).await;
    let kept_token = subject(&kept_login);
    // A request token of the consumer, pending.
    let rt = request_token(&s, &Signing::consumer(&c.id, &c.secret), Some(&project))
        .await
        .form();

    assert_eq!(
        s.delete(&format!("/v3/OS-OAUTH1/consumers/{}", c.id), &s.admin_token)
            .await
            .0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(s.validate(&token).await, StatusCode::NOT_FOUND);
    assert_eq!(s.validate(&kept_token).await, StatusCode::OK);
    let (_, v) = s
        .get(
            &format!("/v3/users/{admin_id}/OS-OAUTH1/access_tokens"),
            &s.admin_token,
        )
        .await;
    let ids: Vec<&str> = v["access_tokens"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec![kept.as_str()]);
    let (st, _) = s
        .call(
            Method::PUT,
            &format!("/v3/OS-OAUTH1/authorize/{}", rt["oauth_token"]),
            Some(&s.admin_token),
            Some(json!({"roles": []})),
        )
        .await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    assert_eq!(
        s.delete(&format!("/v3/OS-OAUTH1/consumers/{}", c.id), &s.admin_token)
            .await
            .0,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn token_lifetimes() {
    let s =
        InProcess::start_with("[oauth1]\nrequest_token_duration = 0\naccess_token_duration = 3\n")
            .await;
    let c = new_consumer(&s).await;
    let (admin_id, project) = admin_ids(&s).await;
    // A request token without expiry says none.
    let rt = request_token(&s, &Signing::consumer(&c.id, &c.secret), Some(&project)).await;
    assert_eq!(rt.status, StatusCode::CREATED);
    assert!(!rt.form().contains_key("oauth_expires_at"), "{}", rt.text);

    let (key, secret) = delegate(
        &s,
        &c,
        &project,
        &s.admin_token,
        json!([{"name": "reader"}]),
    )
    .await;
    let login = oauth1_login(&s, (&c.id, &c.secret), (&key, &secret)).await;
    assert_eq!(login.status, StatusCode::CREATED);
    let token = subject(&login);
    // The token ends with its access token.
    let (_, v) = s
        .get(
            &format!("/v3/users/{admin_id}/OS-OAUTH1/access_tokens/{key}"),
            &s.admin_token,
        )
        .await;
    assert_eq!(
        login.json()["token"]["expires_at"],
        v["access_token"]["expires_at"]
    );
    s.advance(2);
    assert_eq!(s.validate(&token).await, StatusCode::OK, "not yet expired");
    s.advance(2);
    assert_eq!(s.validate(&token).await, StatusCode::NOT_FOUND);
    assert_eq!(
        oauth1_login(&s, (&c.id, &c.secret), (&key, &secret))
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn secrets_survive_credential_key_rotation() {
    let s = TestServer::start().await;
    let c = new_consumer(&s).await;
    let (_, project) = admin_ids(&s).await;
    let (key, secret) = delegate(
        &s,
        &c,
        &project,
        &s.admin_token,
        json!([{"name": "reader"}]),
    )
    .await;
    let sign = Signing::consumer(&c.id, &c.secret);
    let pending = request_token(&s, &sign, Some(&project)).await.form();
    // More rotations than there are active keys: every secret must have been re-sealed.
    for _ in 0..4 {
        let out = s.limen(&["keys", "credential", "rotate"]);
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("re-encrypted"),
            "{out:?}"
        );
    }
    let login = oauth1_login(&s, (&c.id, &c.secret), (&key, &secret)).await;
    assert_eq!(login.status, StatusCode::CREATED, "{}", login.text);
    assert_eq!(
        request_token(&s, &sign, Some(&project)).await.status,
        StatusCode::CREATED
    );
    let (st, v) = s
        .call(
            Method::PUT,
            &format!("/v3/OS-OAUTH1/authorize/{}", pending["oauth_token"]),
            Some(&s.admin_token),
            Some(json!({"roles": [{"name": "reader"}]})),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let at = access_token(
        &s,
        (&c.id, &c.secret),
        (&pending["oauth_token"], &pending["oauth_token_secret"]),
        v["token"]["oauth_verifier"].as_str().unwrap(),
    )
    .await;
    assert_eq!(at.status, StatusCode::CREATED, "{}", at.text);
}

#[tokio::test]
async fn replayed_oauth1_requests_are_refused_on_every_node() {
    let s = TestServer::start().await;
    let c = new_consumer(&s).await;
    let (_, project) = admin_ids(&s).await;
    // A second node on the same database, with this node's key files.
    let node2 = s
        .join_prepared(DEFAULT_CONFIG, |dir| {
            for keys in ["fernet-keys", "credential-keys"] {
                let from = s.dir.path().join(keys);
                if from.exists() {
                    copy_dir(&from, &dir.join(keys));
                }
            }
        })
        .await;

    // A captured request token request cannot be sent again.
    let mut sign = Signing::consumer(&c.id, &c.secret);
    sign.extra.push(("oauth_callback", "oob"));
    let captured = sign.header("POST", &s.url(REQUEST_TOKEN), &[]);
    let headers = [("Requested-Project-Id", project.as_str())];
    let first = post(&s, REQUEST_TOKEN, Some(captured.clone()), &headers, None).await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.text);
    let again = post(&s, REQUEST_TOKEN, Some(captured), &headers, None).await;
    assert_eq!(again.status, StatusCode::UNAUTHORIZED, "{}", again.text);

    // A captured oauth1 login is refused when replayed, here and on the other node (to
    // which it comes under this node's name, as behind a load balancer).
    let (key, secret) = delegate(
        &s,
        &c,
        &project,
        &s.admin_token,
        json!([{"name": "reader"}]),
    )
    .await;
    let this_host = s.base.trim_start_matches("http://").to_string();
    let as_this_node = [("Host", this_host.as_str())];
    let mut sign = Signing::consumer(&c.id, &c.secret);
    sign.token = Some((&key, &secret));
    let captured = sign.header("POST", &s.url(AUTH), &[]);
    let login = post(&s, AUTH, Some(captured.clone()), &[], Some(oauth1_body())).await;
    assert_eq!(login.status, StatusCode::CREATED, "{}", login.text);
    let replay = post(&s, AUTH, Some(captured.clone()), &[], Some(oauth1_body())).await;
    assert_eq!(replay.status, StatusCode::UNAUTHORIZED, "{}", replay.text);
    let replay = post(
        &node2,
        AUTH,
        Some(captured),
        &as_this_node,
        Some(oauth1_body()),
    )
    .await;
    assert_eq!(replay.status, StatusCode::UNAUTHORIZED, "{}", replay.text);
    let captured = sign.header("POST", &s.url(AUTH), &[]);
    let login = post(
        &node2,
        AUTH,
        Some(captured.clone()),
        &as_this_node,
        Some(oauth1_body()),
    )
    .await;
    assert_eq!(login.status, StatusCode::CREATED, "{}", login.text);
    let replay = post(&s, AUTH, Some(captured), &[], Some(oauth1_body())).await;
    assert_eq!(replay.status, StatusCode::UNAUTHORIZED, "{}", replay.text);
    // A fresh nonce still signs in.
    let fresh = oauth1_login(&s, (&c.id, &c.secret), (&key, &secret)).await;
    assert_eq!(fresh.status, StatusCode::CREATED, "{}", fresh.text);
    // The nonces are kept in the store shared by every node, until their window ends.
    let kept = s
        .stored_strings("SELECT id FROM oauth_records WHERE kind = 'oauth1_nonce'")
        .await;
    assert_eq!(kept.len(), 6, "{kept:?}");
}
