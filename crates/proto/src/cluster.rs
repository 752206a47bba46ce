//! Wire format of Limen's Kubernetes clusters (`/v3/limen/clusters`) and their
//! authorization rules (`…/{id}/rules`).

use crate::input::{unwrap, Fields};
use crate::render::Links;
use crate::{Invalid, ProtoResult};
use limen_core::kubernetes::cluster::{Cluster, ClusterPatch, NewCluster, RoleMapping};
use limen_core::kubernetes::rules::{Effect, KubeRule, NewKubeRule, RuleSubject};
use serde_json::{json, Value};

const URL_MAX: usize = 2048;
const PEM_MAX: usize = 65_535;

/// `POST`: the cluster and the domain it names, if any (the route decides the default).
pub fn cluster_create(body: Value) -> ProtoResult<(NewCluster, Option<String>)> {
    let mut f = Fields::new("cluster", unwrap(body, "cluster")?);
    f.required("name")?;
    f.required("api_server")?;
    let new = NewCluster {
        domain_id: String::new(),
        project_id: f.nullable_string("project_id", 64)?.flatten(),
        name: f.name("name", 255)?.unwrap_or_default(),
        description: f.nullable_string("description", 65_535)?.flatten(),
        api_server: f.string("api_server", 1, URL_MAX)?.unwrap_or_default(),
        ca_pem: f.nullable_string("ca_pem", PEM_MAX)?.flatten(),
        audience: f.string("audience", 1, 255)?,
        accept_keystone_tokens: f.boolean("accept_keystone_tokens")?.unwrap_or(false),
        accept_application_credentials: f
            .boolean("accept_application_credentials")?
            .unwrap_or(false),
        login_client_id: f.nullable_string("login_client_id", 64)?.flatten(),
        role_mappings: role_mappings(f.take("role_mappings"))?.unwrap_or_default(),
        exchange_clients: f.strings("exchange_clients", 64)?.unwrap_or_default(),
        trusted_domains: f.strings("trusted_domains", 64)?.unwrap_or_default(),
        enabled: f.boolean("enabled")?.unwrap_or(true),
    };
    let domain_id = f.string("domain_id", 1, 64)?;
    f.closed()?;
    Ok((new, domain_id))
}

/// `PATCH`: what changes. The id, the domain and the webhook token are fixed here.
pub fn cluster_update(body: Value) -> ProtoResult<ClusterPatch> {
    let mut f = Fields::new("cluster", unwrap(body, "cluster")?);
    f.not_empty()?;
    for fixed in ["id", "domain_id", "webhook_token"] {
        f.immutable(fixed, &format!("Cannot change a cluster's {fixed}."))?;
    }
    let patch = ClusterPatch {
        project_id: f.nullable_string("project_id", 64)?,
        name: f.name("name", 255)?,
        description: f.nullable_string("description", 65_535)?,
        api_server: f.string("api_server", 1, URL_MAX)?,
        ca_pem: f.nullable_string("ca_pem", PEM_MAX)?,
        audience: f.string("audience", 1, 255)?,
        accept_keystone_tokens: f.boolean("accept_keystone_tokens")?,
        accept_application_credentials: f.boolean("accept_application_credentials")?,
        login_client_id: f.nullable_string("login_client_id", 64)?,
        role_mappings: role_mappings(f.take("role_mappings"))?,
        exchange_clients: f.strings("exchange_clients", 64)?,
        trusted_domains: f.strings("trusted_domains", 64)?,
        enabled: f.boolean("enabled")?,
    };
    f.closed()?;
    Ok(patch)
}

/// `role_mappings`: `[{"role", "groups": [...]}]`.
fn role_mappings(v: Option<Value>) -> ProtoResult<Option<Vec<RoleMapping>>> {
    let bad = || Invalid("role_mappings must be a list of {\"role\", \"groups\": [...]}".into());
    let Some(v) = v else { return Ok(None) };
    let items = v.as_array().ok_or_else(bad)?;
    items
        .iter()
        .map(|m| {
            let keys = m.as_object().map_or(0, |o| o.len());
            let role = m["role"].as_str().ok_or_else(bad)?;
            let groups = m["groups"]
                .as_array()
                .ok_or_else(bad)?
                .iter()
                .map(|g| g.as_str().map(str::to_string).ok_or_else(bad))
                .collect::<ProtoResult<Vec<_>>>()?;
            if keys != 2 {
                return Err(bad());
            }
            Ok(RoleMapping {
                role: role.to_string(),
                groups,
            })
        })
        .collect::<ProtoResult<Vec<_>>>()
        .map(Some)
}

/// A cluster as the API shows it; `webhook_token` only where it was just made.
pub fn cluster(l: &Links, c: &Cluster, webhook_token: Option<&str>) -> Value {
    let created = time::OffsetDateTime::from_unix_timestamp(c.created_at)
        .map(crate::times::iso_z)
        .unwrap_or_default();
    let mut v = json!({
        "id": c.id,
        "domain_id": c.domain_id,
        "project_id": c.project_id,
        "name": c.name,
        "description": c.description,
        "api_server": c.api_server,
        "ca_pem": c.ca_pem,
        "audience": c.audience,
        "accept_keystone_tokens": c.accept_keystone_tokens,
        "accept_application_credentials": c.accept_application_credentials,
        "login_client_id": c.login_client_id,
        "role_mappings": c.role_mappings,
        "exchange_clients": c.exchange_clients,
        "trusted_domains": c.trusted_domains,
        "enabled": c.enabled,
        "created_at": created,
        "links": l.self_link(&format!("limen/clusters/{}", c.id)),
    });
    if let Some(t) = webhook_token {
        v["webhook_token"] = json!(t);
    }
    v
}

/// What a person's kubeconfig needs to reach a cluster and log in to it
/// (`GET /kubernetes/clusters/{id}`); nothing secret.
pub fn cluster_connection(c: &Cluster, issuer: &str) -> Value {
    json!({"cluster": {
        "id": c.id,
        "name": c.name,
        "domain_id": c.domain_id,
        "project_id": c.project_id,
        "api_server": c.api_server,
        "ca_pem": c.ca_pem,
        "audience": c.audience,
        "issuer": issuer,
        "login_client_id": c.login_client_id,
    }})
}

/// `POST …/rules`: a new rule of a cluster.
pub fn kube_rule_create(body: Value) -> ProtoResult<NewKubeRule> {
    let mut f = Fields::new("rule", unwrap(body, "rule")?);
    f.required("subjects")?;
    f.required("verbs")?;
    let subjects = match f.take("subjects") {
        Some(Value::Array(items)) => items
            .iter()
            .map(rule_subject)
            .collect::<ProtoResult<Vec<_>>>()?,
        _ => return Err(Invalid("subjects must be a list of subjects".into())),
    };
    let effect = match f.string("effect", 1, 16)?.as_deref() {
        None | Some("allow") => Effect::Allow,
        Some("deny") => Effect::Deny,
        Some(other) => {
            return Err(Invalid(format!(
                "Invalid input for field/attribute effect. Value: {other}. It must be allow or \
                 deny."
            )))
        }
    };
    // The core API group is "": a list that may hold empty strings.
    let api_groups = match f.take("api_groups") {
        None => Vec::new(),
        Some(Value::Array(items)) => items
            .iter()
            .map(|g| g.as_str().map(str::to_string))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| Invalid("api_groups must be a list of strings".into()))?,
        Some(_) => return Err(Invalid("api_groups must be a list of strings".into())),
    };
    let new = NewKubeRule {
        description: f.nullable_string("description", 65_535)?.flatten(),
        subjects,
        effect,
        verbs: f.strings("verbs", 64)?.unwrap_or_default(),
        namespaces: f.strings("namespaces", 253)?.unwrap_or_default(),
        api_groups,
        resources: f.strings("resources", 253)?.unwrap_or_default(),
        names: f.strings("names", 253)?.unwrap_or_default(),
        except_namespaces: f.strings("except_namespaces", 253)?.unwrap_or_default(),
        except_resources: f.strings("except_resources", 253)?.unwrap_or_default(),
        non_resource_paths: f
            .strings("non_resource_paths", URL_MAX)?
            .unwrap_or_default(),
    };
    f.closed()?;
    Ok(new)
}

/// `{"project_id", "role"}` or `{"group"}`.
fn rule_subject(v: &Value) -> ProtoResult<RuleSubject> {
    let s = |k: &str| v[k].as_str().filter(|x| !x.is_empty()).map(str::to_string);
    let keys = v.as_object().map(|m| m.len()).unwrap_or(0);
    match (s("project_id"), s("role"), s("group"), keys) {
        (Some(project_id), Some(role), None, 2) => {
            Ok(RuleSubject::ProjectRole { project_id, role })
        }
        (None, None, Some(group), 1) => Ok(RuleSubject::Group(group)),
        _ => Err(Invalid(format!(
            "Invalid subject {v}: it is {{\"project_id\", \"role\"}} or {{\"group\"}}."
        ))),
    }
}

/// A rule as the API shows it.
pub fn kube_rule(l: &Links, r: &KubeRule) -> Value {
    let subjects: Vec<Value> = r
        .subjects
        .iter()
        .map(|s| match s {
            RuleSubject::ProjectRole { project_id, role } => {
                json!({"project_id": project_id, "role": role, "group": s.group()})
            }
            RuleSubject::Group(g) => json!({ "group": g }),
        })
        .collect();
    json!({
        "id": r.id,
        "cluster_id": r.cluster_id,
        "description": r.description,
        "subjects": subjects,
        "effect": match r.effect { Effect::Allow => "allow", Effect::Deny => "deny" },
        "verbs": r.verbs,
        "namespaces": r.namespaces,
        "api_groups": r.api_groups,
        "resources": r.resources,
        "names": r.names,
        "except_namespaces": r.except_namespaces,
        "except_resources": r.except_resources,
        "non_resource_paths": r.non_resource_paths,
        "links": l.self_link(&format!("limen/clusters/{}/rules/{}", r.cluster_id, r.id)),
    })
}
