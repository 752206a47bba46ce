//! The OpenID Provider's grants as domain decisions: which client is who, and who may
//! have which token with which claims. The wire format (RFC 6749 forms and error
//! responses) and the signing are the server's.

use crate::documents::RecordKind;
use crate::error::CoreError;
use crate::oauth::client::{EffectiveLifetimes, OAuthClient, GRANT_CLIENT_CREDENTIALS};
use crate::oauth::OAuthService;
use crate::token::auth::{
    AppCredCredentials, AppCredRef, AuthRequest, ResolvedScope, ScopeRequest,
};
use serde::Serialize;
use serde_json::{json, Value};

/// Revoked access tokens by `jti`, kept until they expire.
const REVOKED: RecordKind = RecordKind::RevokedAccessToken;

/// RFC 6749 §5.2 (and RFC 8693's `invalid_target`) errors, each with what to tell the
/// client. Store failures become `temporarily_unavailable`: never a 500 for a grant.
#[derive(Debug, thiserror::Error)]
pub enum OAuthError {
    #[error("{0}")]
    InvalidRequest(String),
    #[error("{0}")]
    InvalidClient(String),
    #[error("{0}")]
    InvalidGrant(String),
    #[error("{0}")]
    UnauthorizedClient(String),
    #[error("{0}")]
    UnsupportedGrantType(String),
    #[error("{0}")]
    InvalidScope(String),
    #[error("{0}")]
    InvalidTarget(String),
    #[error("{0}")]
    TemporarilyUnavailable(String),
    /// RFC 8628 §3.5: the person has not decided yet; poll again.
    #[error("{0}")]
    AuthorizationPending(String),
    /// RFC 8628 §3.5: polled too fast; wait five seconds longer from now on.
    #[error("{0}")]
    SlowDown(String),
    /// RFC 8628 §3.5: the person denied the request.
    #[error("{0}")]
    AccessDenied(String),
    /// RFC 8628 §3.5: the device code expired; start again.
    #[error("{0}")]
    ExpiredToken(String),
    /// RFC 6750: a bearer token that is bad, expired or revoked (401).
    #[error("{0}")]
    InvalidToken(String),
    /// RFC 6750: a bearer token without the scope the resource needs (403).
    #[error("{0}")]
    InsufficientScope(String),
}

impl OAuthError {
    /// What every failed client authentication says, whatever failed.
    pub fn client_authentication_failed() -> Self {
        OAuthError::InvalidClient(CLIENT_AUTH_FAILED.into())
    }

    /// The `error` code.
    pub fn code(&self) -> &'static str {
        match self {
            OAuthError::InvalidRequest(_) => "invalid_request",
            OAuthError::InvalidClient(_) => "invalid_client",
            OAuthError::InvalidGrant(_) => "invalid_grant",
            OAuthError::UnauthorizedClient(_) => "unauthorized_client",
            OAuthError::UnsupportedGrantType(_) => "unsupported_grant_type",
            OAuthError::InvalidScope(_) => "invalid_scope",
            OAuthError::InvalidTarget(_) => "invalid_target",
            OAuthError::TemporarilyUnavailable(_) => "temporarily_unavailable",
            OAuthError::AuthorizationPending(_) => "authorization_pending",
            OAuthError::SlowDown(_) => "slow_down",
            OAuthError::AccessDenied(_) => "access_denied",
            OAuthError::ExpiredToken(_) => "expired_token",
            OAuthError::InvalidToken(_) => "invalid_token",
            OAuthError::InsufficientScope(_) => "insufficient_scope",
        }
    }
}

impl From<CoreError> for OAuthError {
    fn from(e: CoreError) -> Self {
        match e {
            CoreError::Internal(m) => {
                tracing::error!(error = %m, "OAuth request failed on the store");
                OAuthError::TemporarilyUnavailable(
                    "The server cannot answer right now; try again.".into(),
                )
            }
            other => OAuthError::InvalidRequest(other.to_string()),
        }
    }
}

/// Claims of an access token (RFC 9068 JWT profile).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AccessTokenClaims {
    pub iss: String,
    pub sub: String,
    pub aud: String,
    pub client_id: String,
    pub iat: i64,
    pub exp: i64,
    pub jti: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// Who the token acts for in Limen's terms (a user's token): domain, project, roles.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limen: Option<LimenClaims>,
    /// The grant (a person's login) the token belongs to; it dies with the grant.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limen_grant: Option<String>,
}

/// The namespaced `limen` claim: `{"domain": {"id", "name"}, "project": {"id", "name"},
/// "roles": [names]}` (easy to reach from Kubernetes CEL as `claims.limen.roles`).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct LimenClaims {
    pub domain: NamedRef,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub project: Option<NamedRef>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct NamedRef {
    pub id: String,
    pub name: String,
}

/// What compares a presented secret when there is no client: as costly as a real check.
const NO_CLIENT_SECRET_HASH: &str =
    "sha256:0000000000000000000000000000000000000000000000000000000000000000";

const CLIENT_AUTH_FAILED: &str = "Client authentication failed.";

/// A client-credentials token carries no scope.
fn no_scope(scope: Option<&str>) -> Result<(), OAuthError> {
    if scope.is_some_and(|s| !s.trim().is_empty()) {
        return Err(OAuthError::InvalidScope(
            "A client_credentials token carries no scope: ask without one.".into(),
        ));
    }
    Ok(())
}

impl OAuthService<'_> {
    /// What a Keystone login with application credential `id` and `secret` gives (its
    /// user, project and roles), checked as such a login is: expiry, user and domain
    /// enabled, roles still held.
    pub(crate) async fn application_credential_login(
        &self,
        id: &str,
        secret: &str,
    ) -> Result<crate::token::auth::TokenInfo, CoreError> {
        let request = AuthRequest {
            methods: vec!["application_credential".into()],
            password: None,
            token: None,
            application_credential: Some(AppCredCredentials {
                credential: AppCredRef::Id(id.to_string()),
                secret: secret.to_string(),
            }),
            totp: None,
            receipt: None,
            oauth1: None,
            scope: ScopeRequest::Default,
        };
        Ok(self.token().authenticate(request).await?.info)
    }

    /// The issuer; the provider is off without one.
    pub(crate) fn issuer(&self) -> Result<String, OAuthError> {
        self.config.oidc.issuer.clone().ok_or_else(|| {
            OAuthError::TemporarilyUnavailable("The OpenID Provider is not set up.".into())
        })
    }

    /// The lifetimes `client`'s tokens get.
    pub(crate) fn lifetimes_of(&self, client: &OAuthClient) -> EffectiveLifetimes {
        client.lifetimes.effective(&self.config.oidc)
    }

    /// The registered OAuth client `client_id`, if there is one (else the id may name a
    /// Keystone application credential).
    pub async fn find_oauth_client(
        &self,
        client_id: &str,
    ) -> Result<Option<OAuthClient>, OAuthError> {
        match self.get_oauth_client(client_id).await {
            Ok(c) => Ok(Some(c)),
            Err(CoreError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// The client `client_id` if `secret` is its secret (a public client presents none).
    pub async fn authenticate_oauth_client(
        &self,
        client_id: &str,
        secret: Option<&str>,
    ) -> Result<OAuthClient, OAuthError> {
        let found = self.find_oauth_client(client_id).await?;
        self.authenticate_found_client(found, secret).await
    }

    /// `found` (what [`Self::find_oauth_client`] gave) if `secret` is its secret.
    /// Unknown, disabled and wrong-secret clients all get the same answer, after the same
    /// work.
    pub async fn authenticate_found_client(
        &self,
        found: Option<OAuthClient>,
        secret: Option<&str>,
    ) -> Result<OAuthClient, OAuthError> {
        let authentic = match (&found, secret) {
            (Some(c), Some(s)) => c.secret_matches(s),
            (Some(c), None) => !c.is_confidential(),
            (None, Some(s)) => {
                let stand_in = OAuthClient {
                    secret_hash: Some(NO_CLIENT_SECRET_HASH.into()),
                    ..OAuthClient::default()
                };
                stand_in.secret_matches(s)
            }
            (None, None) => false,
        };
        match found {
            Some(c) if authentic && self.client_usable(&c).await? => Ok(c),
            _ => Err(OAuthError::client_authentication_failed()),
        }
    }

    /// The client `id` if it is registered and may act (enabled, in an enabled domain).
    pub(crate) async fn usable_client(&self, id: &str) -> Result<Option<OAuthClient>, OAuthError> {
        match self.find_oauth_client(id).await? {
            Some(c) if self.client_usable(&c).await? => Ok(Some(c)),
            _ => Ok(None),
        }
    }

    /// Whether a client may act: enabled, in an enabled domain.
    pub(crate) async fn client_usable(&self, client: &OAuthClient) -> Result<bool, OAuthError> {
        Ok(client.enabled && self.resource().domain_enabled(&client.domain_id).await?)
    }

    /// The claims of an access token for `sub`, issued through `client_id`, living until
    /// `exp`.
    pub(crate) fn access_token_claims(
        &self,
        issuer: &str,
        sub: &str,
        client_id: &str,
        exp: i64,
        limen: Option<LimenClaims>,
    ) -> AccessTokenClaims {
        AccessTokenClaims {
            iss: issuer.to_string(),
            sub: sub.to_string(),
            aud: issuer.to_string(),
            client_id: client_id.to_string(),
            iat: self.clock.now().unix_timestamp(),
            exp,
            jti: self.new_id(),
            scope: None,
            limen,
            limen_grant: None,
        }
    }

    /// The claims of a client-credentials access token (RFC 6749 §4.4): the client acts
    /// for itself, for its access-token lifetime.
    pub fn client_credentials_claims(
        &self,
        client: &OAuthClient,
        scope: Option<&str>,
    ) -> Result<AccessTokenClaims, OAuthError> {
        let issuer = self.issuer()?;
        let lifetime = self.lifetimes_of(client).access_token;
        if !client
            .grant_types
            .iter()
            .any(|g| g == GRANT_CLIENT_CREDENTIALS)
        {
            return Err(OAuthError::UnauthorizedClient(
                "This client may not use the client_credentials grant.".into(),
            ));
        }
        no_scope(scope)?;
        let exp = self.clock.now().unix_timestamp() + lifetime;
        Ok(self.access_token_claims(&issuer, &client.id, &client.id, exp, None))
    }

    /// Whether an access token Limen signed (its verified `claims`) is still good: not
    /// revoked, and what it was issued to still valid (the OAuth client enabled in an
    /// enabled domain, or the application credential present and unexpired with its user
    /// enabled).
    pub async fn access_token_active(&self, claims: &Value) -> Result<bool, OAuthError> {
        let text = |k: &str| claims[k].as_str().unwrap_or_default();
        if text("jti").is_empty()
            || self
                .record_get::<Value>(REVOKED, text("jti"))
                .await?
                .is_some()
        {
            return Ok(false);
        }
        let client_id = text("client_id");
        if let Some(grant) = claims["limen_grant"].as_str() {
            return Ok(self.live_grant(grant).await?.is_some());
        }
        if let Some(c) = self.find_oauth_client(client_id).await? {
            return self.client_usable(&c).await;
        }
        let Some(cred) = self
            .store
            .get_application_credential(client_id)
            .await
            .map_err(CoreError::from)?
        else {
            return Ok(false);
        };
        if cred.user_id != text("sub") || cred.expires_at.is_some_and(|e| e <= self.clock.now()) {
            return Ok(false);
        }
        Ok(self
            .identity()
            .find_user(&cred.user_id)
            .await?
            .is_some_and(|u| u.enabled))
    }

    /// Revokes an access token (its verified `claims`) until it would have expired anyway.
    pub async fn revoke_access_token(&self, claims: &Value) -> Result<(), OAuthError> {
        let Some(jti) = claims["jti"].as_str().filter(|j| !j.is_empty()) else {
            return Ok(());
        };
        let exp = claims["exp"].as_i64().unwrap_or_else(|| self.now_unix());
        match self.record_put(REVOKED, jti, &json!({}), exp, true).await {
            Ok(()) | Err(CoreError::Conflict { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// A client-credentials token for a Keystone application credential presented as a
    /// client (`client_id` its id, the secret its secret): the credential's user, on its
    /// project, with only its roles, checked as a Keystone login with it would be.
    pub async fn application_credential_claims(
        &self,
        credential_id: &str,
        secret: &str,
        scope: Option<&str>,
    ) -> Result<AccessTokenClaims, OAuthError> {
        no_scope(scope)?;
        let issuer = self.issuer()?;
        let lifetime = self.config.oidc.access_token_lifetime;
        let info = match self
            .application_credential_login(credential_id, secret)
            .await
        {
            Ok(info) => info,
            Err(CoreError::Internal(m)) => return Err(CoreError::Internal(m).into()),
            // Not a failed authentication: the secret was not checked.
            Err(e @ CoreError::TooManyAttempts { .. }) => {
                return Err(OAuthError::TemporarilyUnavailable(e.to_string()))
            }
            Err(_) => return Err(OAuthError::client_authentication_failed()),
        };
        if !info.allows_request(crate::delegation::access_rules::OAUTH_TOKEN_REQUEST) {
            return Err(OAuthError::UnauthorizedClient(
                "This application credential's access rules do not allow OAuth tokens (an \
                 identity rule for POST /oauth2/token)."
                    .into(),
            ));
        }
        let project = match &info.scope {
            ResolvedScope::Project { project, .. } => Some(NamedRef {
                id: project.id.clone(),
                name: project.name.clone(),
            }),
            _ => None,
        };
        let limen = LimenClaims {
            domain: NamedRef {
                id: info.user_domain.id.clone(),
                name: info.user_domain.name.clone(),
            },
            project,
            roles: info.roles.iter().map(|r| r.name.clone()).collect(),
        };
        // Never outliving the credential.
        let exp = info
            .payload
            .expires_at
            .unix_timestamp()
            .min(self.clock.now().unix_timestamp() + lifetime);
        Ok(self.access_token_claims(&issuer, &info.user.id, credential_id, exp, Some(limen)))
    }
}
