//! `limen cluster …`: Kubernetes clusters registered with Limen, managed on the store
//! directly (as `limen oauth-client` does); the API is `/v3/limen/clusters`.

use crate::error::{CliError, CliResult, Doing};
use clap::Subcommand;
use limen_core::authz::Authorized;
use limen_core::clock::{OsRandom, SystemClock};
use limen_core::kubernetes::cluster::{ClusterPatch, NewCluster};
use limen_server::Config;
use std::path::PathBuf;
use std::sync::Arc;

#[derive(Subcommand)]
pub enum ClusterAction {
    /// Register a cluster; prints its id, audience and webhook token.
    Create {
        /// The cluster's name, unique in its domain.
        #[arg(long)]
        name: String,
        /// The owning domain's id.
        #[arg(long, default_value = "default")]
        domain: String,
        /// The owning project's id (in that domain), if a project owns it.
        #[arg(long)]
        project: Option<String>,
        /// A description.
        #[arg(long)]
        description: Option<String>,
        /// The API server's URL (https).
        #[arg(long, value_name = "URL")]
        api_server: String,
        /// A PEM file with the CA certificates of the API server's serving certificate.
        #[arg(long, value_name = "FILE")]
        ca_file: Option<PathBuf>,
        /// The audience of its cluster tokens, unique across clusters [default: the API
        /// server URL].
        #[arg(long)]
        audience: Option<String>,
        /// Let its TokenReview webhook also take Keystone tokens (they are full-power
        /// tokens handed to the cluster: off by default).
        #[arg(long)]
        accept_keystone_tokens: bool,
        /// Let its TokenReview webhook also take application credentials as bearer tokens
        /// (`<id>:<secret>`, a reusable secret handed to the cluster: off by default).
        #[arg(long)]
        accept_application_credentials: bool,
        /// The OAuth client people log in with (`limen login`): it may then exchange
        /// tokens for this cluster without listing its audience.
        #[arg(long, value_name = "CLIENT_ID")]
        login_client: Option<String>,
        /// An OAuth client of another domain that may exchange tokens for this cluster
        /// (the cluster's own domain's clients need only list its audience); repeatable.
        #[arg(long = "exchange-client", value_name = "CLIENT_ID")]
        exchange_clients: Vec<String>,
        /// Another domain whose people this cluster authenticates without a role in the
        /// cluster's own domain; repeatable.
        #[arg(long = "trust-domain", value_name = "DOMAIN_ID")]
        trusted_domains: Vec<String>,
    },
    /// List clusters: id, domain, name, audience.
    List {
        /// Only this domain's.
        #[arg(long)]
        domain: Option<String>,
    },
    /// Show one cluster (as JSON, without its webhook token).
    Show {
        /// The cluster's id.
        id: String,
    },
    /// Change a cluster.
    Update {
        /// The cluster's id.
        id: String,
        /// A new name.
        #[arg(long)]
        name: Option<String>,
        /// A new description.
        #[arg(long)]
        description: Option<String>,
        /// A new API server URL (https).
        #[arg(long, value_name = "URL")]
        api_server: Option<String>,
        /// A PEM file with the CA certificates (replaces the kept ones).
        #[arg(long, value_name = "FILE")]
        ca_file: Option<PathBuf>,
        /// A new audience: its cluster tokens issued so far stop working.
        #[arg(long)]
        audience: Option<String>,
        /// Whether its TokenReview webhook takes Keystone tokens.
        #[arg(long, value_name = "BOOL")]
        accept_keystone_tokens: Option<bool>,
        /// Whether its TokenReview webhook takes application credentials (`<id>:<secret>`).
        #[arg(long, value_name = "BOOL")]
        accept_application_credentials: Option<bool>,
        /// The OAuth client people log in with; `none` removes it.
        #[arg(long, value_name = "CLIENT_ID|none")]
        login_client: Option<String>,
        /// Replace the OAuth clients of other domains that may exchange tokens for this
        /// cluster (comma-separated ids; an empty value removes them all).
        #[arg(long, value_name = "CLIENT_IDS", value_delimiter = ',')]
        exchange_clients: Option<Vec<String>>,
        /// Replace the other domains whose people this cluster authenticates
        /// (comma-separated ids; an empty value removes them all).
        #[arg(long, value_name = "DOMAIN_IDS", value_delimiter = ',')]
        trusted_domains: Option<Vec<String>>,
        /// Enable (true) or disable (false) it: a disabled cluster's webhook calls fail.
        #[arg(long, value_name = "BOOL")]
        enabled: Option<bool>,
    },
    /// Remove a cluster.
    Delete {
        /// The cluster's id.
        id: String,
    },
    /// Give a cluster a new webhook token (printed once; the old one stops working).
    RotateWebhookToken {
        /// The cluster's id.
        id: String,
    },
    /// Import k8s-keystone-auth's authorization policy (v1 and v2 rules) and, from its sync
    /// config, its role-mappings into the cluster's rules and role mappings, and print
    /// what changes in meaning. Files are JSON or YAML, or the ConfigMaps
    /// k8s-keystone-auth reads (`data.policies`, `data.syncConfig`).
    #[command(
        after_help = "Examples:\n  limen cluster import-keystone-auth prod --policy policy.json --dry-run\n  limen cluster import-keystone-auth prod --policy policy.json --sync-config sync.yaml --replace\n  kubectl -n kube-system get configmap k8s-auth-policy -o yaml > cm.yaml && limen cluster import-keystone-auth prod --policy cm.yaml\n\nNothing imported grants more than k8s-keystone-auth did. Where it granted through one of\nits flaws (a v2 rule without users applies to everyone; v2 ignores subresources; any\nnamespace pattern matches cluster-scoped requests) the narrower reading is imported, and\nthe report says so. What Limen's rules cannot say is left out and reported."
    )]
    ImportKeystoneAuth {
        /// The cluster's name (in --domain) or id.
        cluster: String,
        /// The domain whose cluster the name means (its projects are the ones policies name).
        #[arg(long, default_value = "default")]
        domain: String,
        /// The policy file (--keystone-policy-file), or its ConfigMap.
        #[arg(long, value_name = "FILE")]
        policy: PathBuf,
        /// The sync config (--sync-config-file) with role-mappings, or its ConfigMap; its
        /// role mappings replace the cluster's.
        #[arg(long, value_name = "FILE")]
        sync_config: Option<PathBuf>,
        /// Remove the cluster's rules first.
        #[arg(long)]
        replace: bool,
        /// Only print what would be imported.
        #[arg(long)]
        dry_run: bool,
    },
    /// Print what the cluster's API server needs to trust Limen: the TokenReview
    /// webhook's kubeconfig and flags, or an AuthenticationConfiguration that trusts
    /// Limen's cluster tokens directly (Kubernetes 1.30+); and the SubjectAccessReview
    /// webhook's kubeconfig with an AuthorizationConfiguration. No secret is printed: the
    /// kubeconfigs read the webhook token from a file.
    ApiserverConfig {
        /// The cluster's name (in --domain) or id.
        cluster: String,
        /// The domain whose cluster the name means.
        #[arg(long, default_value = "default")]
        domain: String,
        /// What to print: all (with instructions), or one document, as YAML to save as is.
        #[arg(long, value_enum, default_value = "all")]
        part: ConfigPart,
        /// Limen's URL as the API server reaches it [default: the [oidc] issuer, else
        /// public_url without /v3].
        #[arg(long, value_name = "URL")]
        limen_url: Option<String>,
        /// A PEM file with the CA of Limen's serving certificate, if not a public CA's.
        #[arg(long, value_name = "FILE")]
        limen_ca_file: Option<PathBuf>,
        /// Where the API server's host keeps the webhook token.
        #[arg(
            long,
            value_name = "PATH",
            default_value = "/etc/kubernetes/limen/webhook-token"
        )]
        token_file: String,
    },
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ConfigPart {
    /// Every document below, with instructions.
    All,
    /// The TokenReview webhook's kubeconfig.
    Webhook,
    /// The AuthenticationConfiguration trusting cluster tokens directly.
    Jwt,
    /// The SubjectAccessReview webhook's kubeconfig.
    AuthzWebhook,
    /// The AuthorizationConfiguration asking Limen before RBAC.
    Authz,
}

fn read_pem(path: Option<PathBuf>) -> CliResult<Option<String>> {
    path.map(|p| std::fs::read_to_string(&p).doing(|| format!("cannot read {}", p.display())))
        .transpose()
}

fn print_token(id: &str, token: &str) {
    println!("cluster_id: {id}");
    println!("webhook_token: {token}");
    eprintln!(
        "The webhook token is shown only now; put it in the API server's webhook kubeconfig."
    );
}

pub async fn run(config: &Config, action: ClusterAction) -> CliResult<()> {
    let (limen, _) =
        limen_server::app::open_services(config, Arc::new(SystemClock), Arc::new(OsRandom)).await?;
    match action {
        ClusterAction::Create {
            name,
            domain,
            project,
            description,
            api_server,
            ca_file,
            audience,
            accept_keystone_tokens,
            accept_application_credentials,
            login_client,
            exchange_clients,
            trusted_domains,
        } => {
            let new = NewCluster {
                domain_id: domain,
                project_id: project,
                name,
                description,
                api_server,
                ca_pem: read_pem(ca_file)?,
                audience,
                accept_keystone_tokens,
                accept_application_credentials,
                login_client_id: login_client,
                role_mappings: Vec::new(),
                exchange_clients,
                trusted_domains,
                enabled: true,
            };
            let (c, token) = limen
                .kubernetes()
                .create_cluster(&Authorized::operator_cli("identity:create_cluster"), new)
                .await?;
            println!("audience: {}", c.audience);
            print_token(&c.id, &token);
        }
        ClusterAction::List { domain } => {
            for c in limen.kubernetes().list_clusters(domain.as_deref()).await? {
                println!("{} {} {} {}", c.id, c.domain_id, c.name, c.audience);
            }
        }
        ClusterAction::Show { id } => {
            let c = limen.kubernetes().get_cluster(&id).await?;
            let links =
                limen_proto::render::Links::new(config.public_url.clone().unwrap_or_default());
            let shown = limen_proto::cluster::cluster(&links, &c, None);
            println!(
                "{}",
                serde_json::to_string_pretty(&shown).unwrap_or_default()
            );
        }
        ClusterAction::Update {
            id,
            name,
            description,
            api_server,
            ca_file,
            audience,
            accept_keystone_tokens,
            accept_application_credentials,
            login_client,
            exchange_clients,
            trusted_domains,
            enabled,
        } => {
            let patch = ClusterPatch {
                project_id: None,
                name,
                description: description.map(Some),
                api_server,
                ca_pem: read_pem(ca_file)?.map(Some),
                audience,
                accept_keystone_tokens,
                accept_application_credentials,
                login_client_id: login_client.map(|c| (c != "none").then_some(c)),
                role_mappings: None,
                exchange_clients: exchange_clients.map(non_empty),
                trusted_domains: trusted_domains.map(non_empty),
                enabled,
            };
            let c = limen
                .kubernetes()
                .update_cluster(
                    &Authorized::operator_cli("identity:update_cluster"),
                    &id,
                    patch,
                )
                .await?;
            println!("updated cluster {}", c.id);
        }
        ClusterAction::Delete { id } => {
            limen
                .kubernetes()
                .delete_cluster(&Authorized::operator_cli("identity:delete_cluster"), &id)
                .await?;
            println!("deleted cluster {id}");
        }
        ClusterAction::ImportKeystoneAuth {
            cluster,
            domain,
            policy,
            sync_config,
            replace,
            dry_run,
        } => {
            let c = cluster_by_name_or_id(&limen, &domain, &cluster).await?;
            let rules = keystone_auth_policy(&read_document(&policy)?)?;
            let sync = sync_config
                .map(|p| read_document(&p).and_then(keystone_auth_sync))
                .transpose()?;
            let imported = limen
                .kubernetes()
                .import_keystone_auth(
                    &Authorized::operator_cli("identity:update_cluster"),
                    &c.id,
                    &rules,
                    sync.as_ref(),
                    replace,
                    !dry_run,
                )
                .await?;
            print!(
                "{}",
                import_report(
                    &c,
                    &imported,
                    dry_run,
                    replace,
                    &config.kubernetes.username_template
                )
            );
        }
        ClusterAction::RotateWebhookToken { id } => {
            let (c, token) = limen
                .kubernetes()
                .rotate_cluster_webhook_token(
                    &Authorized::operator_cli("identity:update_cluster"),
                    &id,
                )
                .await?;
            print_token(&c.id, &token);
        }
        ClusterAction::ApiserverConfig {
            cluster,
            domain,
            part,
            limen_url,
            limen_ca_file,
            token_file,
        } => {
            let c = cluster_by_name_or_id(&limen, &domain, &cluster).await?;
            let ca = read_pem(limen_ca_file)?;
            print!(
                "{}",
                apiserver_config(config, &c, part, limen_url, ca.as_deref(), &token_file)?
            );
        }
    }
    Ok(())
}

async fn cluster_by_name_or_id(
    limen: &limen_core::service::Limen,
    domain: &str,
    cluster: &str,
) -> CliResult<limen_core::kubernetes::cluster::Cluster> {
    match limen.kubernetes().get_cluster(cluster).await {
        Ok(c) => Ok(c),
        Err(limen_core::CoreError::NotFound { .. }) => {
            Ok(limen.kubernetes().find_cluster(domain, cluster).await?)
        }
        Err(other) => Err(other.into()),
    }
}

/// A JSON or YAML file as JSON.
fn read_document(path: &PathBuf) -> CliResult<serde_json::Value> {
    let text = std::fs::read_to_string(path).doing(|| format!("cannot read {}", path.display()))?;
    serde_yaml::from_str(&text).doing(|| format!("{} is neither JSON nor YAML", path.display()))
}

/// A ConfigMap's `data.<key>`, parsed, or the document itself.
fn config_map_entry(doc: serde_json::Value, key: &str) -> CliResult<serde_json::Value> {
    if doc["kind"] != "ConfigMap" {
        return Ok(doc);
    }
    let text = doc["data"][key]
        .as_str()
        .ok_or_else(|| CliError::usage(format!("the ConfigMap has no data.{key}")))?;
    serde_yaml::from_str(text).doing(|| format!("the ConfigMap's data.{key} cannot be read"))
}

fn keystone_auth_policy(doc: &serde_json::Value) -> CliResult<Vec<serde_json::Value>> {
    config_map_entry(doc.clone(), "policies")?
        .as_array()
        .cloned()
        .ok_or_else(|| CliError::usage("a k8s-keystone-auth policy is a list of rules"))
}

fn keystone_auth_sync(doc: serde_json::Value) -> CliResult<serde_json::Value> {
    config_map_entry(doc, "syncConfig")
}

/// What `import-keystone-auth` prints: the rules and role mappings, then the report.
fn import_report(
    c: &limen_core::kubernetes::cluster::Cluster,
    imported: &limen_core::kubernetes::keystone_auth::Imported,
    dry_run: bool,
    replace: bool,
    username_template: &str,
) -> String {
    use limen_core::kubernetes::keystone_auth::{renamed_subjects, render_notes};
    let verb = if dry_run { "would import" } else { "imported" };
    let mut out = format!(
        "{verb} {} rules and {} role mappings into cluster {} ({}){}\n",
        imported.rules.len(),
        imported.role_mappings.len(),
        c.name,
        c.id,
        if replace { ", replacing its rules" } else { "" }
    );
    for r in &imported.rules {
        let subjects: Vec<String> = r.subjects.iter().map(|s| s.group()).collect();
        let what = if r.non_resource_paths.is_empty() {
            let mut w = format!(
                "{:?} in namespaces {:?} (API groups {:?})",
                r.resources, r.namespaces, r.api_groups
            );
            if !r.except_resources.is_empty() {
                w.push_str(&format!(" except resources {:?}", r.except_resources));
            }
            if !r.except_namespaces.is_empty() {
                w.push_str(&format!(" except namespaces {:?}", r.except_namespaces));
            }
            w
        } else {
            format!("paths {:?}", r.non_resource_paths)
        };
        out.push_str(&format!(
            "  allow {:?} on {what} for {subjects:?}  [{}]\n",
            r.verbs,
            r.description.as_deref().unwrap_or("")
        ));
    }
    for m in &imported.role_mappings {
        out.push_str(&format!(
            "  role {:?} adds the groups {:?}\n",
            m.role, m.groups
        ));
    }
    out.push_str("What changed in meaning:\n");
    for line in render_notes(&imported.notes) {
        out.push_str(&format!("  {line}\n"));
    }
    let example = username_template
        .replace("{domain_name}", "Default")
        .replace("{user_name}", "alice")
        .replace("{domain_id}", "default")
        .replace("{user_id}", "<user id>");
    for line in renamed_subjects(&example) {
        out.push_str(&format!("  {line}\n"));
    }
    out
}

fn yaml(v: &serde_json::Value) -> CliResult<String> {
    Ok(serde_yaml::to_string(v)?)
}

/// Where the printed instructions put the files on the API server's host.
const AUTHN_KUBECONFIG: &str = "/etc/kubernetes/limen/authn-webhook.kubeconfig";
const AUTHN_CONFIG: &str = "/etc/kubernetes/limen/authentication-config.yaml";
const AUTHZ_KUBECONFIG: &str = "/etc/kubernetes/limen/authz-webhook.kubeconfig";
const AUTHZ_CONFIG: &str = "/etc/kubernetes/limen/authorization-config.yaml";

/// The documents `limen cluster apiserver-config` prints.
fn apiserver_config(
    config: &Config,
    c: &limen_core::kubernetes::cluster::Cluster,
    part: ConfigPart,
    limen_url: Option<String>,
    limen_ca: Option<&str>,
    token_file: &str,
) -> CliResult<String> {
    use limen_proto::kubernetes_config::{
        authentication_config, authorization_config, username_prefix, webhook_kubeconfig,
        ACCESS_REVIEW_PATH, TOKEN_REVIEW_PATH,
    };
    let issuer = config.oidc.issuer.clone();
    let url = limen_url
        .or_else(|| issuer.clone())
        .or_else(|| {
            config
                .public_url
                .as_deref()
                .map(|u| u.trim_end_matches('/').trim_end_matches("/v3").to_string())
        })
        .ok_or_else(|| {
            CliError::usage(
                "Limen's URL is unknown: pass --limen-url (or set [oidc] issuer or public_url)",
            )
        })?;
    let url = url.trim_end_matches('/');
    let template = &config.kubernetes.username_template;
    let authn = yaml(&webhook_kubeconfig(
        url,
        TOKEN_REVIEW_PATH,
        limen_ca,
        token_file,
    ))?;
    let authz_webhook = yaml(&webhook_kubeconfig(
        url,
        ACCESS_REVIEW_PATH,
        limen_ca,
        token_file,
    ))?;
    let authz = yaml(&authorization_config(
        AUTHZ_KUBECONFIG,
        username_prefix(template),
    ))?;
    let jwt = issuer
        .as_deref()
        .map(|i| yaml(&authentication_config(i, limen_ca, c, template)))
        .transpose()?;
    let no_issuer = "Direct JWT trust needs the OpenID Provider: set [oidc] issuer.";
    match part {
        ConfigPart::Webhook => Ok(authn),
        ConfigPart::Jwt => jwt.ok_or_else(|| CliError::usage(no_issuer)),
        ConfigPart::AuthzWebhook => Ok(authz_webhook),
        ConfigPart::Authz => Ok(authz),
        ConfigPart::All => {
            let mut out = format!(
                "# Cluster {name} (audience {aud}). Put the webhook token (from `limen cluster\n\
                 # create` or `rotate-webhook-token`) in {token_file} (mode 0600).\n\
                 #\n\
                 # Authentication, one of two ways:\n\
                 # 1. The TokenReview webhook: save this document as {AUTHN_KUBECONFIG}\n\
                 #    and start kube-apiserver with\n\
                 #      --authentication-token-webhook-config-file={AUTHN_KUBECONFIG}\n\
                 #      --authentication-token-webhook-version=v1\n\
                 #      --authentication-token-webhook-cache-ttl=30s   # how long a change in Limen may take\n\
                 ---\n{authn}",
                name = c.name,
                aud = c.audience,
            );
            match jwt {
                Some(jwt) => out.push_str(&format!(
                    "#\n\
                     # 2. Or trust Limen's cluster tokens directly (Kubernetes 1.30+; v1 from\n\
                     #    1.34): save this document as {AUTHN_CONFIG} and start with\n\
                     #      --authentication-config={AUTHN_CONFIG}\n\
                     #    The API server then checks tokens itself: a disabled user or a removed\n\
                     #    role counts only when the token expires (exchanged_token_lifetime).\n\
                     ---\n{jwt}"
                )),
                None => out.push_str(&format!("#\n# 2. {no_issuer}\n")),
            }
            out.push_str(&format!(
                "#\n\
                 # Authorization by the cluster's Limen rules (before RBAC, so their denies\n\
                 # hold): save this document as {AUTHZ_KUBECONFIG} ...\n\
                 ---\n{authz_webhook}\
                 #\n\
                 # ... and this one as {AUTHZ_CONFIG}, and start with\n\
                 #      --authorization-config={AUTHZ_CONFIG}\n\
                 #    (Kubernetes 1.30+; apiVersion v1beta1 on 1.30 and 1.31).\n\
                 ---\n{authz}"
            ));
            Ok(out)
        }
    }
}

/// A comma-separated list from the command line, without the empty items an empty value
/// (`--exchange-clients ''`, meaning none) leaves.
fn non_empty(ids: Vec<String>) -> Vec<String> {
    ids.into_iter().filter(|id| !id.trim().is_empty()).collect()
}
