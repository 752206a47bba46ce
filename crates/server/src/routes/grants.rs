//! Role grants: users and groups × projects, domains and the system, including
//! `OS-INHERIT` grants inherited to projects.

use crate::authz::{authorize, enforce, target};
use crate::error::{ApiError, ApiResult};
use crate::extract::Path;
use crate::extract::{Auth, Base};
use crate::state::AppState;
use axum::extract::{OriginalUri, State};
use axum::http::StatusCode;
use axum::Json;
use limen_core::authz::Authorized;
use limen_core::model::{Actor, Assignment, Target};
use limen_proto::render;
use serde_json::{json, Map, Value};

#[derive(Debug, Clone, Copy)]
pub enum ActorKind {
    User,
    Group,
}

#[derive(Debug, Clone, Copy)]
pub enum TargetKind {
    Project,
    Domain,
    System,
}

/// Which grant a route addresses.
#[derive(Debug, Clone, Copy)]
pub struct GrantRoute {
    pub actor: ActorKind,
    pub target: TargetKind,
    pub inherited: bool,
}

enum Op {
    List,
    Check,
    Create,
    Revoke,
}

impl GrantRoute {
    fn action(&self, op: Op) -> String {
        let verb = match op {
            Op::List => "list",
            Op::Check => "check",
            Op::Create => "create",
            Op::Revoke => "revoke",
        };
        match self.target {
            TargetKind::System => {
                let who = match self.actor {
                    ActorKind::User => "user",
                    ActorKind::Group => "group",
                };
                let verb = if verb == "list" { "list" } else { verb };
                let noun = if matches!(op, Op::List) {
                    "grants"
                } else {
                    "grant"
                };
                format!("identity:{verb}_system_{noun}_for_{who}")
            }
            _ => {
                let noun = if matches!(op, Op::List) {
                    "grants"
                } else {
                    "grant"
                };
                format!("identity:{verb}_{noun}")
            }
        }
    }

    /// Splits path parameters into (target id, actor id, role id).
    fn ids(&self, params: &[String]) -> ApiResult<(String, String, Option<String>)> {
        let bad = || ApiError::not_found("Not Found");
        match self.target {
            TargetKind::System => {
                let actor = params.first().ok_or_else(bad)?.clone();
                Ok((String::new(), actor, params.get(1).cloned()))
            }
            _ => {
                let t = params.first().ok_or_else(bad)?.clone();
                let a = params.get(1).ok_or_else(bad)?.clone();
                Ok((t, a, params.get(2).cloned()))
            }
        }
    }

    fn actor(&self, id: &str) -> Actor {
        match self.actor {
            ActorKind::User => Actor::User(id.to_string()),
            ActorKind::Group => Actor::Group(id.to_string()),
        }
    }

    fn target_of(&self, id: &str) -> Target {
        match self.target {
            TargetKind::Project => Target::Project(id.to_string()),
            TargetKind::Domain => Target::Domain(id.to_string()),
            TargetKind::System => Target::System,
        }
    }
}

/// The policy target Keystone builds for grants: the actor, the target and the role as
/// stored (never from the request). Each is looked up first, so an unknown one is a 404.
async fn grant_target(
    s: &AppState,
    r: &GrantRoute,
    target_id: &str,
    actor_id: &str,
    role_id: Option<&str>,
) -> ApiResult<Value> {
    let mut t = Map::new();
    if let Some(rid) = role_id {
        let role = s.limen.assignment().get_role(rid).await?;
        t.insert(
            "role".into(),
            json!({"id": role.id, "name": role.name, "domain_id": role.domain_id}),
        );
    }
    match r.actor {
        ActorKind::User => {
            let u = s.limen.identity().get_user(actor_id).await?;
            t.insert("user".into(), json!({"id": u.id, "domain_id": u.domain_id}));
        }
        ActorKind::Group => {
            let g = s.limen.identity().get_group(actor_id).await?;
            t.insert(
                "group".into(),
                json!({"id": g.id, "domain_id": g.domain_id}),
            );
        }
    }
    match r.target {
        TargetKind::Project => {
            let p = s.limen.resource().get_project(target_id).await?;
            t.insert(
                "project".into(),
                json!({"id": p.id, "domain_id": p.domain_id}),
            );
        }
        TargetKind::Domain => {
            let d = s.limen.resource().get_domain(target_id).await?;
            t.insert("domain".into(), json!({"id": d.id}));
        }
        TargetKind::System => {}
    }
    Ok(target(Value::Object(t), &[]))
}

async fn single(
    s: &AppState,
    auth: &Auth,
    r: GrantRoute,
    params: Vec<String>,
    op: Op,
) -> ApiResult<(Assignment, Authorized)> {
    let (tid, aid, rid) = r.ids(&params)?;
    let rid = rid.ok_or_else(|| ApiError::not_found("Not Found"))?;
    let t = grant_target(s, &r, &tid, &aid, Some(&rid)).await?;
    let proof = authorize(s, auth, &r.action(op), t)?;
    let a = Assignment {
        actor: r.actor(&aid),
        target: r.target_of(&tid),
        role_id: rid,
        inherited: r.inherited,
    };
    Ok((a, proof))
}

pub async fn create(
    r: GrantRoute,
    State(s): State<AppState>,
    auth: Auth,
    Path(params): Path<Vec<String>>,
) -> ApiResult<StatusCode> {
    let (a, proof) = single(&s, &auth, r, params, Op::Create).await?;
    s.limen.assignment().create_grant(&proof, &a).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn check(
    r: GrantRoute,
    State(s): State<AppState>,
    auth: Auth,
    Path(params): Path<Vec<String>>,
) -> ApiResult<StatusCode> {
    let (a, _) = single(&s, &auth, r, params, Op::Check).await?;
    s.limen.assignment().check_grant(&a).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn revoke(
    r: GrantRoute,
    State(s): State<AppState>,
    auth: Auth,
    Path(params): Path<Vec<String>>,
) -> ApiResult<StatusCode> {
    let (a, proof) = single(&s, &auth, r, params, Op::Revoke).await?;
    s.limen.assignment().delete_grant(&proof, &a).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn list(
    r: GrantRoute,
    State(s): State<AppState>,
    auth: Auth,
    Base(l): Base,
    uri: OriginalUri,
    Path(params): Path<Vec<String>>,
) -> ApiResult<Json<Value>> {
    let (tid, aid, _) = r.ids(&params)?;
    let t = grant_target(&s, &r, &tid, &aid, None).await?;
    enforce(&s, &auth.caller.token, &r.action(Op::List), t)?;
    let roles = s
        .limen
        .assignment()
        .list_grants(&r.actor(&aid), &r.target_of(&tid), r.inherited)
        .await?;
    let items = roles.iter().map(|x| render::role(&l, x)).collect();
    let path = uri.0.path().trim_start_matches("/v3/").to_string();
    Ok(Json(l.collection("roles", &path, items)))
}
