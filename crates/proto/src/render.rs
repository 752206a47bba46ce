//! Rendering entities exactly as Keystone does: known fields, `links`, and the free-form
//! `extra` attributes merged in.

use crate::times::{iso, iso_z};
use limen_core::assignment::RoleAssignment;
use limen_core::catalog::CatalogEntry;
use limen_core::clock::whole_seconds;
use limen_core::model::*;
use limen_core::token::auth::{ResolvedScope, TokenInfo};
use serde_json::{json, Map, Value};
use time::OffsetDateTime;

/// Builds links against the API's base URL (for example `http://host:5000/v3`).
#[derive(Debug, Clone)]
pub struct Links {
    pub base: String,
}

impl Links {
    pub fn new(base: impl Into<String>) -> Self {
        Links {
            base: base.into().trim_end_matches('/').to_string(),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}/{}", self.base, path.trim_start_matches('/'))
    }

    pub fn self_link(&self, path: &str) -> Value {
        json!({ "self": self.url(path) })
    }

    /// A collection: `{key: items, "links": {self, previous, next}}`.
    pub fn collection(&self, key: &str, path_and_query: &str, items: Vec<Value>) -> Value {
        json!({
            key: items,
            "links": {"self": self.url(path_and_query), "previous": null, "next": null},
        })
    }
}

fn with_extra(mut obj: Map<String, Value>, extra: &Extra) -> Value {
    for (k, v) in extra {
        obj.entry(k.clone()).or_insert_with(|| v.clone());
    }
    Value::Object(obj)
}

fn obj(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

pub fn domain(l: &Links, d: &Domain) -> Value {
    with_extra(
        obj(json!({
            "id": d.id,
            "name": d.name,
            "description": d.description,
            "enabled": d.enabled,
            "tags": d.tags,
            "options": d.options,
            "links": l.self_link(&format!("domains/{}", d.id)),
        })),
        &d.extra,
    )
}

pub fn project(l: &Links, p: &Project) -> Value {
    with_extra(
        obj(json!({
            "id": p.id,
            "name": p.name,
            "domain_id": p.domain_id,
            "description": p.description,
            "enabled": p.enabled,
            "parent_id": p.parent_id,
            "is_domain": false,
            "tags": p.tags,
            "options": p.options,
            "links": l.self_link(&format!("projects/{}", p.id)),
        })),
        &p.extra,
    )
}

/// A domain shown through the projects API (`is_domain: true`).
pub fn domain_as_project(l: &Links, d: &Domain) -> Value {
    with_extra(
        obj(json!({
            "id": d.id,
            "name": d.name,
            "domain_id": null,
            "description": d.description,
            "enabled": d.enabled,
            "parent_id": null,
            "is_domain": true,
            "tags": d.tags,
            "options": d.options,
            "links": l.self_link(&format!("projects/{}", d.id)),
        })),
        &d.extra,
    )
}

pub fn user(l: &Links, u: &User, password_expires_at: Option<OffsetDateTime>) -> Value {
    let mut m = obj(json!({
        "id": u.id,
        "name": u.name,
        "domain_id": u.domain_id,
        "enabled": u.enabled,
        "password_expires_at": password_expires_at.map(iso),
        "options": u.options,
        "links": l.self_link(&format!("users/{}", u.id)),
    }));
    if let Some(dp) = &u.default_project_id {
        m.insert("default_project_id".into(), json!(dp));
    }
    with_extra(m, &u.extra)
}

pub fn group(l: &Links, g: &Group) -> Value {
    with_extra(
        obj(json!({
            "id": g.id,
            "name": g.name,
            "domain_id": g.domain_id,
            "description": g.description,
            "links": l.self_link(&format!("groups/{}", g.id)),
        })),
        &g.extra,
    )
}

pub fn role(l: &Links, r: &Role) -> Value {
    with_extra(
        obj(json!({
            "id": r.id,
            "name": r.name,
            "domain_id": r.domain_id,
            "description": r.description,
            "options": r.options,
            "links": l.self_link(&format!("roles/{}", r.id)),
        })),
        &r.extra,
    )
}

/// The short role form implied-role documents use.
pub fn role_ref(l: &Links, r: &Role) -> Value {
    json!({
        "id": r.id,
        "name": r.name,
        "links": l.self_link(&format!("roles/{}", r.id)),
    })
}

pub fn implied_role(l: &Links, prior: &Role, implied: &[Role]) -> Value {
    json!({
        "prior_role": role_ref(l, prior),
        "implies": implied.iter().map(|r| role_ref(l, r)).collect::<Vec<_>>(),
    })
}

pub fn region(l: &Links, r: &Region) -> Value {
    with_extra(
        obj(json!({
            "id": r.id,
            "description": r.description,
            "parent_region_id": r.parent_region_id,
            "links": l.self_link(&format!("regions/{}", r.id)),
        })),
        &r.extra,
    )
}

pub fn service(l: &Links, s: &Service) -> Value {
    with_extra(
        obj(json!({
            "id": s.id,
            "type": s.service_type,
            "enabled": s.enabled,
            "links": l.self_link(&format!("services/{}", s.id)),
        })),
        &s.extra,
    )
}

pub fn endpoint(l: &Links, e: &Endpoint) -> Value {
    with_extra(
        obj(json!({
            "id": e.id,
            "interface": e.interface.as_str(),
            "region_id": e.region_id,
            "region": e.region_id,
            "service_id": e.service_id,
            "url": e.url,
            "enabled": e.enabled,
            "links": l.self_link(&format!("endpoints/{}", e.id)),
        })),
        &e.extra,
    )
}

/// Fills Keystone's `$(project_id)s` / `$(tenant_id)s` in an endpoint URL; `None` when the
/// URL needs a project and the token has none (such endpoints are left out).
fn substitute(url: &str, project_id: Option<&str>) -> Option<String> {
    let needs = url.contains("$(project_id)s") || url.contains("$(tenant_id)s");
    match (needs, project_id) {
        (false, _) => Some(url.to_string()),
        (true, Some(p)) => Some(url.replace("$(project_id)s", p).replace("$(tenant_id)s", p)),
        (true, None) => None,
    }
}

/// The service catalog; `project_id` fills URL templates (project-scoped tokens).
pub fn credential(l: &Links, c: &limen_core::delegation::credential::Credential) -> Value {
    with_extra(
        obj(json!({
            "id": c.id,
            "user_id": c.user_id,
            "project_id": c.project_id,
            "type": c.cred_type,
            "blob": c.blob,
            "links": l.self_link(&format!("credentials/{}", c.id)),
        })),
        &c.extra,
    )
}

/// An EC2 credential as `OS-EC2` shows it.
pub fn ec2_credential(l: &Links, c: &limen_core::delegation::credential::Credential) -> Value {
    let (access, secret) = limen_core::delegation::credential::ec2_keys(c);
    json!({
        "user_id": c.user_id,
        "tenant_id": c.project_id,
        "access": access,
        "secret": secret,
        "trust_id": null,
        "links": l.self_link(&format!("users/{}/credentials/OS-EC2/{access}", c.user_id)),
    })
}

/// A trust; `roles` is `Some` for the full document, `None` in lists.
pub fn trust(l: &Links, t: &Trust, roles: Option<&[Role]>) -> Value {
    let mut m = obj(json!({
        "id": t.id,
        "trustor_user_id": t.trustor_user_id,
        "trustee_user_id": t.trustee_user_id,
        "project_id": t.project_id,
        "impersonation": t.impersonation,
        "expires_at": t.expires_at.map(iso_z),
        "remaining_uses": t.remaining_uses,
        "deleted_at": null,
        "redelegated_trust_id": t.redelegated_trust_id,
        "redelegation_count": t.redelegation_count,
        "links": l.self_link(&format!("OS-TRUST/trusts/{}", t.id)),
    }));
    if let Some(roles) = roles {
        m.insert(
            "roles".into(),
            Value::Array(roles.iter().map(|r| role(l, r)).collect()),
        );
        m.insert(
            "roles_links".into(),
            json!({"self": l.url(&format!("OS-TRUST/trusts/{}/roles", t.id)), "next": null, "previous": null}),
        );
    }
    with_extra(m, &t.extra)
}

pub fn access_rule(l: &Links, r: &AccessRule) -> Value {
    json!({
        "id": r.id,
        "service": r.service,
        "path": r.path,
        "method": r.method,
        "links": l.self_link(&format!("users/{}/access_rules/{}", r.user_id, r.id)),
    })
}

/// An application credential; the secret only appears in the creation response.
pub fn application_credential(
    l: &Links,
    c: &ApplicationCredential,
    roles: &[Role],
    rules: &[AccessRule],
    secret: Option<&str>,
) -> Value {
    let mut m = obj(json!({
        "id": c.id,
        "name": c.name,
        "description": c.description,
        "user_id": c.user_id,
        "project_id": c.project_id,
        "system": null,
        "expires_at": c.expires_at.map(iso),
        "unrestricted": c.unrestricted,
        "roles": roles.iter().map(|r| json!({"id": r.id, "name": r.name, "domain_id": r.domain_id, "description": r.description, "options": r.options})).collect::<Vec<_>>(),
        "access_rules": rules.iter().map(|r| json!({"id": r.id, "service": r.service, "path": r.path, "method": r.method})).collect::<Vec<_>>(),
        "links": l.self_link(&format!("application_credentials/{}", c.id)),
    }));
    if let Some(s) = secret {
        m.insert("secret".into(), json!(s));
    }
    Value::Object(m)
}

pub fn catalog(entries: &[CatalogEntry], project_id: Option<&str>) -> Value {
    Value::Array(
        entries
            .iter()
            .map(|c| {
                json!({
                    "endpoints": c.endpoints.iter().filter_map(|e| Some(json!({
                        "id": e.id,
                        "interface": e.interface.as_str(),
                        "region_id": e.region_id,
                        "url": substitute(&e.url, project_id)?,
                        "region": e.region_id,
                    }))).collect::<Vec<_>>(),
                    "id": c.service.id,
                    "type": c.service.service_type,
                    "name": c.service.name().unwrap_or(""),
                })
            })
            .collect(),
    )
}

/// The `token` document of `POST`/`GET /v3/auth/tokens`. `catalog` is `None` for
/// `?nocatalog` and for unscoped tokens.
pub fn token(t: &TokenInfo, catalog_entries: Option<&[CatalogEntry]>) -> Value {
    let p = &t.payload;
    let mut m = obj(json!({
        "methods": p.methods,
        "user": {
            "domain": {"id": t.user_domain.id, "name": t.user_domain.name},
            "id": t.user.id,
            "name": t.user.name,
            "password_expires_at": t.password_expires_at.map(iso),
        },
        "audit_ids": p.audit_ids,
        // Keystone renders token times to the second, whatever the payload holds.
        "expires_at": iso_z(whole_seconds(p.expires_at)),
        "issued_at": iso_z(whole_seconds(p.issued_at)),
    }));
    let scoped = match &t.scope {
        ResolvedScope::Unscoped => false,
        ResolvedScope::Project { project, domain } => {
            m.insert(
                "project".into(),
                json!({"domain": {"id": domain.id, "name": domain.name}, "id": project.id, "name": project.name}),
            );
            m.insert("is_domain".into(), json!(false));
            true
        }
        ResolvedScope::Domain(d) => {
            m.insert("domain".into(), json!({"id": d.id, "name": d.name}));
            true
        }
        ResolvedScope::System => {
            m.insert("system".into(), json!({"all": true}));
            true
        }
    };
    if let Some(tr) = &t.trust {
        m.insert(
            "OS-TRUST:trust".into(),
            json!({
                "id": tr.id,
                "trustor_user": {"id": tr.trustor_user_id},
                "trustee_user": {"id": tr.trustee_user_id},
                "impersonation": tr.impersonation,
            }),
        );
    }
    if let Some(ac) = &t.application_credential {
        let mut a = obj(json!({"id": ac.id, "name": ac.name, "restricted": !ac.unrestricted}));
        if !ac.access_rules.is_empty() {
            a.insert(
                "access_rules".into(),
                Value::Array(
                    ac.access_rules
                        .iter()
                        .map(|r| json!({"id": r.id, "service": r.service, "path": r.path, "method": r.method}))
                        .collect(),
                ),
            );
        }
        m.insert("application_credential".into(), Value::Object(a));
    }
    if scoped {
        m.insert(
            "roles".into(),
            Value::Array(
                t.roles
                    .iter()
                    .map(|r| json!({"id": r.id, "name": r.name}))
                    .collect(),
            ),
        );
        if let Some(c) = catalog_entries {
            m.insert("catalog".into(), catalog(c, t.project_id()));
        }
    }
    if let Some(o) = &t.oauth1 {
        m.insert(
            "OS-OAUTH1".into(),
            json!({"access_token_id": o.access_token_id, "consumer_id": o.consumer_id}),
        );
    }
    json!({ "token": Value::Object(m) })
}

/// The body of a 401 that asks for more MFA methods.
pub fn auth_receipt(r: &limen_core::token::auth::AuthReceipt) -> Value {
    json!({
        "receipt": {
            "methods": r.payload.methods,
            "user": {
                "id": r.user.id,
                "name": r.user.name,
                "domain": {"id": r.user_domain.id, "name": r.user_domain.name},
            },
            "expires_at": iso_z(r.payload.expires_at),
            "issued_at": iso_z(r.payload.issued_at),
        },
        "required_auth_methods": r.required,
    })
}

/// Names looked up for `?include_names`.
pub trait NameLookup {
    fn role(&self, id: &str) -> Option<Value>;
    fn user(&self, id: &str) -> Option<Value>;
    fn group(&self, id: &str) -> Option<Value>;
    fn project(&self, id: &str) -> Option<Value>;
    fn domain(&self, id: &str) -> Option<Value>;
}

fn actor_path(a: &Actor) -> (&'static str, &str) {
    match a {
        Actor::User(id) => ("users", id),
        Actor::Group(id) => ("groups", id),
    }
}

/// The `assignment` link of a stored assignment, as Keystone builds it.
fn assignment_link(l: &Links, a: &Assignment) -> String {
    let (actor_kind, actor_id) = actor_path(&a.actor);
    let (target_kind, target_id) = match &a.target {
        Target::Project(p) => ("projects", p.as_str()),
        Target::Domain(d) => ("domains", d.as_str()),
        Target::System => ("system", ""),
    };
    if a.target == Target::System {
        return l.url(&format!(
            "system/{actor_kind}/{actor_id}/roles/{}",
            a.role_id
        ));
    }
    if a.inherited {
        l.url(&format!(
            "OS-INHERIT/{target_kind}/{target_id}/{actor_kind}/{actor_id}/roles/{}/inherited_to_projects",
            a.role_id
        ))
    } else {
        l.url(&format!(
            "{target_kind}/{target_id}/{actor_kind}/{actor_id}/roles/{}",
            a.role_id
        ))
    }
}

pub fn role_assignment(l: &Links, r: &RoleAssignment, names: Option<&dyn NameLookup>) -> Value {
    let mut m = Map::new();
    let role = names
        .and_then(|n| n.role(&r.role_id))
        .unwrap_or_else(|| json!({"id": r.role_id}));
    m.insert("role".into(), role);
    match &r.actor {
        Actor::User(id) => {
            m.insert(
                "user".into(),
                names
                    .and_then(|n| n.user(id))
                    .unwrap_or_else(|| json!({"id": id})),
            );
        }
        Actor::Group(id) => {
            m.insert(
                "group".into(),
                names
                    .and_then(|n| n.group(id))
                    .unwrap_or_else(|| json!({"id": id})),
            );
        }
    }
    let mut scope = match &r.target {
        Target::Project(p) => obj(json!({
            "project": names.and_then(|n| n.project(p)).unwrap_or_else(|| json!({"id": p}))
        })),
        Target::Domain(d) => obj(json!({
            "domain": names.and_then(|n| n.domain(d)).unwrap_or_else(|| json!({"id": d}))
        })),
        Target::System => obj(json!({"system": {"all": true}})),
    };
    if r.inherited_to_projects {
        scope.insert("OS-INHERIT:inherited_to".into(), json!("projects"));
    }
    m.insert("scope".into(), Value::Object(scope));
    let mut links = obj(json!({"assignment": assignment_link(l, &r.source)}));
    if let Some(g) = &r.via_group {
        links.insert(
            "membership".into(),
            json!(l.url(&format!("groups/{g}/users/{}", r.actor.id()))),
        );
    }
    if let Some(prior) = &r.prior_role_id {
        links.insert(
            "prior_role".into(),
            json!(l.url(&format!("roles/{prior}/implies/{}", r.role_id))),
        );
    }
    m.insert("links".into(), Value::Object(links));
    Value::Object(m)
}

pub fn revocation_event(e: &RevocationEvent) -> Value {
    let mut m = Map::new();
    let mut put = |k: &str, v: &Option<String>| {
        if let Some(v) = v {
            m.insert(k.into(), json!(v));
        }
    };
    put("user_id", &e.user_id);
    put("project_id", &e.project_id);
    put("domain_id", &e.domain_id);
    put("role_id", &e.role_id);
    put("trust_id", &e.trust_id);
    put("consumer_id", &e.consumer_id);
    put("access_token_id", &e.access_token_id);
    put("audit_id", &e.audit_id);
    put("audit_chain_id", &e.audit_chain_id);
    if let Some(x) = e.expires_at {
        m.insert("expires_at".into(), json!(iso_z(x)));
    }
    m.insert("issued_before".into(), json!(iso_z(e.issued_before)));
    m.insert("revoked_at".into(), json!(iso_z(e.revoked_at)));
    Value::Object(m)
}
