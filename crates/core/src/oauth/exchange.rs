//! Token exchange (RFC 8693): a person's token (a Limen access or ID token, or a Keystone
//! token) becomes a short-lived JWT for one named audience, such as a Kubernetes cluster,
//! that never outlives the token it came from. The cluster trusts Limen's signature and
//! checks only the audience and the expiry, so the token says who and in which project,
//! with which roles, and nothing it could be reused for elsewhere.
//!
//! Who may turn which token into what (docs/security.md, "Token exchange"):
//! - an audience is never an OAuth client's id nor the issuer, so no exchanged token can
//!   pass for an ID token or a Limen access token (it also carries its own `typ`,
//!   [`EXCHANGED_TOKEN_TYP`]);
//! - a cluster's audience is minted only for clients the cluster trusts: its login
//!   client, clients of its own domain that list the audience, and the other domains'
//!   clients it names in `exchange_clients`; and only for people the cluster admits;
//! - a Limen access token is exchanged only by the client it was issued to; one issued to
//!   an application credential (a CI job's `limen login`), only by the login client of
//!   the cluster asked for;
//! - a Limen ID token only by the client it was issued to (its `aud`);
//! - a Keystone token by any client allowed the audience: it is a bearer credential for
//!   the whole Identity API already;
//! - the new token names what it came from (`limen_from`), and dies with it.

use crate::error::CoreError;
use crate::kubernetes::cluster::Cluster;
use crate::model::{Target, User};
use crate::oauth::client::{OAuthClient, GRANT_TOKEN_EXCHANGE};
use crate::oauth::grant::{NamedRef, OAuthError};
use crate::oauth::user_grant::ProfileClaims;
use crate::oauth::OAuthService;
use crate::token::auth::ResolvedScope;
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub const TOKEN_TYPE_ACCESS: &str = "urn:ietf:params:oauth:token-type:access_token";
pub const TOKEN_TYPE_ID: &str = "urn:ietf:params:oauth:token-type:id_token";
pub const TOKEN_TYPE_JWT: &str = "urn:ietf:params:oauth:token-type:jwt";

/// The JOSE `typ` of exchanged tokens: neither an ID token's `JWT` nor an access token's
/// `at+jwt`, so no check for either accepts one (RFC 8725 §3.11).
pub const EXCHANGED_TOKEN_TYP: &str = "limen-exchanged+jwt";

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
    /// What the token was exchanged from; it is good only while that is.
    pub limen_from: ExchangedFrom,
}

/// The subject token an exchanged token came from, as much as is needed to tell later
/// whether it still stands.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExchangedFrom {
    /// A person's login with an OAuth client (an access or ID token of that grant).
    Grant(String),
    /// An access token an application credential got (`client_id` is the credential).
    AccessToken { jti: String, client_id: String },
    /// A Keystone token.
    Keystone(KeystoneSubject),
}

/// What revocation events and deletions can match of a Keystone subject token.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KeystoneSubject {
    pub audit_ids: Vec<String>,
    pub issued_at: i64,
    pub expires_at: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trust_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub application_credential_id: Option<String>,
}

/// A subject token's person and what the exchange needs of it.
struct Subject {
    user: User,
    exp: i64,
    project: Option<NamedRef>,
    roles: Vec<String>,
    from: ExchangedFrom,
    /// The OAuth client (or application credential) a Limen token was issued to.
    issued_to: Option<String>,
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
        if crate::oauth::authorize::SCOPES.contains(&item) {
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

/// An audience a client may turn a person's login into, as a consent page names it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ExchangeTarget {
    pub audience: String,
    /// The cluster's name and its domain's, where the audience is a cluster's.
    pub cluster: Option<(String, String)>,
}

impl OAuthService<'_> {
    /// Every audience `client` may exchange a person's token for: the clusters that trust
    /// it and the other audiences it lists. What a consent page must show.
    pub async fn exchange_targets(
        &self,
        client: &OAuthClient,
    ) -> Result<Vec<ExchangeTarget>, CoreError> {
        if !client.grant_types.iter().any(|g| g == GRANT_TOKEN_EXCHANGE) {
            return Ok(Vec::new());
        }
        let clusters = self.kubernetes().list_clusters(None).await?;
        let mut targets = Vec::new();
        for c in clusters.iter().filter(|c| cluster_trusts_client(c, client)) {
            let domain = self.resource().get_domain(&c.domain_id).await?;
            targets.push(ExchangeTarget {
                audience: c.audience.clone(),
                cluster: Some((c.name.clone(), domain.name)),
            });
        }
        for a in &client.audiences {
            if !clusters.iter().any(|c| &c.audience == a) {
                targets.push(ExchangeTarget {
                    audience: a.clone(),
                    cluster: None,
                });
            }
        }
        targets.sort();
        Ok(targets)
    }

    /// Exchanges `subject` for a token for `audience` (RFC 8693 §2), on behalf of
    /// `client`, under the rules in this module's documentation. The token speaks for
    /// the subject's project; a subject without one gets `project` (where the user holds
    /// a role now), else the project that owns the cluster if the user holds a role there.
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
        let cluster = self.exchange_target(client, audience).await?;
        let issuer = self.issuer()?;
        let Subject {
            user,
            exp: subject_exp,
            project: mut project_of,
            mut roles,
            from,
            issued_to,
        } = self.subject_of(subject).await?;
        self.check_subject_holder(client, cluster.as_ref(), &from, issued_to.as_deref())?;
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
        if let Some(cluster) = &cluster {
            let project_id = project_of.as_ref().map(|p| p.id.as_str());
            if !self
                .kubernetes()
                .cluster_admits(cluster, &user.id, project_id)
                .await?
            {
                return Err(OAuthError::InvalidTarget(format!(
                    "The cluster of {audience:?} does not admit you{}: it takes people \
                     holding a role in its own domain or a domain it trusts.",
                    if project_id.is_some() {
                        " with this project"
                    } else {
                        ""
                    }
                )));
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
            limen_from: from,
        })
    }

    /// Whether `client` may have tokens minted for `audience`, and the cluster whose
    /// audience it is, if one's. An audience is never another client's id (its tokens
    /// would pass for that client's ID tokens) nor the issuer.
    async fn exchange_target(
        &self,
        client: &OAuthClient,
        audience: &str,
    ) -> Result<Option<Cluster>, OAuthError> {
        let refused = || {
            OAuthError::InvalidTarget(format!(
                "This client may not ask for tokens for {audience:?}."
            ))
        };
        if self.find_oauth_client(audience).await?.is_some()
            || self.issuer().is_ok_and(|i| i == audience)
        {
            return Err(refused());
        }
        let Some((cluster, usable)) = self.kubernetes().cluster_with_audience(audience).await?
        else {
            return if client.audiences.iter().any(|a| a == audience) {
                Ok(None)
            } else {
                Err(refused())
            };
        };
        if !usable {
            return Err(OAuthError::InvalidTarget(format!(
                "The cluster of {audience:?} is disabled."
            )));
        }
        if cluster_trusts_client(&cluster, client) {
            Ok(Some(cluster))
        } else {
            Err(refused())
        }
    }

    /// Whether `client` may present a subject token that was issued to `issued_to`: a
    /// Limen token only by the client it was issued to; an application credential's
    /// access token (the only kind [`ExchangedFrom::AccessToken`] stands for: an OAuth
    /// client's own token names no person and was refused already) only by the login
    /// client of the cluster asked for.
    fn check_subject_holder(
        &self,
        client: &OAuthClient,
        cluster: Option<&Cluster>,
        from: &ExchangedFrom,
        issued_to: Option<&str>,
    ) -> Result<(), OAuthError> {
        let Some(issued_to) = issued_to else {
            return Ok(());
        };
        if issued_to == client.id {
            return Ok(());
        }
        let login_client =
            cluster.is_some_and(|c| c.login_client_id.as_deref() == Some(client.id.as_str()));
        if matches!(from, ExchangedFrom::AccessToken { .. }) && login_client {
            return Ok(());
        }
        Err(OAuthError::InvalidRequest(
            "The subject token was issued to another client.".into(),
        ))
    }

    /// The enabled project `project_id` and the names of the roles `user_id` holds there
    /// now (implied ones included); `None` if it is not enabled or they hold none.
    async fn project_roles(
        &self,
        user_id: &str,
        project_id: &str,
    ) -> Result<Option<(NamedRef, Vec<String>)>, OAuthError> {
        let Some(ResolvedScope::Project { project, .. }) =
            self.token().enabled_project_scope(project_id).await?
        else {
            return Ok(None);
        };
        let roles = self
            .assignment()
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

    /// Who a subject token speaks for, until when, in which project with which roles,
    /// and what the new token comes from.
    async fn subject_of(&self, subject: SubjectToken) -> Result<Subject, OAuthError> {
        match subject {
            SubjectToken::Keystone(token) => {
                let info = match self.token().validate_token(&token, false).await {
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
                let from = ExchangedFrom::Keystone(KeystoneSubject {
                    audit_ids: info.payload.audit_ids.clone(),
                    issued_at: info.payload.issued_at.unix_timestamp(),
                    expires_at: info.payload.expires_at.unix_timestamp(),
                    trust_id: info.trust.as_ref().map(|t| t.id.clone()),
                    application_credential_id: info
                        .application_credential
                        .as_ref()
                        .map(|a| a.id.clone()),
                });
                Ok(Subject {
                    user: info.user.clone(),
                    exp: info.payload.expires_at.unix_timestamp(),
                    project,
                    roles: info.roles.iter().map(|r| r.name.clone()).collect(),
                    from,
                    issued_to: None,
                })
            }
            SubjectToken::LimenAccess(claims) => {
                if !self.access_token_active(&claims).await? {
                    return Err(invalid_subject());
                }
                let text = |k: &str| claims[k].as_str().unwrap_or_default().to_string();
                let from = match claims["limen_grant"].as_str() {
                    Some(grant) => ExchangedFrom::Grant(grant.to_string()),
                    // A client acting for itself has no person to speak for.
                    None if claims["limen"].is_null() => {
                        return Err(OAuthError::InvalidRequest(
                            "The subject token names no user.".into(),
                        ))
                    }
                    None => ExchangedFrom::AccessToken {
                        jti: text("jti"),
                        client_id: text("client_id"),
                    },
                };
                let user = self
                    .usable_user(&text("sub"))
                    .await?
                    .ok_or_else(invalid_subject)?;
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
                Ok(Subject {
                    user,
                    exp: claims["exp"].as_i64().unwrap_or(0),
                    project,
                    roles,
                    from,
                    issued_to: Some(text("client_id")),
                })
            }
            SubjectToken::LimenId(claims) => {
                let grant = claims["limen_grant"].as_str().unwrap_or_default();
                let (_, user) = self.live_grant(grant).await?.ok_or_else(invalid_subject)?;
                if claims["sub"].as_str() != Some(user.id.as_str()) {
                    return Err(invalid_subject());
                }
                Ok(Subject {
                    user,
                    exp: claims["exp"].as_i64().unwrap_or(0),
                    project: None,
                    roles: Vec::new(),
                    from: ExchangedFrom::Grant(grant.to_string()),
                    issued_to: claims["aud"].as_str().map(String::from),
                })
            }
        }
    }

    /// Whether what an exchanged token came from (`from`, for `user_id`) still stands: the
    /// grant not ended, the application credential's access token not revoked and the
    /// credential still there, the Keystone token not revoked.
    pub(crate) async fn exchanged_from_alive(
        &self,
        from: &ExchangedFrom,
        user_id: &str,
    ) -> Result<bool, OAuthError> {
        match from {
            ExchangedFrom::Grant(id) => Ok(self
                .live_grant(id)
                .await?
                .is_some_and(|(_, user)| user.id == user_id)),
            ExchangedFrom::AccessToken { jti, client_id } => {
                let claims = serde_json::json!({
                    "jti": jti, "client_id": client_id, "sub": user_id,
                });
                self.access_token_active(&claims).await
            }
            ExchangedFrom::Keystone(k) => Ok(self.keystone_subject_alive(k, user_id).await?),
        }
    }

    async fn keystone_subject_alive(
        &self,
        k: &KeystoneSubject,
        user_id: &str,
    ) -> Result<bool, CoreError> {
        let at = |t: i64| time::OffsetDateTime::from_unix_timestamp(t).ok();
        let (Some(issued_at), Some(expires_at)) = (at(k.issued_at), at(k.expires_at)) else {
            return Ok(false);
        };
        if let Some(id) = &k.application_credential_id {
            let cred = self.store.get_application_credential(id).await?;
            if cred.is_none_or(|c| c.expires_at.is_some_and(|e| e <= self.clock.now())) {
                return Ok(false);
            }
        }
        let facts = crate::token::revoke::TokenFacts {
            user_id,
            project_id: None,
            domain_ids: Vec::new(),
            role_ids: Vec::new(),
            trust_id: k.trust_id.as_deref(),
            audit_id: k.audit_ids.first().map(String::as_str),
            audit_chain_id: k.audit_ids.last().map(String::as_str),
            expires_at,
            issued_at,
        };
        // The events since the subject was issued, read once per node until the next
        // revocation anywhere: a review (a hot path) costs no query.
        Ok(!self.token().revoked_at_stamp(&facts).await?)
    }
}

/// Whether `cluster` lets `client` mint tokens for its audience: its login client, a
/// client of its own domain that lists the audience, or a client it names.
pub fn cluster_trusts_client(cluster: &Cluster, client: &OAuthClient) -> bool {
    cluster.login_client_id.as_deref() == Some(client.id.as_str())
        || (client.domain_id == cluster.domain_id
            && client.audiences.iter().any(|a| a == &cluster.audience))
        || cluster.exchange_clients.contains(&client.id)
}
