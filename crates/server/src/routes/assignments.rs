//! `GET /v3/role_assignments`

use crate::authz::{enforce, target};
use crate::error::{ApiError, ApiResult};
use crate::extract::{Auth, Base, Query};
use crate::routes::qs;
use crate::state::AppState;
use axum::extract::State;
use axum::Json;
use limen_core::assignment::{RoleAssignment, RoleAssignmentQuery};
use limen_core::model::{Actor, Target};
use limen_proto::render::{self, NameLookup};
use serde_json::{json, Value};
use std::collections::HashMap;

/// Names for `?include_names`, fetched once per entity.
#[derive(Default)]
struct Names {
    roles: HashMap<String, Value>,
    users: HashMap<String, Value>,
    groups: HashMap<String, Value>,
    projects: HashMap<String, Value>,
    domains: HashMap<String, Value>,
}

impl NameLookup for Names {
    fn role(&self, id: &str) -> Option<Value> {
        self.roles.get(id).cloned()
    }
    fn user(&self, id: &str) -> Option<Value> {
        self.users.get(id).cloned()
    }
    fn group(&self, id: &str) -> Option<Value> {
        self.groups.get(id).cloned()
    }
    fn project(&self, id: &str) -> Option<Value> {
        self.projects.get(id).cloned()
    }
    fn domain(&self, id: &str) -> Option<Value> {
        self.domains.get(id).cloned()
    }
}

async fn domain_ref(s: &AppState, cache: &mut HashMap<String, Value>, id: &str) -> Value {
    if let Some(v) = cache.get(id) {
        return v.clone();
    }
    let v = match s.limen.resource().get_domain(id).await {
        Ok(d) => json!({"id": d.id, "name": d.name}),
        Err(_) => json!({"id": id}),
    };
    cache.insert(id.to_string(), v.clone());
    v
}

async fn load_names(s: &AppState, rows: &[RoleAssignment]) -> Names {
    let mut n = Names::default();
    for r in rows {
        if !n.roles.contains_key(&r.role_id) {
            if let Ok(role) = s.limen.assignment().get_role(&r.role_id).await {
                let mut v = json!({"id": role.id, "name": role.name});
                if let Some(d) = &role.domain_id {
                    v["domain"] = domain_ref(s, &mut n.domains, d).await;
                }
                n.roles.insert(role.id.clone(), v);
            }
        }
        match &r.actor {
            Actor::User(id) if !n.users.contains_key(id) => {
                if let Ok(u) = s.limen.identity().get_user(id).await {
                    let d = domain_ref(s, &mut n.domains, &u.domain_id).await;
                    n.users
                        .insert(id.clone(), json!({"id": u.id, "name": u.name, "domain": d}));
                }
            }
            Actor::Group(id) if !n.groups.contains_key(id) => {
                if let Ok(g) = s.limen.identity().get_group(id).await {
                    let d = domain_ref(s, &mut n.domains, &g.domain_id).await;
                    n.groups
                        .insert(id.clone(), json!({"id": g.id, "name": g.name, "domain": d}));
                }
            }
            _ => {}
        }
        match &r.target {
            Target::Project(id) if !n.projects.contains_key(id) => {
                if let Ok(p) = s.limen.resource().get_project(id).await {
                    let d = domain_ref(s, &mut n.domains, &p.domain_id).await;
                    n.projects
                        .insert(id.clone(), json!({"id": p.id, "name": p.name, "domain": d}));
                }
            }
            Target::Domain(id) => {
                domain_ref(s, &mut n.domains, id).await;
            }
            _ => {}
        }
    }
    n
}

pub async fn list(
    State(s): State<AppState>,
    auth: Auth,
    Base(l): Base,
    q: Query,
) -> ApiResult<Json<Value>> {
    let user_id = q.get("user.id").map(str::to_string);
    let group_id = q.get("group.id").map(str::to_string);
    if user_id.is_some() && group_id.is_some() {
        return Err(ApiError::bad_request("Specify a user or a group, not both"));
    }
    let project_id = q.get("scope.project.id").map(str::to_string);
    let domain_id = q.get("scope.domain.id").map(str::to_string);
    if project_id.is_some() && domain_id.is_some() {
        return Err(ApiError::bad_request(
            "Specify a domain or project, not both",
        ));
    }
    let include_subtree = q.flag("include_subtree")?;
    if include_subtree && project_id.is_none() {
        return Err(ApiError::bad_request(
            "'scope.project.id' is a dependency of 'include_subtree'",
        ));
    }
    let inherited = match q.get("scope.OS-INHERIT:inherited_to") {
        None => false,
        Some("projects") => true,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "Invalid value for scope.OS-INHERIT:inherited_to: {other}"
            )))
        }
    };
    let token_domain = auth.caller.token.domain_scope_id().map(str::to_string);
    let mut t = match &token_domain {
        Some(d) => json!({"domain_id": d}),
        None => json!({}),
    };
    let action = if include_subtree {
        if let Some(p) = &project_id {
            if let Ok(project) = s.limen.resource().get_project(p).await {
                t["project"] = json!({"id": project.id, "domain_id": project.domain_id});
            }
        }
        "identity:list_role_assignments_for_tree"
    } else {
        "identity:list_role_assignments"
    };
    enforce(&s, &auth.caller.token, action, target(t, &[]))?;

    let query = RoleAssignmentQuery {
        user_id,
        group_id,
        role_id: q.get("role.id").map(str::to_string),
        project_id,
        domain_id,
        system: q.has("scope.system"),
        inherited,
        effective: q.flag("effective")?,
        include_subtree,
    };
    let mut rows = s.limen.assignment().list_role_assignments(&query).await?;
    if let Some(d) = &token_domain {
        // A domain-scoped caller sees only its own domain's assignments.
        let mut in_domain: HashMap<String, bool> = HashMap::new();
        let mut kept = Vec::with_capacity(rows.len());
        for r in rows {
            let keep = match &r.target {
                Target::Domain(x) => x == d,
                Target::Project(p) => match in_domain.get(p) {
                    Some(b) => *b,
                    None => {
                        let b = s
                            .limen
                            .resource()
                            .get_project(p)
                            .await
                            .map(|x| &x.domain_id == d)
                            .unwrap_or(false);
                        in_domain.insert(p.clone(), b);
                        b
                    }
                },
                Target::System => false,
            };
            if keep {
                kept.push(r);
            }
        }
        rows = kept;
    }
    let names = if q.flag("include_names")? {
        Some(load_names(&s, &rows).await)
    } else {
        None
    };
    let items = rows
        .iter()
        .map(|r| render::role_assignment(&l, r, names.as_ref().map(|n| n as &dyn NameLookup)))
        .collect();
    Ok(Json(l.collection(
        "role_assignments",
        &format!("role_assignments{}", qs(&q)),
        items,
    )))
}

/// The routes this module serves.
pub(crate) fn routes() -> axum::Router<crate::state::AppState> {
    use axum::routing;
    axum::Router::new().route("/v3/role_assignments", routing::get(list))
}
