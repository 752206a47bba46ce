//! Token exchange (RFC 8693): a person's token (a Limen access or ID token, or a Keystone
//! token) becomes a short-lived JWT for one named audience, such as a Kubernetes cluster,
//! that never outlives the token it came from. The cluster trusts Limen's signature and
//! checks only the audience and the expiry, so the token says who and in which project,
//! with which roles, and nothing it could be reused for elsewhere.

use crate::auth::ResolvedScope;
use crate::error::CoreError;
use crate::model::{Target, User};
use crate::oauth_client::{OAuthClient, GRANT_TOKEN_EXCHANGE};
use crate::oauth_grant::{NamedRef, OAuthError};
use crate::oauth_user_grant::ProfileClaims;
use crate::service::Limen;
use serde::Serialize;
use serde_json::Value;

pub const TOKEN_TYPE_ACCESS: &str = "urn:ietf:params:oauth:token-type:access_token";
pub const TOKEN_TYPE_ID: &str = "urn:ietf:params:oauth:token-type:id_token";
pub const TOKEN_TYPE_JWT: &str = "urn:ietf:params:oauth:token-type:jwt";

/// A subject token as the server found it.
#[derive(Debug, Clone)]
pub enum SubjectToken {
    /// A Limen access token, its verified claims.
    LimenAccess(Value),
    /// A Limen ID token issued to the exchanging client, its verified claims.
    LimenId(Value),
    /// Anything else presented as an access token: a Keystone token to validate.
    Keystone(String),
}

/// The claims of an exchanged token.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ExchangedClaims {
    pub iss: String,
    pub sub: String,
    pub aud: String,
    pub azp: String,
    pub iat: i64,
    pub exp: i64,
    pub jti: String,
    #[serde(flatten)]
    pub profile: ProfileClaims,
}

fn invalid_subject() -> OAuthError {
    OAuthError::InvalidRequest("The subject token is invalid, expired or revoked.".into())
}

/// The `scope` of an exchange: `project:<id>`, the project the new token is to speak
/// for when its subject token names none (a person's device login, say). The OpenID
/// scopes are let through (clients such as Authlib send their session's): a cluster
/// token always carries what they would reveal.
pub fn requested_project(scope: Option<&str>) -> Result<Option<String>, OAuthError> {
    let mut project = None;
    for item in scope.unwrap_or_default().split_ascii_whitespace() {
        if crate::oauth_authorize::SCOPES.contains(&item) {
            continue;
        }
        match item.strip_prefix("project:") {
            Some(id) if !id.is_empty() && project.is_none() => project = Some(id.to_string()),
            Some(_) => {
                return Err(OAuthError::InvalidScope(
                    "Ask for at most one project:<id>.".into(),
                ))
            }
            None => {
                return Err(OAuthError::InvalidScope(format!(
                    "The scope {item:?} is not known to token exchange; it takes project:<id>."
                )))
            }
        }
    }
    Ok(project)
}

impl Limen {
    /// Exchanges `subject` for a token for `audience` (RFC 8693 §2), on behalf of
    /// `client`. `client` may ask for an audience it lists, or for the cluster that names
    /// it as its login client; never for a disabled cluster's. The token speaks for the subject's project; a subject
    /// without one gets `project` (where the user holds a role now), else the project
    /// that owns the cluster if the user holds a role there.
    pub async fn exchange_token(
        &self,
        client: &OAuthClient,
        subject: SubjectToken,
        audience: &str,
        project: Option<&str>,
    ) -> Result<ExchangedClaims, OAuthError> {
        if !client.grant_types.iter().any(|g| g == GRANT_TOKEN_EXCHANGE) {
            return Err(OAuthError::UnauthorizedClient(
                "This client may not use token exchange.".into(),
            ));
        }
        let cluster = match self.cluster_with_audience(audience).await? {
            Some((_, false)) => {
                return Err(OAuthError::InvalidTarget(format!(
                    "The cluster of {audience:?} is disabled."
                )))
            }
            Some((c, true)) => Some(c),
            None => None,
        };
        let login_client = cluster
            .as_ref()
            .is_some_and(|c| c.login_client_id.as_deref() == Some(client.id.as_str()));
        if !login_client && !client.audiences.iter().any(|a| a == audience) {
            return Err(OAuthError::InvalidTarget(format!(
                "This client may not ask for tokens for {audience:?}."
            )));
        }
        let issuer = self.issuer()?;
        let (user, subject_exp, mut project_of, mut roles) = self.subject_of(subject).await?;
        match (&project_of, project) {
            (Some(held), Some(asked)) if held.id != asked => {
                return Err(OAuthError::InvalidScope(
                    "The subject token speaks for another project.".into(),
                ))
            }
            (Some(_), _) => {}
            (None, Some(asked)) => {
                let (p, r) = self.project_roles(&user.id, asked).await?.ok_or_else(|| {
                    OAuthError::InvalidScope(format!(
                        "You hold no role on an enabled project {asked:?}."
                    ))
                })?;
                (project_of, roles) = (Some(p), r);
            }
            (None, None) => {
                let owner = cluster.as_ref().and_then(|c| c.project_id.as_deref());
                if let Some(owner) = owner {
                    if let Some((p, r)) = self.project_roles(&user.id, owner).await? {
                        (project_of, roles) = (Some(p), r);
                    }
                }
            }
        }
        let project = project_of;
        let now = self.now_unix();
        let exp = (now + self.lifetimes_of(client).exchanged_token).min(subject_exp);
        if exp <= now {
            return Err(invalid_subject());
        }
        let scopes = ["profile", "email", "groups"].map(String::from);
        let mut profile = self.profile_claims(&user, &scopes).await?;
        profile.limen.project = project;
        profile.limen.roles = roles;
        Ok(ExchangedClaims {
            iss: issuer,
            sub: user.id.clone(),
            aud: audience.to_string(),
            azp: client.id.clone(),
            iat: now,
            exp,
            jti: self.new_id(),
            profile,
        })
    }

    /// The enabled project `project_id` and the names of the roles `user_id` holds there
    /// now (implied ones included); `None` if it is not enabled or they hold none.
    async fn project_roles(
        &self,
        user_id: &str,
        project_id: &str,
    ) -> Result<Option<(NamedRef, Vec<String>)>, OAuthError> {
        let Some(ResolvedScope::Project { project, .. }) =
            self.enabled_project_scope(project_id).await?
        else {
            return Ok(None);
        };
        let roles = self
            .effective_roles(user_id, &Target::Project(project.id.clone()))
            .await?;
        if roles.is_empty() {
            return Ok(None);
        }
        let named = NamedRef {
            id: project.id,
            name: project.name,
        };
        Ok(Some((named, roles.into_iter().map(|r| r.name).collect())))
    }

    /// Who a subject token speaks for, until when, in which project with which roles.
    async fn subject_of(
        &self,
        subject: SubjectToken,
    ) -> Result<(User, i64, Option<NamedRef>, Vec<String>), OAuthError> {
        match subject {
            SubjectToken::Keystone(token) => {
                let info = match self.validate_token(&token, false).await {
                    Ok(i) => i,
                    Err(CoreError::Internal(m)) => return Err(CoreError::Internal(m).into()),
                    Err(_) => return Err(invalid_subject()),
                };
                let project = match &info.scope {
                    ResolvedScope::Project { project, .. } => Some(NamedRef {
                        id: project.id.clone(),
                        name: project.name.clone(),
                    }),
                    _ => None,
                };
                let roles = info.roles.iter().map(|r| r.name.clone()).collect();
                Ok((
                    info.user.clone(),
                    info.payload.expires_at.unix_timestamp(),
                    project,
                    roles,
                ))
            }
            SubjectToken::LimenAccess(claims) => {
                if !self.access_token_active(&claims).await? {
                    return Err(invalid_subject());
                }
                let exp = claims["exp"].as_i64().unwrap_or(0);
                let sub = claims["sub"].as_str().unwrap_or_default();
                // A client acting for itself has no person to speak for.
                if claims["limen_grant"].is_null() && claims["limen"].is_null() {
                    return Err(OAuthError::InvalidRequest(
                        "The subject token names no user.".into(),
                    ));
                }
                let user = self.usable_user(sub).await?.ok_or_else(invalid_subject)?;
                let limen = &claims["limen"];
                let project = limen["project"]["id"].as_str().map(|id| NamedRef {
                    id: id.to_string(),
                    name: limen["project"]["name"].as_str().unwrap_or_default().into(),
                });
                let roles = limen["roles"]
                    .as_array()
                    .map(|r| {
                        r.iter()
                            .filter_map(|v| v.as_str().map(String::from))
                            .collect()
                    })
                    .unwrap_or_default();
                Ok((user, exp, project, roles))
            }
            SubjectToken::LimenId(claims) => {
                let exp = claims["exp"].as_i64().unwrap_or(0);
                let grant = claims["limen_grant"].as_str().unwrap_or_default();
                let (_, user) = self.live_grant(grant).await?.ok_or_else(invalid_subject)?;
                if claims["sub"].as_str() != Some(user.id.as_str()) {
                    return Err(invalid_subject());
                }
                Ok((user, exp, None, Vec::new()))
            }
        }
    }
}
