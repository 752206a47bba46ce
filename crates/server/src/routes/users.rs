//! `/v3/users`, self-service password change, a user's groups and projects.

use crate::authz::{authorize, enforce, target};
use crate::error::{ApiError, ApiResult};
use crate::extract::Path;
use crate::extract::{limited_login, Auth, Base, ClientAddr, JsonBody, Query};
use crate::routes::{created, filter_name};
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::Json;
use limen_core::authz::Authorized;
use limen_core::identity::NewUser;
use limen_core::model::{User, DEFAULT_DOMAIN_ID};
use limen_core::store::UserFilter;
use limen_core::token::auth::ResolvedScope;
use limen_proto::render::Links;
use limen_proto::{input, render};
use serde_json::{json, Value};

fn user_target(u: &User) -> Value {
    json!({"user": {"id": u.id, "name": u.name, "domain_id": u.domain_id}})
}

pub async fn render_user(s: &AppState, l: &Links, u: &User) -> ApiResult<Value> {
    let exp = s.limen.identity().password_expires_at(&u.id).await?;
    Ok(render::user(l, u, exp))
}

pub async fn render_users(s: &AppState, l: &Links, users: &[User]) -> ApiResult<Vec<Value>> {
    let expiries = s.limen.identity().password_expiries(users).await?;
    Ok(users
        .iter()
        .map(|u| render::user(l, u, expiries.get(&u.id).copied().flatten()))
        .collect())
}

/// A user, with the policy check done against it (a missing user is checked by id and
/// then reported as 404).
async fn checked_user(
    s: &AppState,
    auth: &Auth,
    id: &str,
    action: &str,
) -> ApiResult<(User, Authorized)> {
    let u = s.limen.identity().get_user(id).await?;
    let t = user_target(&u);
    let proof = authorize(s, auth, action, target(t, &[("user_id", id)]))?;
    Ok((u, proof))
}

pub async fn list(
    State(s): State<AppState>,
    auth: Auth,
    Base(l): Base,
    q: Query,
) -> ApiResult<Json<Value>> {
    let token_domain = auth.caller.token.domain_scope_id().map(str::to_string);
    let t = match &token_domain {
        Some(d) => json!({"domain_id": d}),
        None => json!({}),
    };
    enforce(
        &s,
        &auth.caller.token,
        "identity:list_users",
        target(t, &[]),
    )?;
    let Some(domain_id) = crate::routes::listed_domain(token_domain.as_deref(), &q) else {
        return crate::routes::paged(&s, &l, "users", "users", &q, vec![]);
    };
    let mut filter = UserFilter {
        name: q.get("name").map(str::to_string),
        domain_id,
        enabled: q.bool("enabled")?,
        ids: None,
        page: None,
    };
    // A page is cut by the database unless a name pattern has to be applied first.
    let paging = crate::routes::paging(&s, &q)?;
    let patterns = q.pairs.iter().any(|(k, _)| k.starts_with("name__"));
    let (Some(p), false) = (paging, patterns) else {
        let users = filter_name(s.limen.identity().list_users(&filter).await?, &q, |u| {
            &u.name
        })?;
        let items = render_users(&s, &l, &users).await?;
        return crate::routes::paged(&s, &l, "users", "users", &q, items);
    };
    if let Some(m) = &p.marker {
        let marker = s.limen.identity().find_user(m).await?;
        let listed =
            marker.is_some_and(|u| filter.domain_id.as_ref().is_none_or(|d| *d == u.domain_id));
        if !listed {
            return Err(crate::routes::marker_not_found(m));
        }
    }
    filter.page = Some(crate::routes::store_page(&p));
    let (users, truncated) =
        crate::routes::cut_page(s.limen.identity().list_users(&filter).await?, &p);
    let items = render_users(&s, &l, &users).await?;
    Ok(Json(crate::routes::page_document(
        &l, "users", "users", &q, items, p.limit, truncated,
    )))
}

pub async fn create(
    State(s): State<AppState>,
    auth: Auth,
    Base(l): Base,
    JsonBody(body): JsonBody,
) -> ApiResult<Response> {
    let raw = body.get("user").cloned().unwrap_or(Value::Null);
    let proof = authorize(
        &s,
        &auth,
        "identity:create_user",
        target(json!({"user": raw}), &[]),
    )?;
    let u = input::user_create(body)?;
    let domain_id = match u.domain_id {
        Some(d) => d,
        None => match &auth.caller.token.scope {
            ResolvedScope::Domain(d) => d.id.clone(),
            _ => DEFAULT_DOMAIN_ID.to_string(),
        },
    };
    if s.limen.resource().find_domain(&domain_id).await?.is_none() {
        return Err(ApiError::not_found(format!(
            "Could not find domain: {domain_id}."
        )));
    }
    if let Some(dp) = &u.default_project_id {
        check_default_project(&s, dp).await?;
    }
    let user = s
        .limen
        .identity()
        .create_user(
            &proof,
            NewUser {
                name: u.name,
                domain_id,
                enabled: u.enabled,
                default_project_id: u.default_project_id,
                password: u.password,
                options: u.options,
                extra: u.extra,
            },
        )
        .await?;
    Ok(created(json!({"user": render_user(&s, &l, &user).await?})))
}

async fn check_default_project(s: &AppState, id: &str) -> ApiResult<()> {
    let is_domain = s.limen.resource().find_domain(id).await?.is_some();
    if is_domain {
        return Err(ApiError::bad_request(format!(
            "User's default project ID cannot be a domain ID: {id}"
        )));
    }
    Ok(())
}

pub async fn get(
    State(s): State<AppState>,
    auth: Auth,
    Base(l): Base,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let (u, _) = checked_user(&s, &auth, &id, "identity:get_user").await?;
    Ok(Json(json!({"user": render_user(&s, &l, &u).await?})))
}

/// `DELETE /v3/users/{user_id}/tokens` (Keystone 30): revokes every token of the user, the
/// way out for users who cannot change a password to the same effect.
pub async fn revoke_tokens(
    State(s): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let (_, proof) = checked_user(&s, &auth, &id, "identity:revoke_tokens_for_user").await?;
    s.limen.identity().revoke_user_tokens(&proof, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn update(
    State(s): State<AppState>,
    auth: Auth,
    Base(l): Base,
    Path(id): Path<String>,
    JsonBody(mut body): JsonBody,
) -> ApiResult<Json<Value>> {
    crate::routes::drop_same_id(&mut body, "user", &id);
    let (u, proof) = checked_user(&s, &auth, &id, "identity:update_user").await?;
    // Restating the current domain is not a change.
    if let Some(m) = body.get_mut("user").and_then(Value::as_object_mut) {
        if m.get("domain_id").and_then(Value::as_str) == Some(u.domain_id.as_str()) {
            m.remove("domain_id");
        }
    }
    let patch = input::user_update(body)?;
    if let Some(Some(dp)) = &patch.default_project_id {
        check_default_project(&s, dp).await?;
    }
    let updated = s.limen.identity().update_user(&proof, &id, patch).await?;
    Ok(Json(json!({"user": render_user(&s, &l, &updated).await?})))
}

pub async fn delete(
    State(s): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let (_, proof) = checked_user(&s, &auth, &id, "identity:delete_user").await?;
    s.limen.identity().delete_user(&proof, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /v3/users/{id}/password`: no token needed, the original password proves it.
pub async fn change_password(
    State(s): State<AppState>,
    addr: ClientAddr,
    Path(id): Path<String>,
    JsonBody(body): JsonBody,
) -> ApiResult<StatusCode> {
    let c = input::password_change(body)?;
    limited_login(&s, &addr, async {
        s.limen
            .identity()
            .change_password(&id, &c.original_password, &c.password)
            .await
            .map_err(|e| match e {
                // An unknown user looks like a wrong password.
                limen_core::CoreError::NotFound { .. } => ApiError::unauthorized(),
                other => other.into(),
            })
    })
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn groups(
    State(s): State<AppState>,
    auth: Auth,
    Base(l): Base,
    Path(id): Path<String>,
    q: Query,
) -> ApiResult<Json<Value>> {
    checked_user(&s, &auth, &id, "identity:list_groups_for_user").await?;
    let mut groups = s.limen.identity().list_groups_for_user(&id).await?;
    // A domain-scoped caller sees only its domain's groups, as in Keystone.
    if let Some(d) = auth.caller.token.domain_scope_id() {
        groups.retain(|g| g.domain_id == d);
    }
    let items = filter_name(groups, &q, |g| &g.name)?
        .iter()
        .map(|g| {
            let mut v = render::group(&l, g);
            v["membership_expires_at"] = Value::Null;
            v
        })
        .collect();
    crate::routes::paged(&s, &l, "groups", &format!("users/{id}/groups"), &q, items)
}

pub async fn projects(
    State(s): State<AppState>,
    auth: Auth,
    Base(l): Base,
    Path(id): Path<String>,
    q: Query,
) -> ApiResult<Json<Value>> {
    checked_user(&s, &auth, &id, "identity:list_user_projects").await?;
    let mut projects = s.limen.assignment().projects_for_user(&id).await?;
    if let Some(e) = q.bool("enabled")? {
        projects.retain(|p| p.enabled == e);
    }
    if let Some(d) = q.get("domain_id") {
        projects.retain(|p| p.domain_id == d);
    }
    let items = filter_name(projects, &q, |p| &p.name)?
        .iter()
        .map(|p| render::project(&l, p))
        .collect();
    crate::routes::paged(
        &s,
        &l,
        "projects",
        &format!("users/{id}/projects"),
        &q,
        items,
    )
}

/// The routes this module serves.
pub(crate) fn routes() -> axum::Router<crate::state::AppState> {
    use axum::routing;
    axum::Router::new()
        .route("/v3/users", routing::get(list).post(create))
        .route(
            "/v3/users/{user_id}",
            routing::get(get).patch(update).delete(delete),
        )
        .route(
            "/v3/users/{user_id}/password",
            routing::post(change_password),
        )
        .route(
            "/v3/users/{user_id}/tokens",
            axum::routing::delete(revoke_tokens),
        )
        .route("/v3/users/{user_id}/groups", routing::get(groups))
        .route("/v3/users/{user_id}/projects", routing::get(projects))
}
