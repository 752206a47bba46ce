//! Wiring: configuration → store, keys, policy → the axum application, and serving it.

use crate::config::Config;
use crate::error::ApiError;
use crate::keys::{self, KeySync};
use crate::routes;
use crate::state::AppState;
use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::Router;
use limen_core::clock::{Clock, OsRandom, Random, SystemClock};
use limen_core::config::TokenFormat;
use limen_core::token::validation_cache::Derived;
use limen_core::Limen;
use limen_crypto::{
    FernetCodec, FernetCredentialCipher, JwsCodec, JwsKeyRepository, KeyRepository, KeystoneHasher,
    LiveOidcKeys, OidcKeyRepository, SharedFernetKeys, TokenFormats,
};
use limen_policy::Policy;
use limen_store::{KeyKind, SqlStore};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use thiserror::Error;
use tower_http::catch_panic::CatchPanicLayer;
use tracing::Instrument;

#[derive(Debug, Error)]
pub enum StartError {
    #[error(transparent)]
    Store(#[from] limen_store::OpenError),
    #[error("fernet keys: {0} (run `limen bootstrap` or `limen keys fernet setup`)")]
    Keys(#[from] limen_crypto::KeyRepositoryError),
    #[error(transparent)]
    SharedKeys(#[from] keys::KeysError),
    #[error(transparent)]
    OidcKeys(limen_crypto::OidcKeyError),
    #[error("{0}")]
    Config(String),
    #[error("cannot index the stored documents: {0}")]
    Index(String),
    #[error(transparent)]
    Policy(#[from] limen_policy::PolicyError),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: String,
        source: std::io::Error,
    },
    #[error("server error: {0}")]
    Serve(std::io::Error),
}

/// A built application: the shared state and the router over it.
pub struct App {
    pub state: AppState,
    pub store: SqlStore,
    pub router: Router,
    /// With `[keys] source = "database"`: keeps key material in step with the store.
    pub sync: Option<Arc<KeySync>>,
}

/// Opens the store and key material named by `config` and builds the domain services.
pub async fn open_services(
    config: &Config,
    clock: Arc<dyn Clock>,
    random: Arc<dyn Random>,
) -> Result<(Limen, SqlStore), StartError> {
    let (limen, store, _) = open_services_with_sync(config, clock, random).await?;
    Ok((limen, store))
}

/// Like [`open_services`], and with `[keys] source = "database"` also what keeps the key
/// material in step with the store while the node runs (see [`keys::KeyFollower`]).
pub async fn open_services_with_sync(
    config: &Config,
    clock: Arc<dyn Clock>,
    random: Arc<dyn Random>,
) -> Result<(Limen, SqlStore, Option<Arc<KeySync>>), StartError> {
    ensure_private_dir(&config.data_dir)?;
    if let Some(re) = &config.security_compliance.password_regex {
        fancy_regex::Regex::new(re)
            .map_err(|e| StartError::Config(format!("security_compliance.password_regex: {e}")))?;
    }
    let database = keys::is_database(config);
    // The KEK is checked before the database is touched: a node without one must not start.
    let kek = if database {
        Some(Arc::new(keys::load_kek(config)?))
    } else {
        None
    };
    let store = SqlStore::open(&config.database_url()).await?;
    let mut shared = None;
    let fernet = match &kek {
        None => FernetCodec::new(
            KeyRepository::new(config.fernet_key_repository()),
            config.auth.methods.clone(),
            clock.clone(),
        )?,
        Some(kek) => {
            let set = Arc::new(SharedFernetKeys::new(
                "fernet",
                keys::load_keys(&store, kek, KeyKind::Fernet).await?,
            )?);
            shared = Some(set.clone());
            FernetCodec::shared(set, config.auth.methods.clone(), clock.clone())
        }
    };
    let jws = if config.uses_jws() {
        let (private, public) = config.jws_key_repositories();
        let repo = JwsKeyRepository::new(private, public);
        if database {
            // Scale-out needs no manual step: a new node makes its own key pair and
            // publishes its public key through the store.
            repo.setup().map_err(keys::KeysError::from)?;
        }
        let jws = JwsCodec::new(repo).map_err(|e| StartError::Config(e.to_string()))?;
        if config.token.provider == TokenFormat::Jws && !jws.can_sign() {
            return Err(StartError::Config(format!(
                "token.provider is jws but there is no JWS signing key in {}; run `limen keys jws setup`",
                config.jws_key_repositories().0.display()
            )));
        }
        Some(jws)
    } else {
        None
    };
    let codec = Arc::new(TokenFormats::new(
        config.token.provider,
        &config.token.accept,
        fernet,
        jws,
    ));
    let hasher =
        KeystoneHasher::new(config.identity.password_hash_rounds).map_err(StartError::Config)?;
    let mut limen = Limen::new(
        Arc::new(store.clone()),
        clock,
        random,
        codec.clone(),
        Arc::new(hasher),
        config.core(),
    );
    let mut credential_set = None;
    match &kek {
        None => {
            let credential_keys = KeyRepository::new(config.credential_key_repository());
            if credential_keys.load().is_ok() {
                limen = limen
                    .with_credential_cipher(Arc::new(FernetCredentialCipher::new(credential_keys)));
            } else {
                tracing::warn!(
                    repository = %credential_keys.dir().display(),
                    "no credential keys: the credentials API answers 503 until `limen keys credential setup`"
                );
            }
        }
        Some(kek) => match keys::load_keys(&store, kek, KeyKind::Credential).await {
            Ok(texts) => {
                let set = Arc::new(SharedFernetKeys::new("credential", texts)?);
                credential_set = Some(set.clone());
                limen = limen.with_credential_cipher(Arc::new(FernetCredentialCipher::shared(set)));
            }
            Err(keys::KeysError::NoKeys(_)) => tracing::warn!(
                "no credential keys in the database: the credentials API answers 503 until \
                 `limen keys credential setup` and a restart"
            ),
            Err(e) => return Err(e.into()),
        },
    }
    let sync = match (kek, shared) {
        (Some(kek), Some(fernet)) => {
            let oidc = LiveOidcKeys::database(keys::load_oidc_keys(&store, &kek).await?);
            let sync = Arc::new(KeySync {
                store: store.clone(),
                kek,
                node: keys::node_name(config),
                fernet,
                credential: credential_set,
                formats: codec,
                oidc: Arc::new(oidc),
            });
            sync.refresh_all().await?;
            Some(sync)
        }
        _ => None,
    };
    let indexed = limen
        .index_documents()
        .await
        .map_err(|e| StartError::Index(e.to_string()))?;
    if indexed > 0 {
        tracing::info!(
            documents = indexed,
            "indexed documents written by an older version"
        );
    }
    Ok((limen, store, sync))
}

/// Creates the data directory readable by its owner only (it holds password hashes and
/// keys); an existing directory keeps the permissions its operator gave it.
pub fn ensure_private_dir(dir: &std::path::Path) -> Result<(), StartError> {
    if dir.exists() {
        return Ok(());
    }
    let fail = |e: std::io::Error| StartError::Config(format!("data dir {}: {e}", dir.display()));
    std::fs::create_dir_all(dir).map_err(fail)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(fail)?;
    }
    Ok(())
}

fn load_policy(config: &Config) -> Result<Policy, StartError> {
    Ok(match &config.policy.file {
        Some(f) => Policy::from_file(f)?,
        None => Policy::keystone_defaults(),
    })
}

pub async fn build(config: Config) -> Result<App, StartError> {
    build_with(config, Arc::new(SystemClock), Arc::new(OsRandom)).await
}

/// [`build`] with a given clock and randomness (tests move a manual clock).
pub async fn build_with(
    config: Config,
    clock: Arc<dyn Clock>,
    random: Arc<dyn Random>,
) -> Result<App, StartError> {
    let (limen, store, sync) = open_services_with_sync(&config, clock, random).await?;
    limen.set_policy(load_policy(&config)?);
    let login_limiter =
        crate::ratelimit::LoginLimiter::new(config.auth.failed_logins_per_minute).map(Arc::new);
    let user_code_limiter =
        crate::ratelimit::LoginLimiter::new(config.oidc.user_code_attempts_per_minute)
            .map(Arc::new);
    // Bodies weigh more than validations (a catalog each): a quarter as many.
    let token_bodies = Arc::new(Derived::new(
        limen.config.token.caching,
        limen.config.token.cache_size / 4,
    ));
    // With keys in the database the OIDC keys come from there (and follow its changes).
    let oidc_keys = match &sync {
        Some(s) => s.oidc.clone(),
        None => Arc::new(
            LiveOidcKeys::files(OidcKeyRepository::new(config.oidc_key_repository()))
                .map_err(StartError::OidcKeys)?,
        ),
    };
    let proxies = crate::client_addr::TrustedProxies::parse(&config.http.trusted_proxies)
        .map_err(|e| StartError::Config(e.0))?;
    let state = AppState {
        proxies: Arc::new(proxies),
        oidc_keys,
        limen: Arc::new(limen),
        config: Arc::new(config),
        login_limiter,
        user_code_limiter,
        token_bodies,
    };
    let router = routes::router()
        .layer(middleware::from_fn_with_state(
            state.clone(),
            request_headers,
        ))
        .layer(CatchPanicLayer::custom(|_| {
            tracing::error!("a request handler panicked");
            ApiError::new(
                axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                "An unexpected error prevented the server from fulfilling your request.",
            )
            .into_response()
        }))
        .with_state(state.clone());
    Ok(App {
        state,
        store,
        router,
        sync,
    })
}

/// Keystone's response headers: a request id and `Vary: X-Auth-Token`. Finds the client's
/// address first (through trusted proxies) for the handlers' limits and for the log.
async fn request_headers(
    axum::extract::State(state): axum::extract::State<AppState>,
    mut req: Request,
    next: Next,
) -> Response {
    let client = req
        .extensions()
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| state.proxies.client(c.0.ip(), req.headers()));
    if let Some(ip) = client {
        req.extensions_mut().insert(crate::extract::ClientIp(ip));
    }
    let id = request_id();
    req.extensions_mut()
        .insert(crate::extract::RequestId(id.clone()));
    let within = std::time::Duration::from_secs(state.config.http.body_read_timeout);
    // A request without a body has nothing to time.
    let req = req.map(|body| {
        if http_body::Body::size_hint(&body).exact() == Some(0) {
            body
        } else {
            axum::body::Body::new(crate::listener::DeadlineBody::new(body, within))
        }
    });
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    // Opened before the handler, so every line the request logs carries its id.
    let span = tracing::info_span!(
        "request",
        request_id = %id,
        client = %client.map(|ip| ip.to_string()).unwrap_or_default(),
    );
    let started = std::time::Instant::now();
    let mut resp = next.run(req).instrument(span.clone()).await;
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&id) {
        h.insert(HeaderName::from_static("x-openstack-request-id"), v);
    }
    h.insert(
        axum::http::header::VARY,
        HeaderValue::from_static("X-Auth-Token"),
    );
    span.in_scope(|| {
        tracing::info!(
            %method,
            path = %path,
            status = resp.status().as_u16(),
            elapsed_ms = started.elapsed().as_secs_f64() * 1000.0,
            "request"
        )
    });
    resp
}

/// Keystone's request id: `req-` and a random UUID. Drawn from a user-space generator
/// seeded by the OS: a request id is a label, not a secret.
fn request_id() -> Arc<str> {
    let bytes: [u8; 16] = rand::random();
    let uuid = uuid::Builder::from_random_bytes(bytes).into_uuid();
    Arc::from(format!("req-{}", uuid.hyphenated()))
}

/// Re-reads the policy file when it changes, so overrides apply without a restart.
fn watch_policy(state: AppState, file: PathBuf) {
    tokio::spawn(async move {
        let mut seen: Option<SystemTime> = std::fs::metadata(&file).and_then(|m| m.modified()).ok();
        loop {
            tokio::time::sleep(Duration::from_secs(2)).await;
            let now = std::fs::metadata(&file).and_then(|m| m.modified()).ok();
            if now.is_some() && now != seen {
                seen = now;
                match Policy::from_file(&file) {
                    Ok(p) => {
                        state.limen.set_policy(p);
                        tracing::info!(file = %file.display(), "policy reloaded");
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "policy file changed but is invalid; keeping the rules in force")
                    }
                }
            }
        }
    });
}

/// Drops revocation events no live token can match any more.
fn prune_revocations(state: AppState) {
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_secs(600)).await;
            let t = &state.config.token;
            let keep =
                time::Duration::seconds(t.expiration.max(0) + t.allow_expired_window.max(0) + 3600);
            let before = state.limen.clock.now() - keep;
            if let Err(e) = state.limen.prune_revocation_events(before).await {
                tracing::warn!(error = %e, "pruning revocation events failed");
            }
            if let Err(e) = state.limen.prune_token_changes().await {
                tracing::warn!(error = %e, "pruning the token change feed failed");
            }
            if let Err(e) = state.limen.prune_oauth_records().await {
                tracing::warn!(error = %e, "pruning expired OpenID Provider records failed");
            }
        }
    });
}

/// Applies what other nodes change (through the store's change feed) to this node's
/// validated-token cache and, with keys in the database, to its key material, several
/// times a second. While the feed cannot be read the cache is bypassed, so a node never
/// serves a validation it cannot vouch for.
fn follow_changes(state: AppState, keys: Option<Arc<KeySync>>) {
    tokio::spawn(async move {
        let mut failing = false;
        let mut key_follower = keys::KeyFollower::default();
        loop {
            let changed = match state.limen.sync_token_changes().await {
                Ok(changed) => {
                    if failing {
                        failing = false;
                        tracing::info!("change feed readable again");
                    }
                    changed
                }
                Err(e) => {
                    if !failing {
                        failing = true;
                        tracing::warn!(error = %e, "cannot read the change feed; validating without the cache");
                    }
                    vec![]
                }
            };
            if let Some(sync) = &keys {
                key_follower.round(sync, &changed).await;
            }
            tokio::time::sleep(limen_core::service::SYNC_INTERVAL).await;
        }
    });
}

/// Publishes this node's JWS public key before it serves. If the key is new and this node
/// issues JWS, it waits until every node has had time to trust the key, so no node
/// rejects the first tokens it signs.
async fn announce_jws_key(sync: &KeySync) -> Result<(), StartError> {
    let Some(codec) = sync.formats.jws_codec() else {
        return Ok(());
    };
    let Some(published) = keys::publish_own_jws_key(&sync.store, codec, &sync.node).await? else {
        return Ok(());
    };
    if sync.formats.current().issue == TokenFormat::Jws {
        let age = time::OffsetDateTime::now_utc() - published.published_at;
        let need = time::Duration::try_from(keys::PROPAGATION).unwrap_or(time::Duration::ZERO);
        if age < need {
            let wait: Duration = (need - age).try_into().unwrap_or(keys::PROPAGATION);
            tracing::info!(
                seconds = wait.as_secs_f64(),
                "waiting until every node trusts this node's new JWS key"
            );
            tokio::time::sleep(wait).await;
        }
    }
    Ok(())
}

/// Serves until SIGINT/SIGTERM. Prints the bound address (useful with port 0).
pub async fn serve(config: Config) -> Result<(), StartError> {
    let listen = config.listen.clone();
    let policy_file = config.policy.file.clone();
    let app = build(config).await?;
    if let Some(sync) = &app.sync {
        announce_jws_key(sync).await?;
    }
    let listener = tokio::net::TcpListener::bind(&listen)
        .await
        .map_err(|source| StartError::Listen {
            addr: listen.clone(),
            source,
        })?;
    let addr = listener.local_addr().map_err(StartError::Serve)?;
    if let Some(f) = policy_file {
        watch_policy(app.state.clone(), f);
    }
    prune_revocations(app.state.clone());
    follow_changes(app.state.clone(), app.sync.clone());
    if app.state.config.public_url.is_none() {
        tracing::warn!(
            "public_url is not set: links and WWW-Authenticate follow each request's Host \
             header, which a client chooses; set public_url (docs/security.md)"
        );
    }
    println!("limen listening on http://{addr}");
    tracing::info!(%addr, "listening");
    // Trailing slashes are trimmed before routing: clients ask for `…/trusts/` as well.
    let service = tower::Layer::layer(
        &tower_http::normalize_path::NormalizePathLayer::trim_trailing_slash(),
        app.router,
    );
    let limits = crate::listener::ConnectionLimits {
        max_connections: app.state.config.http.max_connections,
        header_read_timeout: std::time::Duration::from_secs(
            app.state.config.http.header_read_timeout,
        ),
    };
    crate::listener::serve(listener, service, limits, shutdown_signal()).await;
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}
