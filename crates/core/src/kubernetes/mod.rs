//! What a Kubernetes cluster learns about a bearer token presented to it (the decision
//! behind the TokenReview webhook): who the person is, in Kubernetes terms. The wire
//! format and the signature check of a cluster token are the server's.
//!
//! Names (docs/kubernetes.md): the username comes from `[kubernetes] username_template`
//! (default `limen:{domain_name}/{user_name}`: the prefix keeps Limen's people apart from
//! other authenticators' in RBAC, and a `/` or `%` inside a name is percent-encoded, so
//! names are unambiguous across domains); groups are the user's Keystone groups
//! (`limen:group:Domain/group`, encoded alike) and, for a token scoped to a project,
//! `limen:project:<project id>` and `limen:project:<project id>:<role>` for each role
//! held there; `extra` carries domain, project and roles under k8s-keystone-auth's keys.
//! Nothing Limen names may start with `system:`, Kubernetes' reserved prefix.

pub mod cluster;
pub mod keystone_auth;
pub mod rules;

use crate::delegation::access_rules::TOKEN_REVIEW_REQUEST;
use crate::error::CoreError;
use crate::identity::name_part;
use crate::kubernetes::cluster::Cluster;
use crate::model::Target;
use crate::model::{Domain, User};
use crate::oauth::exchange::ExchangedFrom;
use crate::oauth::grant::OAuthError;
use crate::service::Limen;
use crate::token::auth::ResolvedScope;
use serde_json::Value;
use std::collections::BTreeMap;

/// The placeholders a username template may use.
pub const USERNAME_PLACEHOLDERS: [&str; 4] =
    ["{user_name}", "{user_id}", "{domain_name}", "{domain_id}"];

/// The default username: readable and unambiguous across domains.
pub const DEFAULT_USERNAME_TEMPLATE: &str = "limen:{domain_name}/{user_name}";

/// The prefix of Keystone groups' names on Kubernetes.
pub const GROUP_PREFIX: &str = "limen:group:";

/// The `extra` keys (k8s-keystone-auth's, so its users' policies keep matching).
pub const EXTRA_DOMAIN_ID: &str = "alpha.kubernetes.io/identity/user/domain/id";
pub const EXTRA_DOMAIN_NAME: &str = "alpha.kubernetes.io/identity/user/domain/name";
pub const EXTRA_PROJECT_ID: &str = "alpha.kubernetes.io/identity/project/id";
pub const EXTRA_PROJECT_NAME: &str = "alpha.kubernetes.io/identity/project/name";
pub const EXTRA_ROLES: &str = "alpha.kubernetes.io/identity/roles";

/// A bearer token as the cluster's webhook call brought it.
pub enum PresentedToken {
    /// A Limen cluster token whose signature, issuer and expiry the server checked, and
    /// whose audience is this cluster's: its claims.
    ClusterToken(Value),
    /// Anything else: perhaps a Keystone token.
    Other(String),
}

/// A person as Kubernetes sees them (TokenReview's `status.user`).
#[derive(Debug, Clone, PartialEq)]
pub struct KubeUser {
    pub username: String,
    pub uid: String,
    pub groups: Vec<String>,
    pub extra: BTreeMap<String, Vec<String>>,
}

/// Why a token does not authenticate anyone on a cluster; the text goes to the cluster
/// (TokenReview's `status.error`), so it says what is wrong without revealing secrets.
#[derive(Debug, thiserror::Error)]
pub enum TokenRejected {
    #[error("{0}")]
    Invalid(String),
    /// The store failed: the cluster should try again (the webhook still answers 200).
    #[error("the identity service cannot check tokens right now")]
    Unavailable,
}

impl From<CoreError> for TokenRejected {
    fn from(e: CoreError) -> Self {
        match e {
            CoreError::NotFound { .. } | CoreError::NotFoundMessage(_) => {
                TokenRejected::Invalid("the token's user or project no longer exists".into())
            }
            other => {
                tracing::error!(error = %other, "token review failed");
                TokenRejected::Unavailable
            }
        }
    }
}

/// Whether `template` uses only known placeholders and names someone.
pub fn check_username_template(template: &str) -> Result<(), String> {
    let mut rest = template.to_string();
    for p in USERNAME_PLACEHOLDERS {
        rest = rest.replace(p, "");
    }
    if rest.contains('{') || rest.contains('}') {
        return Err(format!(
            "kubernetes.username_template {template:?} uses an unknown placeholder; known: {}",
            USERNAME_PLACEHOLDERS.join(", ")
        ));
    }
    if !template.contains("{user_name}") && !template.contains("{user_id}") {
        return Err(format!(
            "kubernetes.username_template {template:?} names no user: use {{user_name}} or \
             {{user_id}}"
        ));
    }
    if template.starts_with("system:") {
        return Err("kubernetes.username_template must not start with system:".into());
    }
    Ok(())
}

/// Fills a username template's placeholders in one pass: a value is never read as a
/// template itself, so a user or domain named `{domain_id}` cannot take another's
/// Kubernetes name. Text that is no placeholder stays as written.
fn fill_username(template: &str, values: &[(&str, &str)]) -> String {
    let mut out = String::with_capacity(template.len() + 32);
    let mut rest = template;
    'scan: while !rest.is_empty() {
        for (placeholder, value) in values {
            if let Some(after) = rest.strip_prefix(placeholder) {
                out.push_str(value);
                rest = after;
                continue 'scan;
            }
        }
        let mut chars = rest.chars();
        if let Some(c) = chars.next() {
            out.push(c);
        }
        rest = chars.as_str();
    }
    out
}

/// The project a token speaks for and the role names held there.
struct ProjectScope {
    id: String,
    name: String,
    roles: Vec<String>,
}

/// The Kubernetes area's services: clusters, their rules, the reviews clusters ask for
/// and the k8s-keystone-auth import (`limen.kubernetes()`).
#[derive(Clone, Copy)]
pub struct KubernetesService<'a> {
    limen: &'a Limen,
}

impl Limen {
    pub fn kubernetes(&self) -> KubernetesService<'_> {
        KubernetesService { limen: self }
    }
}

/// The shared machinery (store, clock, other areas) stays reachable as `self.…`.
impl std::ops::Deref for KubernetesService<'_> {
    type Target = Limen;

    fn deref(&self) -> &Limen {
        self.limen
    }
}

impl KubernetesService<'_> {
    /// Whether `cluster` takes `user_id` (with a token for `project_id`, if any): the
    /// project must lie in the cluster's domain or a domain it trusts, and the person
    /// must hold a role on one of those domains or on one of their projects (grants from
    /// anywhere count, so a guest given a role in the cluster's domain gets in).
    pub(crate) async fn cluster_admits(
        &self,
        cluster: &Cluster,
        user_id: &str,
        project_id: Option<&str>,
    ) -> Result<bool, CoreError> {
        let trusted = |domain_id: &str| {
            domain_id == cluster.domain_id || cluster.trusted_domains.iter().any(|d| d == domain_id)
        };
        if let Some(pid) = project_id {
            // The person's roles on the project are checked where the token is read.
            return Ok(trusted(&self.resource().get_project(pid).await?.domain_id));
        }
        if self
            .assignment()
            .domains_for_user(user_id)
            .await?
            .iter()
            .any(|d| trusted(&d.id))
        {
            return Ok(true);
        }
        Ok(self
            .assignment()
            .projects_for_user(user_id)
            .await?
            .iter()
            .any(|p| trusted(&p.domain_id)))
    }

    /// Who `token` is on `cluster`, and the audiences to answer with. A good token is
    /// good for the calling cluster's API server itself: its audience is returned only
    /// when the API server names it in `spec.audiences`; otherwise none is, which the API
    /// server reads as its own (implicit) audiences. So a review on behalf of someone
    /// else (`spec.audiences` naming, say, a vault) finds no audience in common and
    /// fails, and a cluster token is never good for anything but its cluster.
    pub async fn review_token(
        &self,
        cluster: &Cluster,
        token: PresentedToken,
        audiences: &[String],
    ) -> Result<(KubeUser, Vec<String>), TokenRejected> {
        let (user, domain, project) = match token {
            PresentedToken::ClusterToken(claims) => self.cluster_token_subject(&claims).await?,
            PresentedToken::Other(raw) => self.keystone_token_subject(cluster, &raw).await?,
        };
        if !self
            .cluster_admits(cluster, &user.id, project.as_ref().map(|p| p.id.as_str()))
            .await?
        {
            return Err(TokenRejected::Invalid(
                "this cluster does not admit the token's user or project: it takes people \
                 holding a role in its own domain or a domain it trusts"
                    .into(),
            ));
        }
        let person = self
            .kube_user(cluster, &user, &domain, project.as_ref())
            .await?;
        let granted = if audiences.contains(&cluster.audience) {
            vec![cluster.audience.clone()]
        } else {
            Vec::new()
        };
        Ok((person, granted))
    }

    async fn cluster_token_subject(
        &self,
        claims: &Value,
    ) -> Result<(User, Domain, Option<ProjectScope>), TokenRejected> {
        let sub = claims["sub"].as_str().unwrap_or_default();
        let Some(user) = self.oauth().usable_user(sub).await? else {
            return Err(TokenRejected::Invalid(
                "the token's user is disabled or gone".into(),
            ));
        };
        let from = serde_json::from_value::<ExchangedFrom>(claims["limen_from"].clone());
        let alive = match from {
            Ok(from) => self
                .oauth()
                .exchanged_from_alive(&from, &user.id)
                .await
                .map_err(|e| match e {
                    OAuthError::TemporarilyUnavailable(_) => TokenRejected::Unavailable,
                    other => TokenRejected::Invalid(other.to_string()),
                })?,
            Err(_) => false,
        };
        if !alive {
            return Err(TokenRejected::Invalid(
                "the login or token the cluster token was exchanged from has ended".into(),
            ));
        }
        let domain = self.resource().get_domain(&user.domain_id).await?;
        let project = match claims["limen"]["project"]["id"].as_str() {
            None => None,
            Some(pid) => {
                // The token's roles that the user still holds now: one removed since the
                // exchange no longer counts, and an application credential's subset of
                // the user's roles stays a subset.
                let claimed: Vec<&str> = claims["limen"]["roles"]
                    .as_array()
                    .map(|r| r.iter().filter_map(Value::as_str).collect())
                    .unwrap_or_default();
                let project = self.resource().get_project(pid).await?;
                if !project.enabled {
                    return Err(TokenRejected::Invalid(
                        "the token's project is disabled".into(),
                    ));
                }
                let roles: Vec<_> = self
                    .assignment()
                    .effective_roles(&user.id, &Target::Project(project.id.clone()))
                    .await?
                    .into_iter()
                    .filter(|r| claimed.contains(&r.name.as_str()))
                    .collect();
                if roles.is_empty() {
                    return Err(TokenRejected::Invalid(
                        "the user no longer holds a role on the token's project".into(),
                    ));
                }
                Some(ProjectScope {
                    id: project.id,
                    name: project.name,
                    roles: roles.into_iter().map(|r| r.name).collect(),
                })
            }
        };
        Ok((user, domain, project))
    }

    /// A token that is not a cluster token: an application credential
    /// (`<id>:<secret>`) or a Keystone token, where the cluster takes them.
    async fn keystone_token_subject(
        &self,
        cluster: &Cluster,
        raw: &str,
    ) -> Result<(User, Domain, Option<ProjectScope>), TokenRejected> {
        let credential = raw
            .split_once(':')
            .filter(|(id, secret)| !id.is_empty() && !secret.is_empty());
        let info = match credential {
            Some((id, secret)) if cluster.accept_application_credentials => {
                match self.oauth().application_credential_login(id, secret).await {
                    // Access rules limit a credential on Limen as well: presenting it to
                    // a cluster is a token review.
                    Ok(info) if !info.allows_request(TOKEN_REVIEW_REQUEST) => {
                        return Err(TokenRejected::Invalid(
                            "the application credential's access rules do not allow \
                             Kubernetes logins (an identity rule for POST \
                             /kubernetes/tokenreview)"
                                .into(),
                        ))
                    }
                    Ok(info) => std::sync::Arc::new(info),
                    Err(CoreError::Internal(m)) => return Err(CoreError::Internal(m).into()),
                    Err(e @ CoreError::TooManyAttempts { .. }) => {
                        return Err(TokenRejected::Invalid(e.to_string()))
                    }
                    Err(_) => {
                        return Err(TokenRejected::Invalid(
                            "not a valid application credential (unknown, wrong secret, \
                             expired, or its user disabled)"
                                .into(),
                        ))
                    }
                }
            }
            _ if cluster.accept_keystone_tokens => {
                match self.token().validate_token(raw, false).await {
                    Ok(i) => i,
                    Err(CoreError::Internal(m)) => return Err(CoreError::Internal(m).into()),
                    Err(_) => {
                        return Err(TokenRejected::Invalid(
                            "neither a valid cluster token nor a valid Keystone token".into(),
                        ))
                    }
                }
            }
            _ => {
                return Err(TokenRejected::Invalid(
                    "not a valid Limen token for this cluster (a cluster token from the token \
                     exchange, unexpired, with this cluster's audience)"
                        .into(),
                ))
            }
        };
        let project = match &info.scope {
            ResolvedScope::Project { project, .. } => Some(ProjectScope {
                id: project.id.clone(),
                name: project.name.clone(),
                roles: info.roles.iter().map(|r| r.name.clone()).collect(),
            }),
            _ => None,
        };
        Ok((info.user.clone(), info.user_domain.clone(), project))
    }

    /// The Kubernetes user of `user` on `cluster`, with groups read now.
    async fn kube_user(
        &self,
        cluster: &Cluster,
        user: &User,
        domain: &Domain,
        project: Option<&ProjectScope>,
    ) -> Result<KubeUser, TokenRejected> {
        let username = fill_username(
            &self.config.kubernetes.username_template,
            &[
                ("{user_name}", &name_part(&user.name)),
                ("{user_id}", &user.id),
                ("{domain_name}", &name_part(&domain.name)),
                ("{domain_id}", &domain.id),
            ],
        );
        let mut groups: Vec<String> = self
            .identity()
            .qualified_group_names(&user.id, domain)
            .await?
            .into_iter()
            .map(|g| format!("{GROUP_PREFIX}{g}"))
            .collect();
        let mut extra = BTreeMap::new();
        extra.insert(EXTRA_DOMAIN_ID.to_string(), vec![domain.id.clone()]);
        extra.insert(EXTRA_DOMAIN_NAME.to_string(), vec![domain.name.clone()]);
        if let Some(p) = project {
            groups.push(format!("limen:project:{}", p.id));
            for r in &p.roles {
                groups.push(format!("limen:project:{}:{r}", p.id));
            }
            extra.insert(EXTRA_PROJECT_ID.to_string(), vec![p.id.clone()]);
            extra.insert(EXTRA_PROJECT_NAME.to_string(), vec![p.name.clone()]);
            extra.insert(EXTRA_ROLES.to_string(), p.roles.clone());
            for m in cluster
                .role_mappings
                .iter()
                .filter(|m| p.roles.contains(&m.role))
            {
                groups.extend(m.groups.iter().cloned());
            }
        }
        if let Some(reserved) = std::iter::once(&username)
            .chain(&groups)
            .find(|n| n.starts_with("system:"))
        {
            return Err(TokenRejected::Invalid(format!(
                "the name {reserved:?} would fall under Kubernetes' reserved system: prefix"
            )));
        }
        Ok(KubeUser {
            username,
            uid: user.id.clone(),
            groups,
            extra,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::qualified_name;

    #[test]
    fn qualified_names_cannot_collide() {
        assert_eq!(qualified_name("Default", "alice"), "Default/alice");
        assert_ne!(qualified_name("a/b", "c"), qualified_name("a", "b/c"));
        assert_eq!(qualified_name("a/b", "c"), "a%2Fb/c");
        assert_eq!(qualified_name("100%", "x"), "100%25/x");
    }

    #[test]
    fn username_templates_name_someone_with_known_placeholders() {
        assert!(check_username_template(DEFAULT_USERNAME_TEMPLATE).is_ok());
        assert!(check_username_template("limen:{user_id}").is_ok());
        assert!(check_username_template("{domain_name}").is_err());
        assert!(check_username_template("{user}").is_err());
        assert!(check_username_template("system:{user_id}").is_err());
    }

    /// Placeholders in names are text: a domain named `{domain_id}` does not take the
    /// name of a domain whose name is that id, nor a user named `{domain_name}` another's.
    #[test]
    fn names_that_look_like_placeholders_stay_text() {
        let fill = |user: &str, domain_name: &str, domain_id: &str| {
            fill_username(
                DEFAULT_USERNAME_TEMPLATE,
                &[
                    ("{user_name}", user),
                    ("{user_id}", "uid"),
                    ("{domain_name}", domain_name),
                    ("{domain_id}", domain_id),
                ],
            )
        };
        assert_eq!(fill("alice", "Default", "default"), "limen:Default/alice");
        assert_ne!(
            fill("alice", "{domain_id}", "d1"),
            fill("alice", "d1", "d2")
        );
        assert_eq!(
            fill("alice", "{domain_id}", "d1"),
            "limen:{domain_id}/alice"
        );
        assert_ne!(fill("{domain_name}", "X", "x"), fill("X", "X", "x"));
        assert_eq!(fill("ü{user_id", "D", "d"), "limen:D/ü{user_id");
    }
}
