//! What every handler shares.

use crate::client_addr::TrustedProxies;
use crate::config::Config;
use crate::ratelimit::LoginLimiter;
use axum::body::Bytes;
use limen_core::token::validation_cache::Derived;
use limen_core::Limen;
use limen_crypto::LiveOidcKeys;
use std::sync::Arc;

#[derive(Clone)]
pub struct AppState {
    pub limen: Arc<Limen>,
    pub config: Arc<Config>,
    pub login_limiter: Option<Arc<LoginLimiter>>,
    /// Wrong user codes typed into the device page, per address (RFC 8628 §5.1).
    pub user_code_limiter: Option<Arc<LoginLimiter>>,
    /// Serialized `GET /v3/auth/tokens` bodies by token (and `nocatalog`), invalidated
    /// with the validations they render (see `routes::auth::validate`).
    pub token_bodies: Arc<Derived<Bytes>>,
    /// The OpenID Provider's signing keys (`[oidc] key_repository`).
    pub oidc_keys: Arc<LiveOidcKeys>,
    /// Whose forwarding headers name the client (`[http] trusted_proxies`).
    pub proxies: Arc<TrustedProxies>,
}
