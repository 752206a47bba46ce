//! `/v3/groups` and membership.

use crate::authz::{authorize, enforce, target};
use crate::error::ApiResult;
use crate::extract::Path;
use crate::extract::{Auth, Base, JsonBody, Query};
use crate::routes::users::render_users;
use crate::routes::{created, filter_name};
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::Json;
use limen_core::authz::Authorized;
use limen_core::model::{Group, DEFAULT_DOMAIN_ID};
use limen_core::store::GroupFilter;
use limen_core::token::auth::ResolvedScope;
use limen_proto::{input, render};
use serde_json::{json, Value};

fn group_target(g: &Group) -> Value {
    json!({"id": g.id, "name": g.name, "domain_id": g.domain_id})
}

async fn checked_group(
    s: &AppState,
    auth: &Auth,
    id: &str,
    action: &str,
) -> ApiResult<(Group, Authorized)> {
    let g = s.limen.identity().get_group(id).await?;
    let t = json!({"group": group_target(&g)});
    let proof = authorize(s, auth, action, target(t, &[("group_id", id)]))?;
    Ok((g, proof))
}

pub async fn list(
    State(s): State<AppState>,
    auth: Auth,
    Base(l): Base,
    q: Query,
) -> ApiResult<Json<Value>> {
    let token_domain = auth.caller.token.domain_scope_id().map(str::to_string);
    let t = match &token_domain {
        Some(d) => json!({"group": {"domain_id": d}}),
        None => json!({}),
    };
    enforce(
        &s,
        &auth.caller.token,
        "identity:list_groups",
        target(t, &[]),
    )?;
    let Some(domain_id) = crate::routes::listed_domain(token_domain.as_deref(), &q) else {
        return crate::routes::paged(&s, &l, "groups", "groups", &q, vec![]);
    };
    let filter = GroupFilter {
        name: q.get("name").map(str::to_string),
        domain_id,
        ids: None,
    };
    let groups = filter_name(s.limen.identity().list_groups(&filter).await?, &q, |g| {
        &g.name
    })?;
    let items = groups.iter().map(|g| render::group(&l, g)).collect();
    crate::routes::paged(&s, &l, "groups", "groups", &q, items)
}

pub async fn create(
    State(s): State<AppState>,
    auth: Auth,
    Base(l): Base,
    JsonBody(body): JsonBody,
) -> ApiResult<Response> {
    let raw = body.get("group").cloned().unwrap_or(Value::Null);
    let proof = authorize(
        &s,
        &auth,
        "identity:create_group",
        target(json!({"group": raw}), &[]),
    )?;
    let (mut g, domain_id) = input::group_create(body)?;
    g.domain_id = match domain_id {
        Some(d) => d,
        None => match &auth.caller.token.scope {
            ResolvedScope::Domain(d) => d.id.clone(),
            _ => DEFAULT_DOMAIN_ID.to_string(),
        },
    };
    let group = s.limen.identity().create_group(&proof, g).await?;
    Ok(created(json!({"group": render::group(&l, &group)})))
}

pub async fn get(
    State(s): State<AppState>,
    auth: Auth,
    Base(l): Base,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let (g, _) = checked_group(&s, &auth, &id, "identity:get_group").await?;
    Ok(Json(json!({"group": render::group(&l, &g)})))
}

pub async fn update(
    State(s): State<AppState>,
    auth: Auth,
    Base(l): Base,
    Path(id): Path<String>,
    JsonBody(mut body): JsonBody,
) -> ApiResult<Json<Value>> {
    crate::routes::drop_same_id(&mut body, "group", &id);
    let (g, proof) = checked_group(&s, &auth, &id, "identity:update_group").await?;
    if let Some(m) = body.get_mut("group").and_then(Value::as_object_mut) {
        if m.get("domain_id").and_then(Value::as_str) == Some(g.domain_id.as_str()) {
            m.remove("domain_id");
        }
    }
    let patch = input::group_update(body)?;
    let g = s.limen.identity().update_group(&proof, &id, patch).await?;
    Ok(Json(json!({"group": render::group(&l, &g)})))
}

pub async fn delete(
    State(s): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let (_, proof) = checked_group(&s, &auth, &id, "identity:delete_group").await?;
    s.limen.identity().delete_group(&proof, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn users(
    State(s): State<AppState>,
    auth: Auth,
    Base(l): Base,
    Path(id): Path<String>,
    q: Query,
) -> ApiResult<Json<Value>> {
    checked_group(&s, &auth, &id, "identity:list_users_in_group").await?;
    let mut users = s.limen.identity().list_users_in_group(&id).await?;
    // A domain-scoped caller sees only its domain's members, as in Keystone.
    if let Some(d) = auth.caller.token.domain_scope_id() {
        users.retain(|u| u.domain_id == d);
    }
    if let Some(e) = q.bool("enabled")? {
        users.retain(|u| u.enabled == e);
    }
    let users = filter_name(users, &q, |u| &u.name)?;
    let items = render_users(&s, &l, &users).await?;
    crate::routes::paged(&s, &l, "users", &format!("groups/{id}/users"), &q, items)
}

/// Membership checks need both the group and the user in the target.
async fn membership_target(
    s: &AppState,
    auth: &Auth,
    gid: &str,
    uid: &str,
    action: &str,
) -> ApiResult<Authorized> {
    let g = s.limen.identity().get_group(gid).await?;
    let u = s.limen.identity().get_user(uid).await?;
    let t = json!({
        "group": group_target(&g),
        "user": {"id": u.id, "domain_id": u.domain_id},
    });
    authorize(
        s,
        auth,
        action,
        target(t, &[("group_id", gid), ("user_id", uid)]),
    )
}

pub async fn add_member(
    State(s): State<AppState>,
    auth: Auth,
    Path((gid, uid)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let proof = membership_target(&s, &auth, &gid, &uid, "identity:add_user_to_group").await?;
    s.limen
        .identity()
        .add_user_to_group(&proof, &gid, &uid)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn check_member(
    State(s): State<AppState>,
    auth: Auth,
    Path((gid, uid)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    membership_target(&s, &auth, &gid, &uid, "identity:check_user_in_group").await?;
    s.limen.identity().check_user_in_group(&gid, &uid).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn remove_member(
    State(s): State<AppState>,
    auth: Auth,
    Path((gid, uid)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let proof = membership_target(&s, &auth, &gid, &uid, "identity:remove_user_from_group").await?;
    s.limen
        .identity()
        .remove_user_from_group(&proof, &gid, &uid)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The routes this module serves.
pub(crate) fn routes() -> axum::Router<crate::state::AppState> {
    use axum::routing;
    axum::Router::new()
        .route("/v3/groups", routing::get(list).post(create))
        .route(
            "/v3/groups/{group_id}",
            routing::get(get).patch(update).delete(delete),
        )
        .route("/v3/groups/{group_id}/users", routing::get(users))
        .route(
            "/v3/groups/{group_id}/users/{user_id}",
            routing::put(add_member)
                .get(check_member)
                .delete(remove_member),
        )
}
