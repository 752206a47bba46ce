//! What a test says to a Limen, whichever one it is: the real binary over HTTP
//! ([`crate::TestServer`]) or the same router in this process with a clock the test moves
//! ([`crate::in_process::InProcess`]). The helpers are written once, on [`Api::exchange`].

use crate::USER_PASSWORD;
use crate::{password_auth_by_id, password_auth_by_name, project_scope, ADMIN_PASSWORD};
use limen_core::percent::encode;
use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

#[allow(async_fn_in_trait)]
pub trait Api {
    /// One request with these headers and an optional body (its content type and
    /// bytes): the status, the response's headers and its body as text.
    async fn send_raw(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<(&str, Vec<u8>)>,
    ) -> (StatusCode, HeaderMap, String);

    /// [`Api::send_raw`] with an optional JSON body.
    async fn exchange(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<Value>,
    ) -> (StatusCode, HeaderMap, String) {
        let body = body.map(|b| ("application/json", b.to_string().into_bytes()));
        self.send_raw(method, path, headers, body).await
    }

    /// A POST of an HTML form (`application/x-www-form-urlencoded`).
    async fn post_form(
        &self,
        path: &str,
        headers: &[(&str, &str)],
        form: &[(&str, &str)],
    ) -> (StatusCode, HeaderMap, String) {
        let body = (
            "application/x-www-form-urlencoded",
            form_urlencoded(form).into_bytes(),
        );
        self.send_raw(Method::POST, path, headers, Some(body)).await
    }

    /// A browser without scripts for this node's pages.
    fn browser(&self) -> crate::oauth::PageClient;

    /// The bootstrapped admin's token (project-scoped).
    fn admin(&self) -> &str;

    /// The absolute URL of `path` as the node sees it (what OAuth 1.0a signs).
    fn url(&self, path: &str) -> String;

    /// What to show when a request fails with a server error (the server's log).
    fn diagnostics(&self) -> String {
        String::new()
    }

    /// Sends a request with an optional token and JSON body; returns status and JSON (or
    /// `Value::Null` for an empty body). Server errors (5xx) fail the test on the spot.
    async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let headers: Vec<(&str, &str)> = token.map(|t| ("X-Auth-Token", t)).into_iter().collect();
        let (status, _, text) = self.exchange(method, path, &headers, body).await;
        assert!(
            !status.is_server_error(),
            "{path} answered {status}: {text}\n{}",
            self.diagnostics()
        );
        let v = if text.trim().is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        (status, v)
    }

    async fn get(&self, path: &str, token: &str) -> (StatusCode, Value) {
        self.call(Method::GET, path, Some(token), None).await
    }

    async fn post(&self, path: &str, token: &str, body: Value) -> (StatusCode, Value) {
        self.call(Method::POST, path, Some(token), Some(body)).await
    }

    async fn patch(&self, path: &str, token: &str, body: Value) -> (StatusCode, Value) {
        self.call(Method::PATCH, path, Some(token), Some(body))
            .await
    }

    async fn put(&self, path: &str, token: &str) -> (StatusCode, Value) {
        self.call(Method::PUT, path, Some(token), None).await
    }

    async fn delete(&self, path: &str, token: &str) -> (StatusCode, Value) {
        self.call(Method::DELETE, path, Some(token), None).await
    }

    /// `POST /v3/auth/tokens`; returns status, token id (if issued) and body.
    async fn authenticate(&self, body: Value) -> (StatusCode, Option<String>, Value) {
        let (status, headers, text) = self
            .exchange(Method::POST, "/v3/auth/tokens", &[], Some(body))
            .await;
        let id = headers
            .get("x-subject-token")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        assert!(!status.is_server_error(), "auth answered {status}: {text}");
        (
            status,
            id,
            serde_json::from_str(&text).unwrap_or(Value::Null),
        )
    }

    /// Issues a token or fails the test.
    async fn token(&self, body: Value) -> (String, Value) {
        let (status, id, body) = self.authenticate(body).await;
        assert_eq!(status, StatusCode::CREATED, "token request failed: {body}");
        (id.expect("X-Subject-Token"), body)
    }

    async fn admin_project_token(&self) -> String {
        self.token(password_auth_by_name(
            "admin",
            "Default",
            ADMIN_PASSWORD,
            Some(json!({"project": {"name": "admin", "domain": {"id": "default"}}})),
        ))
        .await
        .0
    }

    /// Validates `subject` with the admin token; returns the status.
    async fn validate(&self, subject: &str) -> StatusCode {
        let headers = [("X-Auth-Token", self.admin()), ("X-Subject-Token", subject)];
        self.exchange(Method::GET, "/v3/auth/tokens", &headers, None)
            .await
            .0
    }

    /// Revokes `subject` with the admin token; returns the status.
    async fn revoke(&self, subject: &str) -> StatusCode {
        let headers = [("X-Auth-Token", self.admin()), ("X-Subject-Token", subject)];
        self.exchange(Method::DELETE, "/v3/auth/tokens", &headers, None)
            .await
            .0
    }

    /// Creates an entity and returns its JSON (asserting 201).
    async fn create(&self, collection: &str, key: &str, body: Value) -> Value {
        let (s, v) = self
            .post(
                &format!("/v3/{collection}"),
                self.admin(),
                json!({ key: body }),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "create {collection}: {v}");
        v[key].clone()
    }

    /// A new project `name` in the default domain: its id.
    async fn new_project(&self, name: &str) -> String {
        let p = self
            .create(
                "projects",
                "project",
                json!({"name": name, "domain_id": "default"}),
            )
            .await;
        p["id"].as_str().expect("project id").to_string()
    }

    /// A new user (password [`USER_PASSWORD`]) with `member` on `project_id`: its id and a
    /// token scoped to that project.
    async fn new_member(&self, name: &str, project_id: &str) -> (String, String) {
        let u = self
            .create(
                "users",
                "user",
                json!({"name": name, "password": USER_PASSWORD}),
            )
            .await;
        let user_id = u["id"].as_str().expect("user id").to_string();
        let member = self.role_id("member").await;
        let (st, v) = self
            .put(
                &format!("/v3/projects/{project_id}/users/{user_id}/roles/{member}"),
                self.admin(),
            )
            .await;
        assert_eq!(st, StatusCode::NO_CONTENT, "grant member: {v}");
        let (token, _) = self
            .token(password_auth_by_id(
                &user_id,
                USER_PASSWORD,
                Some(project_scope(project_id)),
            ))
            .await;
        (user_id, token)
    }

    /// Makes an application credential for `user_id` with the user's project token and
    /// logs in with it: the credential (with its secret) and the new token.
    async fn application_credential_token(
        &self,
        user_id: &str,
        user_token: &str,
        name: &str,
    ) -> (Value, String) {
        let (st, v) = self
            .post(
                &format!("/v3/users/{user_id}/application_credentials"),
                user_token,
                json!({"application_credential": {"name": name}}),
            )
            .await;
        assert_eq!(
            st,
            StatusCode::CREATED,
            "create application credential: {v}"
        );
        let ac = v["application_credential"].clone();
        let (token, _) = self
            .token(
                json!({"auth": {"identity": {"methods": ["application_credential"],
                "application_credential": {"id": ac["id"], "secret": ac["secret"]}}}}),
            )
            .await;
        (ac, token)
    }

    /// A new domain `name` with a user holding `manager` on it: the domain's id and that
    /// manager's domain-scoped token (the SCS domain-manager persona).
    async fn domain_manager(&self, name: &str) -> (String, String) {
        let d = self
            .create("domains", "domain", json!({"name": name}))
            .await;
        let domain = d["id"].as_str().expect("id").to_string();
        let m = self
            .create(
                "users",
                "user",
                json!({"name": format!("{name}-m"), "domain_id": domain, "password": "pw-123456"}),
            )
            .await;
        let user = m["id"].as_str().expect("id").to_string();
        let manager = self.role_id("manager").await;
        self.put(
            &format!("/v3/domains/{domain}/users/{user}/roles/{manager}"),
            self.admin(),
        )
        .await;
        let (token, _) = self
            .token(password_auth_by_id(
                &user,
                "pw-123456",
                Some(json!({"domain": {"id": domain}})),
            ))
            .await;
        (domain, token)
    }

    /// What the cluster with `webhook_token` learns of `token`: TokenReview v1's
    /// `status` (the webhook always answers 200).
    async fn token_review(&self, webhook_token: &str, token: &str) -> Value {
        let bearer = format!("Bearer {webhook_token}");
        let review = json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview",
                            "spec": {"token": token}});
        let (status, _, text) = self
            .exchange(
                Method::POST,
                "/kubernetes/tokenreview",
                &[("Authorization", bearer.as_str())],
                Some(review),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{text}");
        serde_json::from_str::<Value>(&text).expect("json")["status"].clone()
    }

    async fn role_id(&self, name: &str) -> String {
        let (_, v) = self
            .get(&format!("/v3/roles?name={name}"), self.admin())
            .await;
        v["roles"][0]["id"].as_str().expect("role").to_string()
    }
}

/// `form` as `application/x-www-form-urlencoded` (every byte but RFC 3986's unreserved
/// ones percent-encoded, which form decoding reads the same).
pub fn form_urlencoded(form: &[(&str, &str)]) -> String {
    form.iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}
