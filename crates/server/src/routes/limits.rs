//! Unified limits: `/v3/registered_limits`, `/v3/limits` and the limit model.

use crate::authz::{authorize_caller as allow, enforce, target};
use crate::error::ApiResult;
use crate::extract::{Auth, Base, JsonBody, Path, Query};
use crate::routes::{created, drop_same_id, paged};
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use axum::Json;
use axum::Router;
use limen_core::resource::limits::{Limit, LimitFilter, RegisteredLimit};
use limen_proto::input;
use limen_proto::render::Links;
use serde_json::{json, Value};

fn registered_doc(l: &Links, r: &RegisteredLimit) -> Value {
    json!({
        "id": r.id, "service_id": r.service_id, "region_id": r.region_id,
        "resource_name": r.resource_name, "default_limit": r.default_limit,
        "description": r.description,
        "links": l.self_link(&format!("registered_limits/{}", r.id)),
    })
}

fn limit_doc(l: &Links, x: &Limit) -> Value {
    json!({
        "id": x.id, "project_id": x.project_id, "domain_id": x.domain_id,
        "resource_limit": x.resource_limit, "description": x.description,
        "service_id": x.service_id, "region_id": x.region_id, "resource_name": x.resource_name,
        "links": l.self_link(&format!("limits/{}", x.id)),
    })
}

fn limit_filter(q: &Query) -> LimitFilter {
    let g = |k: &str| q.get(k).map(str::to_string);
    LimitFilter {
        service_id: g("service_id"),
        region_id: g("region_id"),
        resource_name: g("resource_name"),
        project_id: g("project_id"),
        domain_id: g("domain_id"),
    }
}

pub async fn limit_model(State(s): State<AppState>, auth: Auth) -> ApiResult<Json<Value>> {
    allow(&s, &auth, "identity:get_limit_model")?;
    Ok(Json(json!({"model": {
        "name": "flat",
        "description": "Limit enforcement and validation does not take project hierarchy into consideration.",
    }})))
}

pub async fn create_registered_limits(
    State(s): State<AppState>,
    auth: Auth,
    Base(l): Base,
    JsonBody(body): JsonBody,
) -> ApiResult<Response> {
    let proof = allow(&s, &auth, "identity:create_registered_limits")?;
    let out = s
        .limen
        .resource()
        .create_registered_limits(&proof, input::registered_limits(body)?)
        .await?;
    Ok(created(
        json!({"registered_limits": out.iter().map(|r| registered_doc(&l, r)).collect::<Vec<_>>()}),
    ))
}

pub async fn list_registered_limits(
    State(s): State<AppState>,
    auth: Auth,
    Base(l): Base,
    q: Query,
) -> ApiResult<Json<Value>> {
    allow(&s, &auth, "identity:list_registered_limits")?;
    let items = s
        .limen
        .resource()
        .list_registered_limits(&limit_filter(&q))
        .await?
        .iter()
        .map(|r| registered_doc(&l, r))
        .collect();
    paged(&s, &l, "registered_limits", "registered_limits", &q, items)
}

pub async fn get_registered_limit(
    State(s): State<AppState>,
    auth: Auth,
    Base(l): Base,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    allow(&s, &auth, "identity:get_registered_limit")?;
    Ok(Json(
        json!({"registered_limit": registered_doc(&l, &s.limen.resource().get_registered_limit(&id).await?)}),
    ))
}

pub async fn update_registered_limit(
    State(s): State<AppState>,
    auth: Auth,
    Base(l): Base,
    Path(id): Path<String>,
    JsonBody(mut body): JsonBody,
) -> ApiResult<Json<Value>> {
    let proof = allow(&s, &auth, "identity:update_registered_limit")?;
    drop_same_id(&mut body, "registered_limit", &id);
    let r = s
        .limen
        .resource()
        .update_registered_limit(&proof, &id, input::registered_limit_update(body)?)
        .await?;
    Ok(Json(json!({"registered_limit": registered_doc(&l, &r)})))
}

pub async fn delete_registered_limit(
    State(s): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let proof = allow(&s, &auth, "identity:delete_registered_limit")?;
    s.limen
        .resource()
        .delete_registered_limit(&proof, &id)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn create_limits(
    State(s): State<AppState>,
    auth: Auth,
    Base(l): Base,
    JsonBody(body): JsonBody,
) -> ApiResult<Response> {
    let proof = allow(&s, &auth, "identity:create_limits")?;
    let out = s
        .limen
        .resource()
        .create_limits(&proof, input::limits(body)?)
        .await?;
    Ok(created(
        json!({"limits": out.iter().map(|x| limit_doc(&l, x)).collect::<Vec<_>>()}),
    ))
}

/// Lists limits; a project-scoped caller sees only its project's (Keystone filters the
/// list the same way).
pub async fn list_limits(
    State(s): State<AppState>,
    auth: Auth,
    Base(l): Base,
    q: Query,
) -> ApiResult<Json<Value>> {
    allow(&s, &auth, "identity:list_limits")?;
    let mut f = limit_filter(&q);
    let is_admin =
        auth.caller.token.role_names().contains(&"admin") || auth.caller.token.is_system();
    if !is_admin {
        match (
            auth.caller.token.project_id(),
            auth.caller.token.domain_scope_id(),
        ) {
            (Some(p), _) => f.project_id = Some(p.to_string()),
            (_, Some(d)) => f.domain_id = Some(d.to_string()),
            _ => return Ok(Json(l.collection("limits", "limits", vec![]))),
        }
    }
    let items = s
        .limen
        .resource()
        .list_limits(&f)
        .await?
        .iter()
        .map(|x| limit_doc(&l, x))
        .collect();
    paged(&s, &l, "limits", "limits", &q, items)
}

pub async fn get_limit(
    State(s): State<AppState>,
    auth: Auth,
    Base(l): Base,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let x = s.limen.resource().get_limit(&id).await?;
    let project_domain = match &x.project_id {
        Some(p) => s
            .limen
            .resource()
            .get_project(p)
            .await
            .ok()
            .map(|p| p.domain_id),
        None => None,
    };
    let t = json!({"limit": {
        "id": x.id,
        "project_id": x.project_id,
        "domain": {"id": x.domain_id},
        "project": {"domain_id": project_domain},
    }});
    enforce(&s, &auth.caller.token, "identity:get_limit", target(t, &[]))?;
    Ok(Json(json!({"limit": limit_doc(&l, &x)})))
}

pub async fn update_limit(
    State(s): State<AppState>,
    auth: Auth,
    Base(l): Base,
    Path(id): Path<String>,
    JsonBody(mut body): JsonBody,
) -> ApiResult<Json<Value>> {
    let proof = allow(&s, &auth, "identity:update_limit")?;
    drop_same_id(&mut body, "limit", &id);
    let (r, d) = input::limit_update(body)?;
    Ok(Json(
        json!({"limit": limit_doc(&l, &s.limen.resource().update_limit(&proof, &id, r, d).await?)}),
    ))
}

pub async fn delete_limit(
    State(s): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let proof = allow(&s, &auth, "identity:delete_limit")?;
    s.limen.resource().delete_limit(&proof, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The routes this module serves.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v3/limits/model", get(limit_model))
        .route(
            "/v3/registered_limits",
            get(list_registered_limits).post(create_registered_limits),
        )
        .route(
            "/v3/registered_limits/{registered_limit_id}",
            get(get_registered_limit)
                .patch(update_registered_limit)
                .delete(delete_registered_limit),
        )
        .route("/v3/limits", get(list_limits).post(create_limits))
        .route(
            "/v3/limits/{limit_id}",
            get(get_limit).patch(update_limit).delete(delete_limit),
        )
}
