//! Kubernetes clusters registered with Limen. A cluster belongs to a domain (so a domain
//! manager registers its own domain's clusters), optionally names the project that owns
//! it, and has an audience: the `aud` of the cluster tokens Limen issues for it, unique
//! across clusters so that one cluster's token is worthless on another. Registration
//! yields the webhook token the cluster's API server presents when it calls Limen's
//! TokenReview and SubjectAccessReview webhooks; it is shown once and kept only as a
//! SHA-256 hash (it is 32 random bytes, so a slow hash buys nothing).

use crate::authz::Authorized;
use crate::documents::{DocumentKind, Indexed};
use crate::error::{CoreError, CoreResult};
use crate::kubernetes::KubernetesService;
use crate::oauth::client::GRANT_TOKEN_EXCHANGE;
use base64::Engine;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

const KIND: DocumentKind = DocumentKind::Cluster;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Cluster {
    pub id: String,
    pub domain_id: String,
    /// The project that owns it, if one does (informational: who to ask).
    #[serde(default)]
    pub project_id: Option<String>,
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    /// The API server's URL (`https://…`), as a kubeconfig names it.
    pub api_server: String,
    /// The PEM certificates that sign the API server's serving certificate, if not a
    /// public CA's.
    #[serde(default)]
    pub ca_pem: Option<String>,
    /// The `aud` of its cluster tokens; default its API server URL.
    pub audience: String,
    /// Whether its TokenReview webhook also takes Keystone tokens (full-power tokens sent
    /// to the cluster: off unless the operator wants it).
    #[serde(default)]
    pub accept_keystone_tokens: bool,
    /// Whether its TokenReview webhook also takes Keystone application credentials as
    /// bearer tokens (`<credential id>:<secret>`, for automation without a login; a
    /// reusable secret handed to the cluster: off unless the operator wants it).
    #[serde(default)]
    pub accept_application_credentials: bool,
    /// The OAuth client people log in with for this cluster (`limen login`): it may
    /// exchange tokens for this cluster's audience without listing it, and `limen
    /// kubeconfig` writes it into kubeconfigs.
    #[serde(default)]
    pub login_client_id: Option<String>,
    /// Groups its TokenReview adds for the holders of a role on the token's project
    /// (k8s-keystone-auth's role-mappings).
    #[serde(default)]
    pub role_mappings: Vec<RoleMapping>,
    /// OAuth clients of other domains this cluster lets exchange tokens for its audience
    /// (its own domain's clients need only list the audience; the login client is
    /// always allowed). A cross-domain link only the cluster's side can make.
    #[serde(default)]
    pub exchange_clients: Vec<String>,
    /// Other domains whose people this cluster authenticates without a role in its own
    /// domain (docs/security.md): by default only people holding a role on the
    /// cluster's domain or one of its projects get in.
    #[serde(default)]
    pub trusted_domains: Vec<String>,
    pub enabled: bool,
    /// `sha256:<hex>` of the webhook token's secret half.
    pub webhook_secret_hash: String,
    /// When it was registered (unix seconds).
    pub created_at: i64,
}

impl Indexed for Cluster {
    const KIND: DocumentKind = KIND;
    fn key(&self) -> String {
        self.id.clone()
    }
    fn owner(&self) -> &str {
        &self.domain_id
    }
    /// A name is unique in its domain; an audience everywhere (a token for one cluster
    /// must not work on another).
    fn claims(&self) -> Vec<String> {
        vec![
            format!("name:{}/{}", self.domain_id, self.name),
            format!("audience:{}", self.audience),
        ]
    }
}

/// Groups for the holders of a role: on a cluster, a token whose project the person
/// holds `role` on also names `groups`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoleMapping {
    pub role: String,
    pub groups: Vec<String>,
}

/// What a new cluster is made of.
#[derive(Debug, Clone, Default)]
pub struct NewCluster {
    pub domain_id: String,
    pub project_id: Option<String>,
    pub name: String,
    pub description: Option<String>,
    pub api_server: String,
    pub ca_pem: Option<String>,
    /// Default: the API server URL.
    pub audience: Option<String>,
    pub accept_keystone_tokens: bool,
    pub accept_application_credentials: bool,
    pub login_client_id: Option<String>,
    pub role_mappings: Vec<RoleMapping>,
    pub exchange_clients: Vec<String>,
    pub trusted_domains: Vec<String>,
    pub enabled: bool,
}

/// The fields an update may change (not the domain or the webhook token).
#[derive(Debug, Clone, Default)]
pub struct ClusterPatch {
    pub project_id: Option<Option<String>>,
    pub name: Option<String>,
    pub description: Option<Option<String>>,
    pub api_server: Option<String>,
    pub ca_pem: Option<Option<String>>,
    pub audience: Option<String>,
    pub accept_keystone_tokens: Option<bool>,
    pub accept_application_credentials: Option<bool>,
    pub login_client_id: Option<Option<String>>,
    pub role_mappings: Option<Vec<RoleMapping>>,
    pub exchange_clients: Option<Vec<String>>,
    pub trusted_domains: Option<Vec<String>>,
    pub enabled: Option<bool>,
}

fn hash_secret(secret: &str) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(secret.as_bytes())))
}

/// The webhook token of cluster `id` with secret half `secret`: `<id>.<secret>`, so the
/// cluster is found by id and the secret compared in constant time.
fn webhook_token(id: &str, secret: &str) -> String {
    format!("{id}.{secret}")
}

/// The rules a cluster's settings must meet together.
fn check_cluster(c: &Cluster) -> CoreResult<()> {
    if c.name.trim().is_empty() || c.name.len() > 255 {
        return Err(CoreError::validation(
            "A cluster's name must be 1 to 255 characters.",
        ));
    }
    let host = c
        .api_server
        .strip_prefix("https://")
        .map(|rest| rest.split(['/', '?', '#']).next().unwrap_or(""))
        .unwrap_or("");
    if host.is_empty() || c.api_server.chars().any(char::is_whitespace) {
        return Err(CoreError::validation(format!(
            "Invalid API server URL {:?}: it must be an absolute https URL (kubectl sends \
             credentials over TLS only).",
            c.api_server
        )));
    }
    if c.audience.trim().is_empty()
        || c.audience.len() > 255
        || c.audience.chars().any(char::is_control)
    {
        return Err(CoreError::validation(
            "A cluster's audience must be 1 to 255 printable characters.",
        ));
    }
    for m in &c.role_mappings {
        if m.role.trim().is_empty() || m.groups.is_empty() {
            return Err(CoreError::validation(
                "A role mapping names a role and at least one group.",
            ));
        }
        for g in &m.groups {
            if g.trim().is_empty() || g.len() > 255 {
                return Err(CoreError::validation(
                    "A role mapping's group is 1 to 255 characters.",
                ));
            }
            // system: names belong to Kubernetes (system:masters bypasses every
            // authorizer), limen: names to Limen's own groups.
            if g.starts_with("system:") || g.starts_with("limen:") {
                return Err(CoreError::validation(format!(
                    "A role mapping cannot hand out the group {g:?}: system: and limen: names \
                     are reserved."
                )));
            }
        }
    }
    if let Some(pem) = &c.ca_pem {
        if !pem.trim_start().starts_with("-----BEGIN CERTIFICATE-----") {
            return Err(CoreError::validation(
                "ca_pem must hold PEM certificates (-----BEGIN CERTIFICATE-----).",
            ));
        }
    }
    Ok(())
}

impl KubernetesService<'_> {
    fn new_webhook_secret(&self) -> String {
        let mut b = [0u8; 32];
        self.random.fill(&mut b);
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
    }

    /// The project must be in the cluster's domain; names and audiences must be unique.
    async fn check_cluster_references(&self, c: &Cluster) -> CoreResult<()> {
        if let Some(pid) = &c.project_id {
            let p = self.resource().get_project(pid).await?;
            if p.domain_id != c.domain_id {
                return Err(CoreError::validation(format!(
                    "The project {pid} is not in the cluster's domain {}.",
                    c.domain_id
                )));
            }
        }
        for other in self.list_clusters(None).await? {
            if other.id == c.id {
                continue;
            }
            if other.domain_id == c.domain_id && other.name == c.name {
                return Err(CoreError::conflict(
                    "cluster",
                    format!(
                        "A cluster named {:?} exists in domain {}.",
                        c.name, c.domain_id
                    ),
                ));
            }
            if other.audience == c.audience {
                return Err(CoreError::conflict(
                    "cluster",
                    format!(
                        "The audience {:?} is another cluster's; a token for one would \
                         work on the other.",
                        c.audience
                    ),
                ));
            }
        }
        if self.oauth().is_oauth_client(&c.audience).await? {
            return Err(CoreError::validation(
                "A cluster's audience must not be an OAuth client's id (whose ID tokens \
                 carry it).",
            ));
        }
        if self
            .oauth()
            .issuer()
            .is_ok_and(|issuer| issuer == c.audience)
        {
            return Err(CoreError::validation(
                "A cluster's audience must not be the issuer (the audience of Limen's own \
                 access tokens).",
            ));
        }
        for id in &c.exchange_clients {
            must_exist(
                self.oauth().get_oauth_client(id).await,
                "exchange_clients",
                id,
                "OAuth client",
            )?;
        }
        for id in &c.trusted_domains {
            must_exist(
                self.resource().get_domain(id).await,
                "trusted_domains",
                id,
                "domain",
            )?;
        }
        Ok(())
    }

    /// A cluster's login client must be able to exchange tokens. Checked when it is set,
    /// so that a client removed later does not block other changes to the cluster (the
    /// exchange then simply finds no such client).
    async fn check_login_client(&self, id: &str) -> CoreResult<()> {
        let login = match self.oauth().get_oauth_client(id).await {
            Ok(client) => client,
            Err(CoreError::NotFound { .. }) => {
                return Err(CoreError::validation(format!(
                    "There is no OAuth client {id} to log in with."
                )))
            }
            Err(e) => return Err(e),
        };
        if !login.grant_types.iter().any(|g| g == GRANT_TOKEN_EXCHANGE) {
            return Err(CoreError::validation(format!(
                "The OAuth client {id} cannot log in to clusters: it lacks the grant type \
                 {GRANT_TOKEN_EXCHANGE}."
            )));
        }
        Ok(())
    }

    /// Registers a cluster; returns it and its webhook token (not kept, shown once).
    pub async fn create_cluster(
        &self,
        authz: &Authorized,
        new: NewCluster,
    ) -> CoreResult<(Cluster, String)> {
        authz.require(&["identity:create_cluster"])?;
        self.resource().get_domain(&new.domain_id).await?;
        let secret = self.new_webhook_secret();
        let cluster = Cluster {
            id: self.new_id(),
            domain_id: new.domain_id,
            project_id: new.project_id,
            name: new.name,
            description: new.description,
            audience: new.audience.unwrap_or_else(|| new.api_server.clone()),
            api_server: new.api_server,
            ca_pem: new.ca_pem,
            accept_keystone_tokens: new.accept_keystone_tokens,
            accept_application_credentials: new.accept_application_credentials,
            login_client_id: new.login_client_id,
            role_mappings: new.role_mappings,
            exchange_clients: new.exchange_clients,
            trusted_domains: new.trusted_domains,
            enabled: new.enabled,
            webhook_secret_hash: hash_secret(&secret),
            created_at: self.clock.now().unix_timestamp(),
        };
        check_cluster(&cluster)?;
        self.check_cluster_references(&cluster).await?;
        if let Some(id) = &cluster.login_client_id {
            self.check_login_client(id).await?;
        }
        self.doc_save(&cluster, true).await?;
        let token = webhook_token(&cluster.id, &secret);
        Ok((cluster, token))
    }

    pub async fn get_cluster(&self, id: &str) -> CoreResult<Cluster> {
        self.doc_get(KIND, id)
            .await?
            .ok_or_else(|| CoreError::not_found("cluster", id))
    }

    /// The cluster named `name` in `domain_id`.
    pub async fn find_cluster(&self, domain_id: &str, name: &str) -> CoreResult<Cluster> {
        self.list_clusters(Some(domain_id))
            .await?
            .into_iter()
            .find(|c| c.name == name)
            .ok_or_else(|| CoreError::not_found("cluster", name))
    }

    /// The cluster whose tokens have audience `audience`, and whether it is usable
    /// (enabled, in an enabled domain).
    pub async fn cluster_with_audience(
        &self,
        audience: &str,
    ) -> CoreResult<Option<(Cluster, bool)>> {
        let found = self
            .list_clusters(None)
            .await?
            .into_iter()
            .find(|c| c.audience == audience);
        match found {
            Some(c) => {
                let usable = c.enabled && self.resource().domain_enabled(&c.domain_id).await?;
                Ok(Some((c, usable)))
            }
            None => Ok(None),
        }
    }

    /// Every cluster, or a domain's; by name, then id.
    pub async fn list_clusters(&self, domain_id: Option<&str>) -> CoreResult<Vec<Cluster>> {
        let mut all: Vec<Cluster> = match domain_id {
            Some(d) => self.doc_list_of(d).await?,
            None => self.doc_list(KIND).await?,
        };
        all.sort_by(|a, b| a.name.cmp(&b.name).then_with(|| a.id.cmp(&b.id)));
        Ok(all)
    }

    pub async fn update_cluster(
        &self,
        authz: &Authorized,
        id: &str,
        patch: ClusterPatch,
    ) -> CoreResult<Cluster> {
        authz.require_on(&["identity:update_cluster"], &["cluster"], id)?;
        self.change_cluster(id, patch).await
    }

    /// [`Self::update_cluster`] once authorized, or as part of another write.
    pub(crate) async fn change_cluster(
        &self,
        id: &str,
        patch: ClusterPatch,
    ) -> CoreResult<Cluster> {
        let mut c = self.get_cluster(id).await?;
        if let Some(v) = patch.project_id {
            c.project_id = v;
        }
        if let Some(v) = patch.name {
            c.name = v;
        }
        if let Some(v) = patch.description {
            c.description = v;
        }
        if let Some(v) = patch.api_server {
            c.api_server = v;
        }
        if let Some(v) = patch.ca_pem {
            c.ca_pem = v;
        }
        if let Some(v) = patch.audience {
            c.audience = v;
        }
        if let Some(v) = patch.accept_keystone_tokens {
            c.accept_keystone_tokens = v;
        }
        if let Some(v) = patch.accept_application_credentials {
            c.accept_application_credentials = v;
        }
        if let Some(v) = patch.login_client_id {
            if let Some(id) = &v {
                self.check_login_client(id).await?;
            }
            c.login_client_id = v;
        }
        if let Some(v) = patch.role_mappings {
            c.role_mappings = v;
        }
        if let Some(v) = patch.exchange_clients {
            c.exchange_clients = v;
        }
        if let Some(v) = patch.trusted_domains {
            c.trusted_domains = v;
        }
        if let Some(v) = patch.enabled {
            c.enabled = v;
        }
        check_cluster(&c)?;
        self.check_cluster_references(&c).await?;
        self.doc_save(&c, false).await?;
        Ok(c)
    }

    pub async fn delete_cluster(&self, authz: &Authorized, id: &str) -> CoreResult<()> {
        authz.require_on(&["identity:delete_cluster"], &["cluster"], id)?;
        self.remove_cluster(id).await
    }

    /// [`Self::delete_cluster`] once authorized, or as part of another write.
    pub(crate) async fn remove_cluster(&self, id: &str) -> CoreResult<()> {
        // A cluster goes with its rules, or stays with them.
        self.in_unit(async |unit| {
            if !unit.doc_delete(KIND, id).await? {
                return Err(CoreError::not_found("cluster", id));
            }
            unit.kubernetes().forget_kube_rules_of(id).await
        })
        .await
    }

    /// Removes a deleted domain's clusters (with their rules).
    pub(crate) async fn forget_clusters_of(&self, domain_id: &str) -> CoreResult<()> {
        for c in self.list_clusters(Some(domain_id)).await? {
            self.remove_cluster(&c.id).await?;
        }
        Ok(())
    }

    /// A new webhook token for a cluster (the old one stops working at once).
    pub async fn rotate_cluster_webhook_token(
        &self,
        authz: &Authorized,
        id: &str,
    ) -> CoreResult<(Cluster, String)> {
        authz.require_on(&["identity:update_cluster"], &["cluster"], id)?;
        let mut c = self.get_cluster(id).await?;
        let secret = self.new_webhook_secret();
        c.webhook_secret_hash = hash_secret(&secret);
        self.doc_save(&c, false).await?;
        let token = webhook_token(&c.id, &secret);
        Ok((c, token))
    }

    /// The enabled cluster (in an enabled domain) whose webhook token `token` is; `None`
    /// for anything else, after the same work.
    pub async fn cluster_of_webhook_token(&self, token: &str) -> CoreResult<Option<Cluster>> {
        let (id, secret) = token.split_once('.').unwrap_or(("", token));
        let found = if id.is_empty() {
            None
        } else {
            match self.get_cluster(id).await {
                Ok(c) => Some(c),
                Err(CoreError::NotFound { .. }) => None,
                Err(e) => return Err(e),
            }
        };
        let presented = hash_secret(secret);
        let stored = found
            .as_ref()
            .map_or(STAND_IN_HASH, |c| c.webhook_secret_hash.as_str());
        let matches = bool::from(presented.as_bytes().ct_eq(stored.as_bytes()));
        let Some(cluster) = found.filter(|c| matches && c.enabled) else {
            return Ok(None);
        };
        let enabled = self.resource().domain_enabled(&cluster.domain_id).await?;
        Ok(enabled.then_some(cluster))
    }
}

/// A reference in `field` must name something that exists: a 400 that says which, rather
/// than a 404 that would read as the cluster missing.
fn must_exist<T>(found: CoreResult<T>, field: &str, id: &str, what: &str) -> CoreResult<()> {
    match found {
        Ok(_) => Ok(()),
        Err(CoreError::NotFound { .. }) => Err(CoreError::validation(format!(
            "{field} names {id}, which is no {what}."
        ))),
        Err(e) => Err(e),
    }
}

/// Compared against when no cluster has the id, so an unknown id costs what a wrong
/// secret costs. No secret hashes to it.
const STAND_IN_HASH: &str =
    "sha256:0000000000000000000000000000000000000000000000000000000000000000";

#[cfg(test)]
mod tests {
    use super::*;

    fn cluster(api_server: &str) -> Cluster {
        Cluster {
            name: "prod".into(),
            api_server: api_server.into(),
            audience: "prod".into(),
            ..Cluster::default()
        }
    }

    #[test]
    fn api_servers_are_https_urls() {
        assert!(check_cluster(&cluster("https://k8s.example.com:6443")).is_ok());
        for bad in [
            "http://k8s.example.com",
            "https://",
            "k8s.example.com",
            "https://k8s.example.com/ x",
        ] {
            assert!(check_cluster(&cluster(bad)).is_err(), "{bad}");
        }
        let masters = Cluster {
            role_mappings: vec![RoleMapping {
                role: "admin".into(),
                groups: vec!["system:masters".into()],
            }],
            ..cluster("https://k8s.example.com")
        };
        assert!(check_cluster(&masters).is_err());
        let no_pem = Cluster {
            ca_pem: Some("not a certificate".into()),
            ..cluster("https://k8s.example.com")
        };
        assert!(check_cluster(&no_pem).is_err());
    }

    #[test]
    fn webhook_tokens_name_their_cluster() {
        assert_eq!(webhook_token("c1", "s3cret"), "c1.s3cret");
        assert_ne!(hash_secret("s3cret"), STAND_IN_HASH);
    }
}
