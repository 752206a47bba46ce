//! Domain-specific configuration (`/v3/domains/{id}/config`) and its defaults.

use crate::authz::authorize_caller as allow;
use crate::error::ApiResult;
use crate::extract::{Auth, JsonBody, Path};
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use axum::Json;
use axum::Router;
use limen_proto::input;
use serde_json::{json, Value};

fn config_parts(p: &[String]) -> (String, Option<String>, Option<String>) {
    (
        p.first().cloned().unwrap_or_default(),
        p.get(1).cloned(),
        p.get(2).cloned(),
    )
}

pub async fn put_domain_config(
    State(s): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
    JsonBody(body): JsonBody,
) -> ApiResult<Response> {
    let proof = allow(&s, &auth, "identity:create_domain_config")?;
    let (new, config) = s
        .limen
        .resource()
        .put_domain_config(&proof, &id, input::domain_config(body)?)
        .await?;
    let status = if new {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(json!({"config": config}))).into_response())
}

pub async fn get_domain_config(
    State(s): State<AppState>,
    auth: Auth,
    Path(p): Path<Vec<String>>,
) -> ApiResult<Json<Value>> {
    let (id, group, option) = config_parts(&p);
    if group.as_deref() == Some("security_compliance") {
        allow(&s, &auth, "identity:get_security_compliance_domain_config")?;
        return Ok(Json(
            json!({"config": s.limen.resource().security_compliance_config(&id, option.as_deref()).await?}),
        ));
    }
    allow(&s, &auth, "identity:get_domain_config")?;
    let c = s
        .limen
        .resource()
        .get_domain_config(&id, group.as_deref(), option.as_deref())
        .await?;
    Ok(Json(json!({"config": c})))
}

pub async fn update_domain_config(
    State(s): State<AppState>,
    auth: Auth,
    Path(p): Path<Vec<String>>,
    JsonBody(body): JsonBody,
) -> ApiResult<Json<Value>> {
    let proof = allow(&s, &auth, "identity:update_domain_config")?;
    let (id, group, option) = config_parts(&p);
    let c = s
        .limen
        .resource()
        .update_domain_config(
            &proof,
            &id,
            group.as_deref(),
            option.as_deref(),
            input::domain_config(body)?,
        )
        .await?;
    Ok(Json(json!({"config": c})))
}

pub async fn delete_domain_config(
    State(s): State<AppState>,
    auth: Auth,
    Path(p): Path<Vec<String>>,
) -> ApiResult<StatusCode> {
    let proof = allow(&s, &auth, "identity:delete_domain_config")?;
    let (id, group, option) = config_parts(&p);
    s.limen
        .resource()
        .delete_domain_config(&proof, &id, group.as_deref(), option.as_deref())
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn default_domain_config(
    State(s): State<AppState>,
    auth: Auth,
) -> ApiResult<Json<Value>> {
    allow(&s, &auth, "identity:get_domain_config_default")?;
    Ok(Json(
        json!({"config": s.limen.resource().default_domain_config(None, None)?}),
    ))
}

pub async fn default_domain_config_part(
    State(s): State<AppState>,
    auth: Auth,
    Path(p): Path<Vec<String>>,
) -> ApiResult<Json<Value>> {
    allow(&s, &auth, "identity:get_domain_config_default")?;
    let c = s
        .limen
        .resource()
        .default_domain_config(p.first().map(String::as_str), p.get(1).map(String::as_str))?;
    Ok(Json(json!({"config": c})))
}

/// The routes this module serves.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/v3/domains/{domain_id}/config",
            put(put_domain_config)
                .get(get_domain_config)
                .patch(update_domain_config)
                .delete(delete_domain_config),
        )
        .route(
            "/v3/domains/{domain_id}/config/{group}",
            get(get_domain_config)
                .patch(update_domain_config)
                .delete(delete_domain_config),
        )
        .route(
            "/v3/domains/{domain_id}/config/{group}/{option}",
            get(get_domain_config)
                .patch(update_domain_config)
                .delete(delete_domain_config),
        )
        .route("/v3/domains/config/default", get(default_domain_config))
        .route(
            "/v3/domains/config/{group}/default",
            get(default_domain_config_part),
        )
        .route(
            "/v3/domains/config/{group}/{option}/default",
            get(default_domain_config_part),
        )
}
