//! OAuth clients of Limen's OpenID Provider: the applications that may ask for tokens.
//! Each belongs to a domain (so a domain manager registers its own domain's clients), is
//! public (no secret: PKCE is its proof) or confidential (a secret shown once and kept
//! only as a SHA-256 hash: it is 32 random bytes, so a slow hash buys nothing), and names
//! exactly the redirect URIs, grant types and token audiences it may use. A client may
//! also choose the algorithm its tokens are signed with and shorten their lifetimes.

use crate::authz::Authorized;
use crate::config::OidcSettings;
use crate::documents::{DocumentKind, Indexed};
use crate::error::{CoreError, CoreResult};
use crate::oauth::OAuthService;
use base64::Engine;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

const KIND: DocumentKind = DocumentKind::OAuthClient;

pub const GRANT_AUTHORIZATION_CODE: &str = "authorization_code";
pub const GRANT_REFRESH_TOKEN: &str = "refresh_token";
pub const GRANT_CLIENT_CREDENTIALS: &str = "client_credentials";
pub const GRANT_DEVICE_CODE: &str = "urn:ietf:params:oauth:grant-type:device_code";
pub const GRANT_TOKEN_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";

/// The grant types a client may name.
pub const GRANT_TYPES: [&str; 5] = [
    GRANT_AUTHORIZATION_CODE,
    GRANT_REFRESH_TOKEN,
    GRANT_CLIENT_CREDENTIALS,
    GRANT_DEVICE_CODE,
    GRANT_TOKEN_EXCHANGE,
];

/// The algorithm a client's JWTs (ID, access and exchanged tokens) are signed with. Both
/// are published in the JWK set; kube-apiserver accepts either.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum TokenSigningAlg {
    #[default]
    RS256,
    ES256,
}

impl TokenSigningAlg {
    pub const ALL: [TokenSigningAlg; 2] = [TokenSigningAlg::RS256, TokenSigningAlg::ES256];

    pub fn as_str(self) -> &'static str {
        match self {
            TokenSigningAlg::RS256 => "RS256",
            TokenSigningAlg::ES256 => "ES256",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.as_str() == name)
    }
}

/// A client's own token lifetimes in seconds; `None` takes the provider's (`[oidc]`).
/// Each may only be shorter than the provider's, which is also what the signing keys'
/// retention is sized for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientLifetimes {
    /// Its access and ID tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_token: Option<i64>,
    /// An unused refresh token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<i64>,
    /// A login's grant, however often it is refreshed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grant: Option<i64>,
    /// A token it gets from a token exchange.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exchanged_token: Option<i64>,
}

/// Changes to a client's lifetimes: `Some(None)` goes back to the provider's.
#[derive(Debug, Clone, Copy, Default)]
pub struct ClientLifetimesPatch {
    pub access_token: Option<Option<i64>>,
    pub refresh_token: Option<Option<i64>>,
    pub grant: Option<Option<i64>>,
    pub exchanged_token: Option<Option<i64>>,
}

impl ClientLifetimes {
    /// These lifetimes with `p`'s changes (from the default: a new client's).
    pub fn patched(mut self, p: ClientLifetimesPatch) -> Self {
        let set = |field: &mut Option<i64>, change: Option<Option<i64>>| {
            if let Some(v) = change {
                *field = v;
            }
        };
        set(&mut self.access_token, p.access_token);
        set(&mut self.refresh_token, p.refresh_token);
        set(&mut self.grant, p.grant);
        set(&mut self.exchanged_token, p.exchanged_token);
        self
    }

    /// Each lifetime with the provider's ceiling next to it, by its API name.
    fn with_ceilings(&self, oidc: &OidcSettings) -> [(&'static str, Option<i64>, i64); 4] {
        [
            (
                "access_token_lifetime",
                self.access_token,
                oidc.access_token_lifetime,
            ),
            (
                "refresh_token_lifetime",
                self.refresh_token,
                oidc.refresh_token_lifetime,
            ),
            ("grant_lifetime", self.grant, oidc.grant_lifetime),
            (
                "exchanged_token_lifetime",
                self.exchanged_token,
                oidc.exchanged_token_lifetime,
            ),
        ]
    }

    /// The lifetimes in force: the client's, never above the provider's (whose settings
    /// may have shrunk since the client was registered).
    pub fn effective(&self, oidc: &OidcSettings) -> EffectiveLifetimes {
        let pick = |own: Option<i64>, ceiling: i64| own.map_or(ceiling, |v| v.min(ceiling));
        EffectiveLifetimes {
            access_token: pick(self.access_token, oidc.access_token_lifetime),
            refresh_token: pick(self.refresh_token, oidc.refresh_token_lifetime),
            grant: pick(self.grant, oidc.grant_lifetime),
            exchanged_token: pick(self.exchanged_token, oidc.exchanged_token_lifetime),
        }
    }

    /// Every lifetime set is at least a second and at most the provider's.
    fn check(&self, oidc: &OidcSettings) -> CoreResult<()> {
        for (name, own, ceiling) in self.with_ceilings(oidc) {
            if let Some(v) = own.filter(|v| !(1..=ceiling).contains(v)) {
                return Err(CoreError::validation(format!(
                    "{name} {v} is out of range: a client's lifetime is 1 to {ceiling} \
                     seconds (the provider's [oidc] {name}), or null for the provider's."
                )));
            }
        }
        Ok(())
    }
}

/// The lifetimes (seconds) a client's tokens get.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EffectiveLifetimes {
    pub access_token: i64,
    pub refresh_token: i64,
    pub grant: i64,
    pub exchanged_token: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct OAuthClient {
    /// The `client_id`.
    pub id: String,
    pub domain_id: String,
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    /// `sha256:<hex>` of the secret; `None` for a public client.
    #[serde(default)]
    pub secret_hash: Option<String>,
    pub redirect_uris: Vec<String>,
    pub grant_types: Vec<String>,
    /// Audiences (resources, e.g. a Kubernetes cluster) its tokens may be exchanged for.
    #[serde(default)]
    pub audiences: Vec<String>,
    pub enabled: bool,
    /// When it was registered (unix seconds).
    pub created_at: i64,
    #[serde(default)]
    pub token_signing_alg: TokenSigningAlg,
    #[serde(default)]
    pub lifetimes: ClientLifetimes,
}

impl Indexed for OAuthClient {
    const KIND: DocumentKind = KIND;
    fn key(&self) -> String {
        self.id.clone()
    }
    fn owner(&self) -> &str {
        &self.domain_id
    }
}

impl OAuthClient {
    pub fn is_confidential(&self) -> bool {
        self.secret_hash.is_some()
    }

    /// Whether `secret` is this client's (in constant time); false for a public client.
    pub fn secret_matches(&self, secret: &str) -> bool {
        match &self.secret_hash {
            Some(h) => bool::from(hash_secret(secret).as_bytes().ct_eq(h.as_bytes())),
            None => false,
        }
    }
}

/// What a new client is made of.
#[derive(Debug, Clone, Default)]
pub struct NewOAuthClient {
    pub domain_id: String,
    pub name: String,
    pub description: Option<String>,
    pub confidential: bool,
    pub redirect_uris: Vec<String>,
    /// Default: authorization code and refresh token.
    pub grant_types: Option<Vec<String>>,
    pub audiences: Vec<String>,
    pub enabled: bool,
    pub token_signing_alg: TokenSigningAlg,
    pub lifetimes: ClientLifetimes,
}

/// The fields an update may change (the domain and the secret are not among them).
#[derive(Debug, Clone, Default)]
pub struct OAuthClientPatch {
    pub name: Option<String>,
    pub description: Option<Option<String>>,
    pub redirect_uris: Option<Vec<String>>,
    pub grant_types: Option<Vec<String>>,
    pub audiences: Option<Vec<String>>,
    pub enabled: Option<bool>,
    pub token_signing_alg: Option<TokenSigningAlg>,
    pub lifetimes: ClientLifetimesPatch,
}

fn hash_secret(secret: &str) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(secret.as_bytes())))
}

/// A redirect URI a client may register: absolute, `https`, or `http` on a loopback
/// address (RFC 8252 native apps), no fragment, no wildcard; matched exactly later.
fn check_redirect_uri(uri: &str) -> CoreResult<()> {
    let bad = |why: &str| CoreError::validation(format!("Invalid redirect URI {uri:?}: {why}."));
    let rest = if let Some(r) = uri.strip_prefix("https://") {
        r
    } else if let Some(r) = uri.strip_prefix("http://") {
        let host = r.split(['/', '?']).next().unwrap_or("");
        let host = match host.rsplit_once(':') {
            Some((h, port)) if port.chars().all(|c| c.is_ascii_digit()) => h,
            _ => host,
        };
        if !matches!(host, "127.0.0.1" | "localhost" | "[::1]") {
            return Err(bad("http is allowed on loopback addresses only; use https"));
        }
        r
    } else {
        return Err(bad(
            "it must be an absolute https URL (or http on loopback)",
        ));
    };
    if rest.split(['/', '?']).next().unwrap_or("").is_empty() {
        return Err(bad("it has no host"));
    }
    if uri.contains('#') {
        return Err(bad("it must not have a fragment"));
    }
    if uri.contains('*') || uri.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(bad("wildcards and white space are not allowed"));
    }
    Ok(())
}

fn check_name(name: &str) -> CoreResult<()> {
    if name.trim().is_empty() || name.len() > 255 {
        return Err(CoreError::validation(
            "An OAuth client's name must be 1 to 255 characters.",
        ));
    }
    Ok(())
}

/// The rules a client's settings must meet together.
fn check_client(c: &OAuthClient) -> CoreResult<()> {
    check_name(&c.name)?;
    if c.grant_types.is_empty() {
        return Err(CoreError::validation(
            "An OAuth client needs at least one grant type.",
        ));
    }
    for g in &c.grant_types {
        if !GRANT_TYPES.contains(&g.as_str()) {
            return Err(CoreError::validation(format!(
                "Unknown grant type {g:?}; known: {}.",
                GRANT_TYPES.join(", ")
            )));
        }
    }
    let has = |g: &str| c.grant_types.iter().any(|x| x == g);
    if has(GRANT_CLIENT_CREDENTIALS) && !c.is_confidential() {
        return Err(CoreError::validation(
            "A public client cannot use client_credentials: it has no secret.",
        ));
    }
    if has(GRANT_AUTHORIZATION_CODE) && c.redirect_uris.is_empty() {
        return Err(CoreError::validation(
            "An authorization_code client needs at least one redirect URI.",
        ));
    }
    for uri in &c.redirect_uris {
        check_redirect_uri(uri)?;
    }
    if c.audiences.iter().any(|a| a.trim().is_empty()) {
        return Err(CoreError::validation("An audience must not be empty."));
    }
    Ok(())
}

impl OAuthService<'_> {
    /// The cross-domain rule for audiences, checked where the link is written (and again
    /// at every exchange): an audience is never a client's id nor the issuer, and another
    /// domain's cluster may be listed only once that cluster names this client.
    async fn check_client_audiences(&self, c: &OAuthClient) -> CoreResult<()> {
        if c.audiences.is_empty() {
            return Ok(());
        }
        let clusters = self.kubernetes().list_clusters(None).await?;
        for audience in &c.audiences {
            let is_issuer = self.config.oidc.issuer.as_deref() == Some(audience.as_str());
            if is_issuer || self.is_oauth_client(audience).await? {
                return Err(CoreError::validation(format!(
                    "The audience {audience:?} is an OAuth client's id or the issuer: tokens \
                     for it would pass for that client's ID tokens or Limen's own."
                )));
            }
            if let Some(k) = clusters.iter().find(|k| &k.audience == audience) {
                if k.domain_id != c.domain_id && !k.exchange_clients.contains(&c.id) {
                    return Err(CoreError::forbidden(format!(
                        "The audience {audience:?} is a cluster of another domain; its \
                         managers must first name this client in the cluster's \
                         exchange_clients."
                    )));
                }
            }
        }
        Ok(())
    }

    fn new_client_secret(&self) -> String {
        let mut b = [0u8; 32];
        self.random.fill(&mut b);
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
    }

    /// Registers a client; returns it and, for a confidential client, its secret (which
    /// is not kept and cannot be shown again).
    pub async fn create_oauth_client(
        &self,
        authz: &Authorized,
        new: NewOAuthClient,
    ) -> CoreResult<(OAuthClient, Option<String>)> {
        authz.require(&["identity:create_oauth_client"])?;
        self.resource().get_domain(&new.domain_id).await?;
        let secret = new.confidential.then(|| self.new_client_secret());
        let client = OAuthClient {
            id: self.new_id(),
            domain_id: new.domain_id,
            name: new.name,
            description: new.description,
            secret_hash: secret.as_deref().map(hash_secret),
            redirect_uris: new.redirect_uris,
            grant_types: new.grant_types.unwrap_or_else(|| {
                vec![GRANT_AUTHORIZATION_CODE.into(), GRANT_REFRESH_TOKEN.into()]
            }),
            audiences: new.audiences,
            enabled: new.enabled,
            created_at: self.clock.now().unix_timestamp(),
            token_signing_alg: new.token_signing_alg,
            lifetimes: new.lifetimes,
        };
        check_client(&client)?;
        client.lifetimes.check(&self.config.oidc)?;
        self.check_client_audiences(&client).await?;
        self.doc_save(&client, true).await?;
        Ok((client, secret))
    }

    /// Whether `id` is a registered client's (an audience must never be one).
    pub(crate) async fn is_oauth_client(&self, id: &str) -> CoreResult<bool> {
        match self.get_oauth_client(id).await {
            Ok(_) => Ok(true),
            Err(CoreError::NotFound { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    pub async fn get_oauth_client(&self, id: &str) -> CoreResult<OAuthClient> {
        self.doc_get(KIND, id)
            .await?
            .ok_or_else(|| CoreError::not_found("oauth_client", id))
    }

    /// Every client, or a domain's; by name, then id.
    pub async fn list_oauth_clients(
        &self,
        domain_id: Option<&str>,
    ) -> CoreResult<Vec<OAuthClient>> {
        let mut all: Vec<OAuthClient> = match domain_id {
            Some(d) => self.doc_list_of(d).await?,
            None => self.doc_list(KIND).await?,
        };
        all.sort_by(|a, b| a.name.cmp(&b.name).then_with(|| a.id.cmp(&b.id)));
        Ok(all)
    }

    pub async fn update_oauth_client(
        &self,
        authz: &Authorized,
        id: &str,
        patch: OAuthClientPatch,
    ) -> CoreResult<OAuthClient> {
        authz.require_on(&["identity:update_oauth_client"], &["oauth_client"], id)?;
        let mut c = self.get_oauth_client(id).await?;
        if let Some(v) = patch.name {
            c.name = v;
        }
        if let Some(v) = patch.description {
            c.description = v;
        }
        if let Some(v) = patch.redirect_uris {
            c.redirect_uris = v;
        }
        if let Some(v) = patch.grant_types {
            c.grant_types = v;
        }
        if let Some(v) = patch.audiences {
            c.audiences = v;
        }
        if let Some(v) = patch.enabled {
            c.enabled = v;
        }
        if let Some(v) = patch.token_signing_alg {
            c.token_signing_alg = v;
        }
        c.lifetimes = c.lifetimes.patched(patch.lifetimes);
        check_client(&c)?;
        c.lifetimes.check(&self.config.oidc)?;
        self.check_client_audiences(&c).await?;
        self.doc_save(&c, false).await?;
        Ok(c)
    }

    pub async fn delete_oauth_client(&self, authz: &Authorized, id: &str) -> CoreResult<()> {
        authz.require_on(&["identity:delete_oauth_client"], &["oauth_client"], id)?;
        if !self.doc_delete(KIND, id).await? {
            return Err(CoreError::not_found("oauth_client", id));
        }
        Ok(())
    }

    /// Removes a deleted domain's clients.
    pub(crate) async fn forget_oauth_clients_of(&self, domain_id: &str) -> CoreResult<()> {
        self.doc_delete_of::<OAuthClient>(domain_id).await?;
        Ok(())
    }

    /// A new secret for a confidential client (the old one stops working at once).
    pub async fn rotate_oauth_client_secret(
        &self,
        authz: &Authorized,
        id: &str,
    ) -> CoreResult<(OAuthClient, String)> {
        authz.require_on(&["identity:update_oauth_client"], &["oauth_client"], id)?;
        let mut c = self.get_oauth_client(id).await?;
        if !c.is_confidential() {
            return Err(CoreError::validation(
                "A public client has no secret to rotate.",
            ));
        }
        let secret = self.new_client_secret();
        c.secret_hash = Some(hash_secret(&secret));
        self.doc_save(&c, false).await?;
        Ok((c, secret))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirect_uris_are_https_or_loopback_without_fragments() {
        for ok in [
            "https://app.example.com/cb",
            "https://app.example.com:8443/cb?x=1",
            "http://127.0.0.1:8400/callback",
            "http://localhost/cb",
            "http://[::1]:9000/cb",
        ] {
            assert!(check_redirect_uri(ok).is_ok(), "{ok}");
        }
        for bad in [
            "http://app.example.com/cb",
            "http://127.0.0.1.evil.example/cb",
            "https:///cb",
            "https://app.example.com/cb#frag",
            "https://*.example.com/cb",
            "/relative",
            "javascript:alert(1)",
            "https://app.example.com/c b",
        ] {
            assert!(check_redirect_uri(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn secrets_are_checked_against_their_hash_only() {
        let c = OAuthClient {
            id: "c".into(),
            domain_id: "default".into(),
            name: "n".into(),
            description: None,
            secret_hash: Some(hash_secret("s3cret")),
            redirect_uris: vec![],
            grant_types: vec![GRANT_CLIENT_CREDENTIALS.into()],
            audiences: vec![],
            enabled: true,
            created_at: 0,
            ..OAuthClient::default()
        };
        assert!(c.secret_matches("s3cret"));
        assert!(!c.secret_matches("s3cret "));
        assert!(!c.secret_matches(""));
        let public = OAuthClient {
            secret_hash: None,
            ..c
        };
        assert!(!public.secret_matches(""));
        assert!(check_client(&public).is_err(), "public client_credentials");
    }

    #[test]
    fn a_client_may_shorten_the_providers_lifetimes_but_not_lengthen_them() {
        let oidc = OidcSettings::default();
        let own = ClientLifetimes {
            access_token: Some(600),
            exchanged_token: Some(60),
            ..ClientLifetimes::default()
        };
        assert!(own.check(&oidc).is_ok());
        let e = own.effective(&oidc);
        assert_eq!(e.access_token, 600);
        assert_eq!(e.exchanged_token, 60);
        assert_eq!(e.refresh_token, oidc.refresh_token_lifetime);
        assert_eq!(e.grant, oidc.grant_lifetime);
        // The provider's settings shrank after registration: theirs win.
        let tighter = OidcSettings {
            access_token_lifetime: 300,
            ..OidcSettings::default()
        };
        assert_eq!(own.effective(&tighter).access_token, 300);
        for bad in [0, -5, oidc.grant_lifetime + 1] {
            let long = ClientLifetimes {
                grant: Some(bad),
                ..ClientLifetimes::default()
            };
            let message = long.check(&oidc).unwrap_err().to_string();
            assert!(message.contains("grant_lifetime"), "{message}");
        }
        let reset = own.patched(ClientLifetimesPatch {
            access_token: Some(None),
            grant: Some(Some(3600)),
            ..ClientLifetimesPatch::default()
        });
        assert_eq!(reset.access_token, None);
        assert_eq!(reset.grant, Some(3600));
        assert_eq!(reset.exchanged_token, Some(60));
    }
}
