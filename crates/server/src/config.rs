//! Limen's configuration: a TOML file, overridden by `LIMEN_…` environment variables
//! (nested keys joined with `__`, e.g. `LIMEN_TOKEN__EXPIRATION=7200`), overridden by
//! command-line flags.

use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use limen_core::config::{
    default_auth_methods, CoreConfig, IdentitySettings, KubernetesSettings, OAuth1Settings,
    OidcSettings, SecurityCompliance, TokenSettings, TrustSettings,
};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Where the SQLite database and the key repositories live.
    pub data_dir: PathBuf,
    /// Address to listen on.
    pub listen: String,
    /// `sqlite://PATH` or `postgres://…`; default: SQLite inside the data directory.
    pub database_url: Option<String>,
    /// The externally visible base URL (e.g. `https://keystone.example.com`), used in links;
    /// default: taken from each request's Host header.
    pub public_url: Option<String>,
    /// Largest request body accepted, in bytes (Keystone's `max_request_body_size`).
    pub max_request_body_size: usize,
    /// Log format: `text` or `json`.
    pub log_format: String,
    pub token: TokenSettings,
    pub security_compliance: SecurityCompliance,
    pub trust: TrustSettings,
    pub oauth1: OAuth1Settings,
    pub identity: IdentityConfig,
    pub fernet_tokens: FernetConfig,
    pub jwt_tokens: JwtConfig,
    pub credential: CredentialConfig,
    pub auth: AuthConfig,
    pub policy: PolicyConfig,
    pub keys: KeysConfig,
    pub oidc: OidcConfig,
    pub kubernetes: KubernetesSettings,
    pub http: HttpConfig,
}

/// Where Fernet token keys and credential keys live: `files` (Keystone's key repositories
/// in the data directory, the default) or `database` (in the store, sealed with a
/// key-encryption key, shared by every node; JWS public keys are published there too).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeySource {
    #[default]
    Files,
    Database,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct KeysConfig {
    pub source: KeySource,
    /// File holding the key-encryption key (base64 of 32 bytes) that seals key material in
    /// the database; `LIMEN_KEK` (the key itself) takes precedence.
    pub kek_file: Option<PathBuf>,
    /// Files of earlier KEKs, while the KEK is being replaced: they still open stored key
    /// material (until `limen keys kek reseal` has re-sealed it), but never seal.
    pub previous_kek_files: Vec<PathBuf>,
    /// This node's name on the JWS public keys it publishes; default: the host name.
    pub node_name: Option<String>,
}

/// Limen's OpenID Provider (`docs/oidc.md`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OidcConfig {
    /// The provider's issuer URL (`iss` of every token it signs, and where relying
    /// parties find it): `https://…`, or `http://` on a loopback address for tests; no
    /// query, no fragment, no trailing slash. Unset: the OAuth endpoints answer 503.
    pub issuer: Option<String>,
    /// Seconds an access token (and an ID token) lives. This and the other token
    /// lifetimes are defaults and ceilings: a client may only shorten them.
    pub access_token_lifetime: u64,
    /// Seconds an unused refresh token lives; each use rotates it.
    pub refresh_token_lifetime: u64,
    /// Seconds a login's grant lives at most, however often it is refreshed.
    pub grant_lifetime: u64,
    /// Seconds a login session on the provider's pages lasts at most.
    pub session_lifetime: u64,
    /// Seconds of inactivity that end a login session.
    pub session_idle_timeout: u64,
    /// Seconds a token from a token exchange (RFC 8693: a cluster token) lives at most;
    /// never longer than the token it was exchanged for. Kubernetes checks only its
    /// expiry, so keep it short.
    pub exchanged_token_lifetime: u64,
    /// Seconds a device code (RFC 8628 device login) waits for its person.
    pub device_code_lifetime: u64,
    /// Seconds a device waits between polls (`interval`; 5 more after each `slow_down`).
    pub device_poll_interval: u64,
    /// Wrong user codes an address may enter on the device page per minute.
    pub user_code_attempts_per_minute: u32,
    /// Directory of the signing-key slots (0 staged, highest primary, others retired);
    /// default `<data_dir>/oidc-keys`. Copy it to every node, as the Fernet keys.
    pub key_repository: Option<PathBuf>,
    /// Seconds a retired signing key stays published after its last token was signed: at
    /// least the longest lifetime of a token Limen signs (checked at start).
    pub keep_retired_keys_for: u64,
}

impl OidcConfig {
    fn settings(&self) -> OidcSettings {
        let seconds = |v: u64| i64::try_from(v).unwrap_or(i64::MAX / 2);
        OidcSettings {
            issuer: self.issuer.clone(),
            access_token_lifetime: seconds(self.access_token_lifetime),
            refresh_token_lifetime: seconds(self.refresh_token_lifetime),
            grant_lifetime: seconds(self.grant_lifetime),
            session_lifetime: seconds(self.session_lifetime),
            session_idle_timeout: seconds(self.session_idle_timeout),
            exchanged_token_lifetime: seconds(self.exchanged_token_lifetime),
            device_code_lifetime: seconds(self.device_code_lifetime),
            device_poll_interval: seconds(self.device_poll_interval),
        }
    }

    /// Every lifetime must be at least a second, and retired keys kept as long as tokens.
    fn check_lifetimes(&self) -> Result<(), ConfigError> {
        for (name, v) in [
            ("access_token_lifetime", self.access_token_lifetime),
            ("refresh_token_lifetime", self.refresh_token_lifetime),
            ("grant_lifetime", self.grant_lifetime),
            ("session_lifetime", self.session_lifetime),
            ("session_idle_timeout", self.session_idle_timeout),
            ("exchanged_token_lifetime", self.exchanged_token_lifetime),
            ("device_code_lifetime", self.device_code_lifetime),
            ("device_poll_interval", self.device_poll_interval),
        ] {
            if v == 0 {
                return Err(ConfigError(format!(
                    "oidc.{name} must be at least 1 second"
                )));
            }
        }
        // A retired key must stay published while a token it signed can still be used.
        let longest = self
            .access_token_lifetime
            .max(self.exchanged_token_lifetime);
        if self.keep_retired_keys_for < longest {
            return Err(ConfigError(format!(
                "oidc.keep_retired_keys_for ({}) must be at least the longest signed token's \
                 lifetime ({longest} s: access_token_lifetime, exchanged_token_lifetime), or \
                 tokens would outlive the key that checks them",
                self.keep_retired_keys_for
            )));
        }
        Ok(())
    }
}

impl Default for OidcConfig {
    fn default() -> Self {
        OidcConfig {
            issuer: None,
            access_token_lifetime: 3600,
            refresh_token_lifetime: 7 * 86_400,
            grant_lifetime: 30 * 86_400,
            session_lifetime: 8 * 3600,
            session_idle_timeout: 3600,
            exchanged_token_lifetime: 300,
            device_code_lifetime: 600,
            device_poll_interval: 5,
            user_code_attempts_per_minute: 10,
            key_repository: None,
            keep_retired_keys_for: 86_400,
        }
    }
}

/// Keystone's `[jwt_tokens]`: where this node's JWS signing key and the trusted public
/// keys live.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct JwtConfig {
    /// Directory with this node's `private.pem`; default `<data_dir>/jws-keys/private`.
    pub jws_private_key_repository: Option<PathBuf>,
    /// Directory of trusted public keys (every node's); default `<data_dir>/jws-keys/public`.
    pub jws_public_key_repository: Option<PathBuf>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IdentityConfig {
    /// bcrypt cost for new password hashes (Keystone's `password_hash_rounds`).
    pub password_hash_rounds: u32,
    pub max_password_length: usize,
    pub strict_password_check: bool,
    pub list_limit: Option<usize>,
}

impl Default for IdentityConfig {
    fn default() -> Self {
        let d = IdentitySettings::default();
        IdentityConfig {
            password_hash_rounds: 12,
            max_password_length: d.max_password_length,
            strict_password_check: d.strict_password_check,
            list_limit: d.list_limit,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FernetConfig {
    /// Key repository; default `<data_dir>/fernet-keys`.
    pub key_repository: Option<PathBuf>,
    pub max_active_keys: usize,
}

impl Default for FernetConfig {
    fn default() -> Self {
        FernetConfig {
            key_repository: None,
            max_active_keys: 3,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CredentialConfig {
    /// Key repository encrypting stored credentials; default `<data_dir>/credential-keys`.
    pub key_repository: Option<PathBuf>,
    pub max_active_keys: usize,
    /// How old a signed EC2/S3 request may be, in minutes.
    pub auth_ttl: i64,
}

impl Default for CredentialConfig {
    fn default() -> Self {
        CredentialConfig {
            key_repository: None,
            max_active_keys: 3,
            auth_ttl: 15,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// Keystone's `[auth] methods`; the order defines the Fernet method bitmask and must
    /// match every node (and Python Keystone) sharing the key repository.
    pub methods: Vec<String>,
    /// Failed logins (and password changes) a client address may make per minute before
    /// it gets 429 Too Many Requests; 0 disables the limit.
    pub failed_logins_per_minute: u32,
    /// Wrong secrets one application credential may take per minute, from anywhere
    /// (logins, OAuth client_credentials, TokenReview), before its secret goes unchecked
    /// for a while; 0 disables the limit.
    pub application_credential_failures_per_minute: u32,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            methods: default_auth_methods(),
            failed_logins_per_minute: 30,
            application_credential_failures_per_minute: 5,
        }
    }
}

/// How connections are held and who the client is (docs/security.md, "Limits").
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpConfig {
    /// Addresses or networks (`10.0.0.0/8`, `::1`) of reverse proxies whose
    /// `Forwarded` / `X-Forwarded-For` headers name the real client; from any other
    /// peer these headers are ignored. Empty: the peer is the client.
    pub trusted_proxies: Vec<String>,
    /// Seconds a client has to send a request's headers (and, on a kept-alive
    /// connection, the next request's) before the connection is closed.
    pub header_read_timeout: u64,
    /// Seconds a request body may take to arrive, however slowly it trickles.
    pub body_read_timeout: u64,
    /// Connections served at once; beyond them a new connection gets 503 with
    /// `Retry-After` and is closed.
    pub max_connections: usize,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            trusted_proxies: Vec::new(),
            header_read_timeout: 10,
            body_read_timeout: 30,
            max_connections: 4096,
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PolicyConfig {
    /// A YAML or JSON file of rule overrides, re-read when it changes.
    pub file: Option<PathBuf>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            data_dir: PathBuf::from("./limen-data"),
            listen: "127.0.0.1:5000".into(),
            database_url: None,
            public_url: None,
            max_request_body_size: 114_688,
            log_format: "text".into(),
            token: TokenSettings::default(),
            security_compliance: SecurityCompliance::default(),
            trust: TrustSettings::default(),
            oauth1: OAuth1Settings::default(),
            identity: IdentityConfig::default(),
            fernet_tokens: FernetConfig::default(),
            jwt_tokens: JwtConfig::default(),
            credential: CredentialConfig::default(),
            auth: AuthConfig::default(),
            policy: PolicyConfig::default(),
            keys: KeysConfig::default(),
            oidc: OidcConfig::default(),
            kubernetes: KubernetesSettings::default(),
            http: HttpConfig::default(),
        }
    }
}

const CONFIG_KEYS: &[&str] = &[
    "data_dir",
    "listen",
    "database_url",
    "public_url",
    "max_request_body_size",
    "log_format",
    "token",
    "security_compliance",
    "trust",
    "oauth1",
    "identity",
    "fernet_tokens",
    "jwt_tokens",
    "credential",
    "auth",
    "policy",
    "keys",
    "oidc",
    "kubernetes",
    "http",
];

#[derive(Debug, thiserror::Error)]
#[error("configuration: {0}")]
pub struct ConfigError(pub String);

/// An issuer relying parties can trust: `https`, or `http` on loopback (tests), with a
/// host, and nothing that would make `iss` differ from what they configured.
fn check_issuer(issuer: &str) -> Result<(), ConfigError> {
    let bad = |why: &str| ConfigError(format!("oidc.issuer {issuer:?}: {why}"));
    let rest = match (
        issuer.strip_prefix("https://"),
        issuer.strip_prefix("http://"),
    ) {
        (Some(r), _) => r,
        (None, Some(r)) => {
            let host = r.split('/').next().unwrap_or("");
            let host = host.rsplit_once(':').map_or(host, |(h, _)| h);
            if !matches!(host, "127.0.0.1" | "localhost" | "[::1]") {
                return Err(bad("must be https (http only on a loopback address)"));
            }
            r
        }
        (None, None) => return Err(bad("must be an https URL")),
    };
    if rest.split('/').next().unwrap_or("").is_empty() {
        return Err(bad("has no host"));
    }
    if issuer.contains(['?', '#']) {
        return Err(bad("must have no query and no fragment"));
    }
    if issuer.ends_with('/') {
        return Err(bad(
            "must not end with a slash (relying parties compare it exactly)",
        ));
    }
    Ok(())
}

impl Config {
    /// Defaults, then the file (if given), then `LIMEN_…` variables.
    pub fn load(file: Option<&Path>) -> Result<Config, ConfigError> {
        let mut fig = Figment::from(Serialized::defaults(Config::default()));
        if let Some(f) = file {
            if !f.exists() {
                return Err(ConfigError(format!("{} does not exist", f.display())));
            }
            fig = fig.merge(Toml::file(f));
        }
        // Only variables naming a configuration section or key; others (such as the CLI's
        // own LIMEN_ADMIN_PASSWORD) are not configuration.
        fig = fig.merge(
            Env::prefixed("LIMEN_")
                .filter(|k| {
                    let top = k
                        .as_str()
                        .split("__")
                        .next()
                        .unwrap_or("")
                        .to_ascii_lowercase();
                    CONFIG_KEYS.contains(&top.as_str())
                })
                .split("__"),
        );
        let config: Config = fig.extract().map_err(|e| ConfigError(e.to_string()))?;
        if let Some(issuer) = &config.oidc.issuer {
            check_issuer(issuer)?;
        }
        config.oidc.check_lifetimes()?;
        limen_core::kubernetes::check_username_template(&config.kubernetes.username_template)
            .map_err(ConfigError)?;
        crate::client_addr::TrustedProxies::parse(&config.http.trusted_proxies)?;
        if config.http.header_read_timeout == 0
            || config.http.body_read_timeout == 0
            || config.http.max_connections == 0
        {
            return Err(ConfigError(
                "http.header_read_timeout, http.body_read_timeout and http.max_connections \
                 must be at least 1"
                    .into(),
            ));
        }
        Ok(config)
    }

    pub fn database_url(&self) -> String {
        match &self.database_url {
            Some(u) => u.clone(),
            None => format!("sqlite://{}", self.data_dir.join("limen.db").display()),
        }
    }

    pub fn fernet_key_repository(&self) -> PathBuf {
        self.fernet_tokens
            .key_repository
            .clone()
            .unwrap_or_else(|| self.data_dir.join("fernet-keys"))
    }

    pub fn oidc_key_repository(&self) -> PathBuf {
        self.oidc
            .key_repository
            .clone()
            .unwrap_or_else(|| self.data_dir.join("oidc-keys"))
    }

    /// This node's JWS key repositories: (private, public).
    pub fn jws_key_repositories(&self) -> (PathBuf, PathBuf) {
        let base = self.data_dir.join("jws-keys");
        (
            self.jwt_tokens
                .jws_private_key_repository
                .clone()
                .unwrap_or_else(|| base.join("private")),
            self.jwt_tokens
                .jws_public_key_repository
                .clone()
                .unwrap_or_else(|| base.join("public")),
        )
    }

    /// Whether this node needs JWS keys: it issues or accepts JWS tokens, or it keeps its
    /// keys in the database, where the token formats can be switched for the whole cloud
    /// at run time (so every node is ready for either).
    pub fn uses_jws(&self) -> bool {
        self.keys.source == KeySource::Database
            || limen_crypto::TokenFormats::needs_jws(self.token.provider, &self.token.accept)
    }

    pub fn credential_key_repository(&self) -> PathBuf {
        self.credential
            .key_repository
            .clone()
            .unwrap_or_else(|| self.data_dir.join("credential-keys"))
    }

    pub fn core(&self) -> CoreConfig {
        CoreConfig {
            token: self.token.clone(),
            security: self.security_compliance.clone(),
            identity: IdentitySettings {
                max_password_length: self.identity.max_password_length,
                strict_password_check: self.identity.strict_password_check,
                list_limit: self.identity.list_limit,
            },
            trust: self.trust.clone(),
            oauth1: self.oauth1.clone(),
            oidc: self.oidc.settings(),
            kubernetes: self.kubernetes.clone(),
            auth_methods: self.auth.methods.clone(),
            credential_auth_ttl_minutes: self.credential.auth_ttl,
            application_credential_failures_per_minute: self
                .auth
                .application_credential_failures_per_minute,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lifetimes_are_positive_and_retired_keys_outlive_their_tokens() {
        assert!(OidcConfig::default().check_lifetimes().is_ok());
        let zero = OidcConfig {
            grant_lifetime: 0,
            ..OidcConfig::default()
        };
        let e = zero.check_lifetimes().unwrap_err().to_string();
        assert!(e.contains("oidc.grant_lifetime"), "{e}");
        let short_retention = OidcConfig {
            exchanged_token_lifetime: 7200,
            keep_retired_keys_for: 3600,
            ..OidcConfig::default()
        };
        let e = short_retention.check_lifetimes().unwrap_err().to_string();
        assert!(e.contains("keep_retired_keys_for (3600)"), "{e}");
        assert!(e.contains("7200 s"), "{e}");
    }
}
