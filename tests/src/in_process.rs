//! Limen's whole HTTP router in this process, on an in-memory SQLite store, with a clock
//! the test moves: for behaviour that waits on time (token expiry, lockout, idle and
//! device-code lifetimes), which a test of the real binary can only sleep through. The
//! requests go through the same router and middleware as `limen serve`'s; what needs the
//! process itself (connections, signals, restarts, several nodes) stays with
//! [`crate::TestServer`].

use crate::{Api, ADMIN_PASSWORD, DEFAULT_CONFIG};
use axum::body::Body;
use limen_core::bootstrap::BootstrapInput;
use limen_core::clock::{ManualClock, OsRandom};
use limen_crypto::{KeyRepository, OidcKeyRepository};
use limen_server::app::build_with;
use limen_server::Config;
use rand::Rng;
use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use std::net::SocketAddr;
use std::sync::Arc;
use tower::ServiceExt;

/// The public address the in-process node believes it has (links and issuer URLs).
pub const BASE: &str = "http://localhost";

pub struct InProcess {
    pub clock: Arc<ManualClock>,
    /// The domain services behind the router, for tests that call them directly.
    pub limen: Arc<limen_core::Limen>,
    link: Link,
    pub admin_token: String,
    pub base: String,
    _dir: tempfile::TempDir,
}

/// The way in to an in-process node's router, for as many callers as want one (a page
/// client keeps its own).
#[derive(Clone)]
pub struct Link {
    router: axum::Router,
    base: String,
}

impl InProcess {
    /// A bootstrapped node with [`DEFAULT_CONFIG`].
    pub async fn start() -> InProcess {
        Self::start_with("").await
    }

    /// A bootstrapped node with [`DEFAULT_CONFIG`] and then `extra` (TOML; `@BASE@` in it
    /// becomes [`BASE`], e.g. for an issuer). With an `[oidc] issuer` the OpenID
    /// Provider's keys are made too.
    pub async fn start_with(extra: &str) -> InProcess {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("limen.toml");
        let text = format!("{DEFAULT_CONFIG}\n{}\n", extra.replace("@BASE@", BASE));
        std::fs::write(&path, text).expect("write config");
        let mut config = Config::load(Some(&path)).expect("configuration");
        config.data_dir = dir.path().to_path_buf();
        // Shared cache: the pool's connections see one database, gone with the last one.
        let name = format!("limen-{:016x}", rand::thread_rng().gen::<u64>());
        config.database_url = Some(format!("sqlite:file:{name}?mode=memory&cache=shared"));
        KeyRepository::new(config.fernet_key_repository())
            .setup(config.fernet_tokens.max_active_keys)
            .expect("fernet keys");
        KeyRepository::new(config.credential_key_repository())
            .setup(config.credential.max_active_keys)
            .expect("credential keys");
        if config.oidc.issuer.is_some() {
            OidcKeyRepository::new(config.oidc_key_repository())
                .setup()
                .expect("OpenID Provider keys");
        }
        let clock = Arc::new(ManualClock::at(time::OffsetDateTime::now_utc()));
        let app = build_with(config, clock.clone(), Arc::new(OsRandom))
            .await
            .expect("build the application");
        app.state
            .limen
            .bootstrap(BootstrapInput {
                admin_username: "admin".into(),
                admin_password: ADMIN_PASSWORD.into(),
                project_name: "admin".into(),
                region_id: "RegionOne".into(),
                public_url: Some(format!("{BASE}/v3")),
                internal_url: None,
                admin_url: None,
            })
            .await
            .expect("bootstrap");
        let mut node = InProcess {
            clock,
            limen: app.state.limen.clone(),
            link: Link {
                router: app.router,
                base: BASE.to_string(),
            },
            admin_token: String::new(),
            base: BASE.to_string(),
            _dir: dir,
        };
        node.admin_token = node.admin_project_token().await;
        node
    }

    /// A node that is also an OpenID Provider (issuer [`BASE`]), with `extra` TOML.
    pub async fn provider(extra: &str) -> InProcess {
        Self::start_with(&format!("[oidc]\nissuer = \"@BASE@\"\n{extra}")).await
    }

    /// Moves the node's clock on.
    pub fn advance(&self, seconds: i64) {
        self.clock.advance(time::Duration::seconds(seconds));
    }
}

impl Link {
    /// One request through the router, as `limen serve` would run it.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<(&str, Vec<u8>)>,
    ) -> (StatusCode, HeaderMap, String) {
        let path = path.strip_prefix(&self.base).unwrap_or(path);
        let host = self.base.split("://").nth(1).unwrap_or("localhost");
        let mut req = axum::http::Request::builder()
            .method(method)
            .uri(path)
            .header("host", host);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let body = match body {
            Some((content_type, bytes)) => {
                req = req.header("content-type", content_type);
                Body::from(bytes)
            }
            None => Body::empty(),
        };
        let mut req = req.body(body).expect("request");
        // As the listener records it: the client's address.
        req.extensions_mut()
            .insert(axum::extract::ConnectInfo(SocketAddr::from((
                [127, 0, 0, 1],
                40000,
            ))));
        let resp = self
            .router
            .clone()
            .oneshot(req)
            .await
            .expect("the router answers");
        let status = resp.status();
        let headers = resp.headers().clone();
        let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
            .await
            .expect("body");
        (
            status,
            headers,
            String::from_utf8_lossy(&bytes).into_owned(),
        )
    }
}

impl Api for InProcess {
    async fn send_raw(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<(&str, Vec<u8>)>,
    ) -> (StatusCode, HeaderMap, String) {
        self.link.send(method, path, headers, body).await
    }

    fn browser(&self) -> crate::oauth::PageClient {
        crate::oauth::PageClient::in_process(self.link.clone())
    }

    fn admin(&self) -> &str {
        &self.admin_token
    }

    fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }
}
