//! A person's grants: what an authorization code (and later a device code) turns into.
//! A grant is a token family: its refresh tokens and access tokens live only as long as
//! it does, and revoking it (a replayed code, a reused refresh token, RFC 7009 revocation)
//! ends them all. Refresh tokens rotate on every use; presenting a used one again means
//! it was stolen or copied, so the whole family goes (RFC 9700 §4.14).

use crate::documents::{secret_key, RecordKind};
use crate::error::{CoreError, CoreResult};
use crate::model::User;
use crate::oauth::authorize::{parse_scopes, CodeRecord, CODE};
use crate::oauth::client::{OAuthClient, GRANT_REFRESH_TOKEN};
use crate::oauth::grant::{AccessTokenClaims, LimenClaims, NamedRef, OAuthError};
use crate::oauth::session::SignIn;
use crate::oauth::OAuthService;
use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

const GRANT: RecordKind = RecordKind::Grant;
const REFRESH: RecordKind = RecordKind::RefreshToken;
/// Markers that a code or refresh token was redeemed: created once, atomically, so of
/// two racing redemptions exactly one wins, and a later one is seen as a replay.
const CODE_USED: RecordKind = RecordKind::AuthorizationCodeUsed;
const REFRESH_USED: RecordKind = RecordKind::RefreshTokenUsed;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Grant {
    pub id: String,
    pub client_id: String,
    pub user_id: String,
    pub scopes: Vec<String>,
    #[serde(flatten)]
    pub sign_in: SignIn,
    pub created_at: i64,
    pub expires_at: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct RefreshRecord {
    grant_id: String,
    client_id: String,
    scopes: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct UsedMarker {
    grant_id: String,
}

/// Claims about the person, as the scopes allow (OpenID Connect Core §5.4).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ProfileClaims {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub preferred_username: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email_verified: Option<bool>,
    /// Group names qualified by their domain (`Default/admins`): names are unique only
    /// within a domain.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub groups: Option<Vec<String>>,
    pub limen: LimenClaims,
}

/// An ID token's claims (OpenID Connect Core §2).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IdTokenClaims {
    pub iss: String,
    pub sub: String,
    pub aud: String,
    pub azp: String,
    pub iat: i64,
    pub exp: i64,
    pub auth_time: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
    pub amr: Vec<String>,
    /// The grant (the login) it belongs to: an exchange of it works while that lives.
    pub limen_grant: String,
    #[serde(flatten)]
    pub profile: ProfileClaims,
}

/// What a grant gives a client at the token endpoint (the server signs the JWTs).
#[derive(Debug, Clone)]
pub struct UserTokens {
    pub access: AccessTokenClaims,
    pub id_token: Option<IdTokenClaims>,
    pub refresh_token: Option<String>,
}

/// Whether `verifier` (RFC 7636 §4.1: 43–128 unreserved characters) hashes to
/// `challenge` (S256), compared in constant time.
pub fn pkce_matches(verifier: &str, challenge: &str) -> bool {
    let well_formed = (43..=128).contains(&verifier.len())
        && verifier
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'));
    let computed =
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(verifier));
    well_formed && bool::from(computed.as_bytes().ct_eq(challenge.as_bytes()))
}

fn bad_grant(m: &str) -> OAuthError {
    OAuthError::InvalidGrant(m.to_string())
}

impl OAuthService<'_> {
    /// Redeems an authorization code (RFC 6749 §4.1.3) for `client`: once only, with the
    /// redirect URI it was issued for and the PKCE verifier of its challenge. A second
    /// redemption revokes everything the first one gave.
    pub async fn redeem_authorization_code(
        &self,
        client: &OAuthClient,
        code: Option<&str>,
        redirect_uri: Option<&str>,
        verifier: Option<&str>,
    ) -> Result<UserTokens, OAuthError> {
        let code = code.ok_or_else(|| OAuthError::InvalidRequest("code is required.".into()))?;
        let key = secret_key(code);
        let unknown = || bad_grant("The authorization code is unknown, expired or used.");
        let record: CodeRecord = self.record_get(CODE, &key).await?.ok_or_else(unknown)?;
        if record.client_id != client.id {
            return Err(unknown());
        }
        // A code used before is a replay: what it gave is revoked.
        if let Some(first) = self.record_get::<UsedMarker>(CODE_USED, &key).await? {
            self.revoke_grant(&first.grant_id).await?;
            tracing::warn!(client = %client.id, grant = %first.grant_id,
                "authorization code replayed: its grant is revoked");
            return Err(unknown());
        }
        // Checked before the code is marked used, so that a wrong verifier (someone who
        // intercepted the code but lacks the verifier) does not burn the real client's.
        if redirect_uri != Some(record.redirect_uri.as_str()) {
            return Err(bad_grant(
                "redirect_uri differs from the one the code was issued for.",
            ));
        }
        let verifier = verifier.ok_or_else(|| bad_grant("code_verifier is required (PKCE)."))?;
        if !pkce_matches(verifier, &record.code_challenge) {
            return Err(bad_grant(
                "The code_verifier does not match the code_challenge.",
            ));
        }
        let grant_id = self.new_id();
        let marker = UsedMarker {
            grant_id: grant_id.clone(),
        };
        match self
            .record_put(CODE_USED, &key, &marker, record.expires_at, true)
            .await
        {
            Ok(()) => {}
            // Redeemed at the same moment by another request: both lose.
            Err(CoreError::Conflict { .. }) => {
                if let Some(first) = self.record_get::<UsedMarker>(CODE_USED, &key).await? {
                    self.revoke_grant(&first.grant_id).await?;
                    tracing::warn!(client = %client.id, grant = %first.grant_id,
                        "authorization code replayed: its grant is revoked");
                }
                return Err(unknown());
            }
            Err(e) => return Err(e.into()),
        }
        let (grant, user) = self
            .start_grant(
                grant_id,
                client,
                &record.user_id,
                record.scopes,
                record.sign_in,
            )
            .await?;
        let scopes = grant.scopes.clone();
        self.user_tokens(&grant, client, &user, &scopes, record.nonce)
            .await
    }

    /// Records a new grant `id` to `client` of the person who signed in as `sign_in`,
    /// if they are still enabled and hold the password they signed in with.
    pub(crate) async fn start_grant(
        &self,
        id: String,
        client: &OAuthClient,
        user_id: &str,
        scopes: Vec<String>,
        sign_in: SignIn,
    ) -> Result<(Grant, User), OAuthError> {
        let Some(user) = self.signed_in_user(user_id, &sign_in).await? else {
            return Err(bad_grant(
                "The user is disabled or gone, or changed their password since signing in.",
            ));
        };
        let now = self.now_unix();
        let grant = Grant {
            id,
            client_id: client.id.clone(),
            user_id: user.id.clone(),
            scopes,
            sign_in,
            created_at: now,
            expires_at: now + self.lifetimes_of(client).grant,
        };
        self.record_put(GRANT, &grant.id, &grant, grant.expires_at, true)
            .await?;
        Ok((grant, user))
    }

    /// Refreshes (RFC 6749 §6) with rotation: the presented refresh token is used up and
    /// a new one comes back; `scope` may only narrow. A used refresh token presented
    /// again revokes its grant.
    pub async fn refresh_grant(
        &self,
        client: &OAuthClient,
        refresh_token: Option<&str>,
        scope: Option<&str>,
    ) -> Result<UserTokens, OAuthError> {
        if !client.grant_types.iter().any(|g| g == GRANT_REFRESH_TOKEN) {
            return Err(OAuthError::UnauthorizedClient(
                "This client may not use the refresh_token grant.".into(),
            ));
        }
        let token = refresh_token
            .ok_or_else(|| OAuthError::InvalidRequest("refresh_token is required.".into()))?;
        let key = secret_key(token);
        let unknown = || bad_grant("The refresh token is unknown, expired or revoked.");
        let record: RefreshRecord = self.record_get(REFRESH, &key).await?.ok_or_else(unknown)?;
        if record.client_id != client.id {
            return Err(unknown());
        }
        let marker = UsedMarker {
            grant_id: record.grant_id.clone(),
        };
        let until = self.now_unix() + self.config.oidc.refresh_token_lifetime;
        match self
            .record_put(REFRESH_USED, &key, &marker, until, true)
            .await
        {
            Ok(()) => {}
            Err(CoreError::Conflict { .. }) => {
                self.revoke_grant(&record.grant_id).await?;
                tracing::warn!(client = %client.id, grant = %record.grant_id,
                    "refresh token reused: its grant is revoked");
                return Err(bad_grant(
                    "The refresh token was already used; every token of its grant is revoked.",
                ));
            }
            Err(e) => return Err(e.into()),
        }
        let Some((grant, user)) = self.live_grant(&record.grant_id).await? else {
            return Err(unknown());
        };
        let scopes = match scope {
            None => record.scopes.clone(),
            Some(s) => {
                let asked = parse_scopes(Some(s)).map_err(|u| {
                    OAuthError::InvalidScope(format!("The scope {u:?} is not supported."))
                })?;
                if let Some(wider) = asked.iter().find(|a| !record.scopes.contains(a)) {
                    return Err(OAuthError::InvalidScope(format!(
                        "The scope {wider:?} was not granted; a refresh may only narrow."
                    )));
                }
                asked
            }
        };
        self.user_tokens(&grant, client, &user, &scopes, None).await
    }

    /// The grant `id` if it is alive: not revoked or expired, its user enabled in an
    /// enabled domain, its client enabled in an enabled domain.
    pub async fn live_grant(&self, id: &str) -> Result<Option<(Grant, User)>, OAuthError> {
        let Some(grant) = self.record_get::<Grant>(GRANT, id).await? else {
            return Ok(None);
        };
        if self.usable_client(&grant.client_id).await?.is_none() {
            return Ok(None);
        }
        let user = self.signed_in_user(&grant.user_id, &grant.sign_in).await?;
        Ok(user.map(|u| (grant, u)))
    }

    /// Ends a grant and so every refresh and access token of its family.
    pub async fn revoke_grant(&self, id: &str) -> Result<(), OAuthError> {
        if self.record_delete(GRANT, id).await? {
            tracing::info!(grant = %id, "OAuth grant revoked");
        }
        Ok(())
    }

    /// RFC 7009 for a refresh token: `client` revokes its grant; anything else (unknown,
    /// another client's) changes nothing.
    pub async fn revoke_refresh_token(
        &self,
        client: &OAuthClient,
        token: &str,
    ) -> Result<bool, OAuthError> {
        match self
            .record_get::<RefreshRecord>(REFRESH, &secret_key(token))
            .await?
        {
            Some(r) if r.client_id == client.id => {
                self.revoke_grant(&r.grant_id).await?;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    /// The user `id` if enabled, in an enabled domain.
    pub(crate) async fn usable_user(&self, id: &str) -> CoreResult<Option<User>> {
        let user = match self.identity().get_user(id).await {
            Ok(u) if u.enabled => u,
            Ok(_) | Err(CoreError::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(e),
        };
        let enabled = self.resource().domain_enabled(&user.domain_id).await?;
        Ok(enabled.then_some(user))
    }

    /// Access token, ID token (with `openid`) and a new refresh token (for a client
    /// allowed to refresh) of `grant`, for `scopes`.
    pub(crate) async fn user_tokens(
        &self,
        grant: &Grant,
        client: &OAuthClient,
        user: &User,
        scopes: &[String],
        nonce: Option<String>,
    ) -> Result<UserTokens, OAuthError> {
        let issuer = self.issuer()?;
        let lifetimes = self.lifetimes_of(client);
        let now = self.now_unix();
        let exp = (now + lifetimes.access_token).min(grant.expires_at);
        let mut access = self.access_token_claims(&issuer, &user.id, &client.id, exp, None);
        access.scope = Some(scopes.join(" "));
        access.limen_grant = Some(grant.id.clone());
        let id_token = if scopes.iter().any(|s| s == "openid") {
            Some(IdTokenClaims {
                iss: issuer,
                sub: user.id.clone(),
                aud: client.id.clone(),
                azp: client.id.clone(),
                iat: now,
                exp,
                auth_time: grant.sign_in.auth_time,
                nonce,
                amr: grant.sign_in.amr.clone(),
                limen_grant: grant.id.clone(),
                profile: self.profile_claims(user, scopes).await?,
            })
        } else {
            None
        };
        let refresh_token = if client.grant_types.iter().any(|g| g == GRANT_REFRESH_TOKEN) {
            let raw = self.new_opaque_secret();
            let record = RefreshRecord {
                grant_id: grant.id.clone(),
                client_id: client.id.clone(),
                scopes: grant.scopes.clone(),
            };
            let until = (now + lifetimes.refresh_token).min(grant.expires_at);
            self.record_put(REFRESH, &secret_key(&raw), &record, until, true)
                .await?;
            Some(raw)
        } else {
            None
        };
        Ok(UserTokens {
            access,
            id_token,
            refresh_token,
        })
    }

    /// What the scopes reveal about `user`, read fresh from the store.
    pub(crate) async fn profile_claims(
        &self,
        user: &User,
        scopes: &[String],
    ) -> Result<ProfileClaims, OAuthError> {
        let has = |s: &str| scopes.iter().any(|x| x == s);
        let extra_text = |k: &str| {
            user.extra
                .get(k)
                .and_then(Value::as_str)
                .map(str::to_string)
        };
        let domain = self.resource().get_domain(&user.domain_id).await?;
        let mut claims = ProfileClaims {
            limen: LimenClaims {
                domain: NamedRef {
                    id: domain.id.clone(),
                    name: domain.name.clone(),
                },
                project: None,
                roles: Vec::new(),
            },
            ..ProfileClaims::default()
        };
        if has("profile") {
            claims.preferred_username = Some(user.name.clone());
            claims.name = extra_text("name");
        }
        if has("email") {
            claims.email = extra_text("email");
            // Only an operator's word makes an address verified (kube trusts it).
            claims.email_verified = claims.email.as_ref().map(|_| {
                user.extra
                    .get("email_verified")
                    .and_then(Value::as_bool)
                    .unwrap_or(false)
            });
        }
        if has("groups") {
            claims.groups = Some(
                self.identity()
                    .qualified_group_names(&user.id, &domain)
                    .await?,
            );
        }
        Ok(claims)
    }

    /// OpenID Connect UserInfo (Core §5.3) for an access token Limen signed (its
    /// verified claims): `sub` and what the token's scopes allow.
    pub async fn userinfo(&self, claims: &Value) -> Result<Value, OAuthError> {
        let scopes: Vec<String> = claims["scope"]
            .as_str()
            .unwrap_or("")
            .split_whitespace()
            .map(str::to_string)
            .collect();
        if !self.access_token_active(claims).await? {
            return Err(OAuthError::InvalidToken(
                "The access token is expired, revoked or not Limen's.".into(),
            ));
        }
        let grant = claims["limen_grant"].as_str().unwrap_or_default();
        let Some((_, user)) = self.live_grant(grant).await? else {
            return Err(OAuthError::InvalidToken(
                "The access token is not a person's.".into(),
            ));
        };
        if !scopes.iter().any(|s| s == "openid") {
            return Err(OAuthError::InsufficientScope(
                "The access token lacks the openid scope.".into(),
            ));
        }
        let mut out = serde_json::to_value(self.profile_claims(&user, &scopes).await?)
            .map_err(|e| CoreError::Internal(e.to_string()))?;
        out["sub"] = Value::String(user.id);
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::pkce_matches;

    #[test]
    fn pkce_s256_follows_rfc_7636_appendix_b() {
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        let challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
        assert!(pkce_matches(verifier, challenge));
        assert!(!pkce_matches(
            verifier,
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cN"
        ));
        assert!(!pkce_matches("short", challenge));
    }
}
