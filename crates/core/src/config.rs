//! Settings the domain layer obeys (the server maps its configuration file onto these).

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TokenSettings {
    /// Token lifetime in seconds.
    pub expiration: i64,
    /// How long after expiry `allow_expired` still validates a token, in seconds.
    pub allow_expired_window: i64,
    /// Whether a scoped token may be exchanged for a token of another scope.
    pub allow_rescope_scoped_token: bool,
    /// The format new tokens are issued in (Keystone's `[token] provider`).
    pub provider: TokenFormat,
    /// Formats accepted besides `provider`, e.g. both while a cloud switches formats.
    pub accept: Vec<TokenFormat>,
    /// Whether validated tokens are cached (invalidated exactly through the change feed).
    pub caching: bool,
    /// The longest a validation is served from the cache, in seconds.
    pub cache_time: u64,
    /// How many validated tokens the cache holds at most.
    pub cache_size: usize,
}

/// A token format Keystone defines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenFormat {
    Fernet,
    Jws,
}

impl Default for TokenSettings {
    fn default() -> Self {
        TokenSettings {
            expiration: 3600,
            allow_expired_window: 172_800,
            allow_rescope_scoped_token: true,
            provider: TokenFormat::Fernet,
            accept: Vec::new(),
            caching: true,
            cache_time: 300,
            cache_size: 20_000,
        }
    }
}

/// Keystone's `[security_compliance]` options; `None`/0 disables a rule.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SecurityCompliance {
    pub lockout_failure_attempts: Option<u32>,
    /// Seconds a locked-out user stays locked (Keystone's default 1800).
    pub lockout_duration: i64,
    pub password_expires_days: Option<u32>,
    pub unique_last_password_count: u32,
    pub minimum_password_age: u32,
    pub change_password_upon_first_use: bool,
    pub password_regex: Option<String>,
    pub password_regex_description: Option<String>,
    pub disable_user_account_days_inactive: Option<u32>,
}

impl Default for SecurityCompliance {
    fn default() -> Self {
        SecurityCompliance {
            lockout_failure_attempts: None,
            lockout_duration: 1800,
            password_expires_days: None,
            unique_last_password_count: 0,
            minimum_password_age: 0,
            change_password_upon_first_use: false,
            password_regex: None,
            password_regex_description: None,
            disable_user_account_days_inactive: None,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IdentitySettings {
    /// Longest password accepted, in characters (Keystone: 4096).
    pub max_password_length: usize,
    /// Reject passwords longer than bcrypt's 72 bytes instead of truncating them.
    pub strict_password_check: bool,
    /// Cap on the number of entities a list call returns (`None`: unlimited).
    pub list_limit: Option<usize>,
}

impl Default for IdentitySettings {
    fn default() -> Self {
        IdentitySettings {
            max_password_length: 4096,
            strict_password_check: false,
            list_limit: None,
        }
    }
}

/// Keystone's `[auth] methods`, whose order defines the Fernet method bitmask.
pub fn default_auth_methods() -> Vec<String> {
    [
        "external",
        "password",
        "token",
        "oauth1",
        "mapped",
        "application_credential",
        "ec2credential",
        // After Keystone's defaults, so the bits of the others stay Keystone's.
        "totp",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// Keystone's `[trust]` options.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrustSettings {
    /// Whether trusts may allow their trustee to redelegate (Keystone's default: no).
    pub allow_redelegation: bool,
}

/// Keystone's `[oauth1]` options: how long the tokens of the OAuth1 delegation flow last.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OAuth1Settings {
    /// Seconds a request token stays usable; 0: no expiry.
    pub request_token_duration: u32,
    /// Seconds an access token stays usable; 0: no expiry.
    pub access_token_duration: u32,
}

impl Default for OAuth1Settings {
    fn default() -> Self {
        OAuth1Settings {
            request_token_duration: 28_800,
            access_token_duration: 86_400,
        }
    }
}

/// How Kubernetes clusters see Limen's users (the `[kubernetes]` section).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct KubernetesSettings {
    /// A user's Kubernetes username: `{user_name}`, `{user_id}`, `{domain_name}` and
    /// `{domain_id}` are replaced (names with `/` and `%` percent-encoded).
    pub username_template: String,
}

impl Default for KubernetesSettings {
    fn default() -> Self {
        KubernetesSettings {
            username_template: crate::kubernetes::DEFAULT_USERNAME_TEMPLATE.into(),
        }
    }
}

/// What the OpenID Provider's grants obey (the server's `[oidc]` section).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OidcSettings {
    /// The issuer (`iss` of every token); `None`: the provider is off.
    pub issuer: Option<String>,
    /// Seconds an access token (and an ID token) lives.
    pub access_token_lifetime: i64,
    /// Seconds an unused refresh token lives (each use gives a new one).
    pub refresh_token_lifetime: i64,
    /// Seconds a grant (a login's family of refresh tokens) lives at most, however
    /// often it is refreshed; then the person logs in again.
    pub grant_lifetime: i64,
    /// Seconds a login session on the provider's pages lasts at most.
    pub session_lifetime: i64,
    /// Seconds of inactivity after which a login session ends.
    pub session_idle_timeout: i64,
    /// Seconds a token from a token exchange (RFC 8693, e.g. for a cluster) lives at
    /// most; never longer than the token it was exchanged for.
    pub exchanged_token_lifetime: i64,
    /// Seconds a device code (RFC 8628) waits for its person.
    pub device_code_lifetime: i64,
    /// Seconds a device must wait between polls (more after each `slow_down`).
    pub device_poll_interval: i64,
}

impl Default for OidcSettings {
    fn default() -> Self {
        OidcSettings {
            issuer: None,
            access_token_lifetime: 3600,
            refresh_token_lifetime: 7 * 86_400,
            grant_lifetime: 30 * 86_400,
            session_lifetime: 8 * 3600,
            session_idle_timeout: 3600,
            exchanged_token_lifetime: 300,
            device_code_lifetime: 600,
            device_poll_interval: 5,
        }
    }
}

#[derive(Debug, Clone)]
pub struct CoreConfig {
    pub token: TokenSettings,
    pub security: SecurityCompliance,
    pub identity: IdentitySettings,
    pub trust: TrustSettings,
    pub oauth1: OAuth1Settings,
    pub oidc: OidcSettings,
    pub kubernetes: KubernetesSettings,
    /// The enabled authentication methods (Keystone's `[auth] methods`).
    pub auth_methods: Vec<String>,
    /// How old a signed EC2/S3 request may be, in minutes (Keystone's
    /// `[credential] auth_ttl`).
    pub credential_auth_ttl_minutes: i64,
    /// Wrong secrets one application credential may take per minute (also the burst)
    /// before its secret is no longer checked for a while; 0: no limit
    /// (see [`crate::delegation::guess_limit`]).
    pub application_credential_failures_per_minute: u32,
}

impl Default for CoreConfig {
    fn default() -> Self {
        CoreConfig {
            token: TokenSettings::default(),
            security: SecurityCompliance::default(),
            identity: IdentitySettings::default(),
            trust: TrustSettings::default(),
            oauth1: OAuth1Settings::default(),
            oidc: OidcSettings::default(),
            kubernetes: KubernetesSettings::default(),
            auth_methods: default_auth_methods(),
            credential_auth_ttl_minutes: 15,
            application_credential_failures_per_minute: 5,
        }
    }
}
