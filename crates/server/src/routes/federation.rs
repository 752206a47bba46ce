//! `/v3/OS-FEDERATION`: identity providers and their protocols, mappings, and service
//! providers. Entities are created with PUT at the id the caller picks, as in Keystone.

use crate::authz::authorize_caller as allow;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Auth, Base, JsonBody, Path, Query};
use crate::routes::{created, paged};
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::Json;
use limen_proto::federation as wire;
use serde_json::{json, Value};

/// Ids picked by the caller are stored as given: 1 to 64 characters.
fn checked_id(id: &str) -> ApiResult<&str> {
    let n = id.chars().count();
    if n == 0 || n > 64 {
        return Err(ApiError::bad_request(format!(
            "Invalid id {id:?}: an id is 1 to 64 characters."
        )));
    }
    Ok(id)
}

/// Keystone's `enabled` list filter.
fn enabled_filter(q: &Query) -> ApiResult<Option<bool>> {
    q.bool("enabled")
}

// ---- identity providers ----

pub async fn list_idps(
    State(s): State<AppState>,
    auth: Auth,
    Base(l): Base,
    q: Query,
) -> ApiResult<Json<Value>> {
    allow(&s, &auth, "identity:list_identity_providers")?;
    let enabled = enabled_filter(&q)?;
    let items = s
        .limen
        .federation()
        .list_identity_providers()
        .await?
        .iter()
        .filter(|i| q.get("id").is_none_or(|id| id == i.id))
        .filter(|i| enabled.is_none_or(|e| e == i.enabled))
        .map(|i| wire::identity_provider(&l, i))
        .collect();
    paged(
        &s,
        &l,
        "identity_providers",
        "OS-FEDERATION/identity_providers",
        &q,
        items,
    )
}

pub async fn get_idp(
    State(s): State<AppState>,
    auth: Auth,
    Base(l): Base,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    allow(&s, &auth, "identity:get_identity_provider")?;
    let idp = s.limen.federation().get_identity_provider(&id).await?;
    Ok(Json(
        json!({"identity_provider": wire::identity_provider(&l, &idp)}),
    ))
}

pub async fn create_idp(
    State(s): State<AppState>,
    auth: Auth,
    Base(l): Base,
    Path(id): Path<String>,
    JsonBody(body): JsonBody,
) -> ApiResult<Response> {
    let proof = allow(&s, &auth, "identity:create_identity_provider")?;
    let input = wire::identity_provider_create(body)?;
    let idp = s
        .limen
        .federation()
        .create_identity_provider(&proof, checked_id(&id)?, input)
        .await?;
    Ok(created(
        json!({"identity_provider": wire::identity_provider(&l, &idp)}),
    ))
}

pub async fn update_idp(
    State(s): State<AppState>,
    auth: Auth,
    Base(l): Base,
    Path(id): Path<String>,
    JsonBody(body): JsonBody,
) -> ApiResult<Json<Value>> {
    let proof = allow(&s, &auth, "identity:update_identity_provider")?;
    let patch = wire::identity_provider_update(body)?;
    let idp = s
        .limen
        .federation()
        .update_identity_provider(&proof, &id, patch)
        .await?;
    Ok(Json(
        json!({"identity_provider": wire::identity_provider(&l, &idp)}),
    ))
}

pub async fn delete_idp(
    State(s): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let proof = allow(&s, &auth, "identity:delete_identity_provider")?;
    s.limen
        .federation()
        .delete_identity_provider(&proof, &id)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

// ---- protocols ----

pub async fn list_protocols(
    State(s): State<AppState>,
    auth: Auth,
    Base(l): Base,
    Path(idp): Path<String>,
    q: Query,
) -> ApiResult<Json<Value>> {
    allow(&s, &auth, "identity:list_protocols")?;
    let items = s
        .limen
        .federation()
        .list_protocols(&idp)
        .await?
        .iter()
        .map(|p| wire::protocol(&l, p))
        .collect();
    paged(
        &s,
        &l,
        "protocols",
        &format!("OS-FEDERATION/identity_providers/{idp}/protocols"),
        &q,
        items,
    )
}

pub async fn get_protocol(
    State(s): State<AppState>,
    auth: Auth,
    Base(l): Base,
    Path((idp, id)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    allow(&s, &auth, "identity:get_protocol")?;
    let p = s.limen.federation().get_protocol(&idp, &id).await?;
    Ok(Json(json!({"protocol": wire::protocol(&l, &p)})))
}

pub async fn create_protocol(
    State(s): State<AppState>,
    auth: Auth,
    Base(l): Base,
    Path((idp, id)): Path<(String, String)>,
    JsonBody(body): JsonBody,
) -> ApiResult<Response> {
    let proof = allow(&s, &auth, "identity:create_protocol")?;
    let (mapping_id, remote_id_attribute) = wire::protocol_body(body, true)?;
    let p = s
        .limen
        .federation()
        .create_protocol(
            &proof,
            &idp,
            checked_id(&id)?,
            mapping_id,
            remote_id_attribute,
        )
        .await?;
    Ok(created(json!({"protocol": wire::protocol(&l, &p)})))
}

pub async fn update_protocol(
    State(s): State<AppState>,
    auth: Auth,
    Base(l): Base,
    Path((idp, id)): Path<(String, String)>,
    JsonBody(body): JsonBody,
) -> ApiResult<Json<Value>> {
    let proof = allow(&s, &auth, "identity:update_protocol")?;
    let (mapping_id, remote_id_attribute) = wire::protocol_body(body, false)?;
    let p = s
        .limen
        .federation()
        .update_protocol(&proof, &idp, &id, mapping_id, remote_id_attribute)
        .await?;
    Ok(Json(json!({"protocol": wire::protocol(&l, &p)})))
}

pub async fn delete_protocol(
    State(s): State<AppState>,
    auth: Auth,
    Path((idp, id)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let proof = allow(&s, &auth, "identity:delete_protocol")?;
    s.limen
        .federation()
        .delete_protocol(&proof, &idp, &id)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

// ---- mappings ----

pub async fn list_mappings(
    State(s): State<AppState>,
    auth: Auth,
    Base(l): Base,
    q: Query,
) -> ApiResult<Json<Value>> {
    allow(&s, &auth, "identity:list_mappings")?;
    let items = s
        .limen
        .federation()
        .list_mappings()
        .await?
        .iter()
        .map(|m| wire::mapping_json(&l, m))
        .collect();
    paged(&s, &l, "mappings", "OS-FEDERATION/mappings", &q, items)
}

pub async fn get_mapping(
    State(s): State<AppState>,
    auth: Auth,
    Base(l): Base,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    allow(&s, &auth, "identity:get_mapping")?;
    let m = s.limen.federation().get_mapping(&id).await?;
    Ok(Json(json!({"mapping": wire::mapping_json(&l, &m)})))
}

pub async fn create_mapping(
    State(s): State<AppState>,
    auth: Auth,
    Base(l): Base,
    Path(id): Path<String>,
    JsonBody(body): JsonBody,
) -> ApiResult<Response> {
    let proof = allow(&s, &auth, "identity:create_mapping")?;
    let m = wire::mapping(checked_id(&id)?, body)?;
    let m = s.limen.federation().put_mapping(&proof, m, true).await?;
    Ok(created(json!({"mapping": wire::mapping_json(&l, &m)})))
}

pub async fn update_mapping(
    State(s): State<AppState>,
    auth: Auth,
    Base(l): Base,
    Path(id): Path<String>,
    JsonBody(body): JsonBody,
) -> ApiResult<Json<Value>> {
    let proof = allow(&s, &auth, "identity:update_mapping")?;
    let m = wire::mapping(&id, body)?;
    let m = s.limen.federation().put_mapping(&proof, m, false).await?;
    Ok(Json(json!({"mapping": wire::mapping_json(&l, &m)})))
}

pub async fn delete_mapping(
    State(s): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let proof = allow(&s, &auth, "identity:delete_mapping")?;
    s.limen.federation().delete_mapping(&proof, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

// ---- service providers ----

pub async fn list_sps(
    State(s): State<AppState>,
    auth: Auth,
    Base(l): Base,
    q: Query,
) -> ApiResult<Json<Value>> {
    allow(&s, &auth, "identity:list_service_providers")?;
    let enabled = enabled_filter(&q)?;
    let items = s
        .limen
        .federation()
        .list_service_providers()
        .await?
        .iter()
        .filter(|sp| q.get("id").is_none_or(|id| id == sp.id))
        .filter(|sp| enabled.is_none_or(|e| e == sp.enabled))
        .map(|sp| wire::service_provider(&l, sp))
        .collect();
    paged(
        &s,
        &l,
        "service_providers",
        "OS-FEDERATION/service_providers",
        &q,
        items,
    )
}

pub async fn get_sp(
    State(s): State<AppState>,
    auth: Auth,
    Base(l): Base,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    allow(&s, &auth, "identity:get_service_provider")?;
    let sp = s.limen.federation().get_service_provider(&id).await?;
    Ok(Json(
        json!({"service_provider": wire::service_provider(&l, &sp)}),
    ))
}

pub async fn create_sp(
    State(s): State<AppState>,
    auth: Auth,
    Base(l): Base,
    Path(id): Path<String>,
    JsonBody(body): JsonBody,
) -> ApiResult<Response> {
    let proof = allow(&s, &auth, "identity:create_service_provider")?;
    let sp = wire::service_provider_create(checked_id(&id)?, body)?;
    let sp = s
        .limen
        .federation()
        .create_service_provider(&proof, sp)
        .await?;
    Ok(created(
        json!({"service_provider": wire::service_provider(&l, &sp)}),
    ))
}

pub async fn update_sp(
    State(s): State<AppState>,
    auth: Auth,
    Base(l): Base,
    Path(id): Path<String>,
    JsonBody(body): JsonBody,
) -> ApiResult<Json<Value>> {
    let proof = allow(&s, &auth, "identity:update_service_provider")?;
    let patch = wire::service_provider_update(body)?;
    let sp = s
        .limen
        .federation()
        .update_service_provider(&proof, &id, patch)
        .await?;
    Ok(Json(
        json!({"service_provider": wire::service_provider(&l, &sp)}),
    ))
}

pub async fn delete_sp(
    State(s): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let proof = allow(&s, &auth, "identity:delete_service_provider")?;
    s.limen
        .federation()
        .delete_service_provider(&proof, &id)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The routes this module serves.
pub(crate) fn routes() -> axum::Router<crate::state::AppState> {
    use axum::routing;
    axum::Router::new()
        .route(
            "/v3/OS-FEDERATION/identity_providers",
            routing::get(list_idps),
        )
        .route(
            "/v3/OS-FEDERATION/identity_providers/{idp_id}",
            routing::get(get_idp)
                .put(create_idp)
                .patch(update_idp)
                .delete(delete_idp),
        )
        .route(
            "/v3/OS-FEDERATION/identity_providers/{idp_id}/protocols",
            routing::get(list_protocols),
        )
        .route(
            "/v3/OS-FEDERATION/identity_providers/{idp_id}/protocols/{protocol_id}",
            routing::get(get_protocol)
                .put(create_protocol)
                .patch(update_protocol)
                .delete(delete_protocol),
        )
        .route("/v3/OS-FEDERATION/mappings", routing::get(list_mappings))
        .route(
            "/v3/OS-FEDERATION/mappings/{mapping_id}",
            routing::get(get_mapping)
                .put(create_mapping)
                .patch(update_mapping)
                .delete(delete_mapping),
        )
        .route(
            "/v3/OS-FEDERATION/service_providers",
            routing::get(list_sps),
        )
        .route(
            "/v3/OS-FEDERATION/service_providers/{sp_id}",
            routing::get(get_sp)
                .put(create_sp)
                .patch(update_sp)
                .delete(delete_sp),
        )
}
