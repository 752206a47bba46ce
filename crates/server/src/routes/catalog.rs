//! `/v3/regions`, `/v3/services`, `/v3/endpoints`

use crate::authz::{authorize, enforce, target};
use crate::error::ApiResult;
use crate::extract::Path;
use crate::extract::{Auth, Base, JsonBody, Query};
use crate::routes::created;
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::Json;
use limen_core::authz::Authorized;
use limen_core::catalog::{NewEndpoint, NewRegion};
use limen_core::model::Interface;
use limen_core::store::EndpointFilter;
use limen_proto::{input, render};
use serde_json::{json, Value};

fn none() -> Value {
    json!({})
}

// ---- regions ----

pub async fn list_regions(
    State(s): State<AppState>,
    auth: Auth,
    Base(l): Base,
    q: Query,
) -> ApiResult<Json<Value>> {
    enforce(
        &s,
        &auth.caller.token,
        "identity:list_regions",
        target(none(), &[]),
    )?;
    let regions = s
        .limen
        .catalog()
        .list_regions(q.get("parent_region_id"))
        .await?;
    let items = regions.iter().map(|r| render::region(&l, r)).collect();
    crate::routes::paged(&s, &l, "regions", "regions", &q, items)
}

pub async fn create_region(
    State(s): State<AppState>,
    auth: Auth,
    Base(l): Base,
    JsonBody(body): JsonBody,
) -> ApiResult<Response> {
    let proof = authorize(&s, &auth, "identity:create_region", target(none(), &[]))?;
    let r = s
        .limen
        .catalog()
        .create_region(&proof, input::region_create(body, None)?)
        .await?;
    Ok(created(json!({"region": render::region(&l, &r)})))
}

pub async fn put_region(
    State(s): State<AppState>,
    auth: Auth,
    Base(l): Base,
    Path(id): Path<String>,
    JsonBody(body): JsonBody,
) -> ApiResult<Response> {
    let proof = authorize(
        &s,
        &auth,
        "identity:create_region",
        target(none(), &[("region_id", &id)]),
    )?;
    let body = if body.is_null() {
        json!({"region": {}})
    } else {
        body
    };
    let r = s
        .limen
        .catalog()
        .create_region(&proof, input::region_create(body, Some(&id))?)
        .await?;
    Ok(created(json!({"region": render::region(&l, &r)})))
}

pub async fn get_region(
    State(s): State<AppState>,
    auth: Auth,
    Base(l): Base,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    enforce(
        &s,
        &auth.caller.token,
        "identity:get_region",
        target(none(), &[("region_id", &id)]),
    )?;
    let r = s.limen.catalog().get_region(&id).await?;
    Ok(Json(json!({"region": render::region(&l, &r)})))
}

pub async fn update_region(
    State(s): State<AppState>,
    auth: Auth,
    Base(l): Base,
    Path(id): Path<String>,
    JsonBody(mut body): JsonBody,
) -> ApiResult<Json<Value>> {
    crate::routes::drop_same_id(&mut body, "region", &id);
    let proof = authorize(
        &s,
        &auth,
        "identity:update_region",
        target(none(), &[("region_id", &id)]),
    )?;
    let r = s
        .limen
        .catalog()
        .update_region(&proof, &id, input::region_update(body)?)
        .await?;
    Ok(Json(json!({"region": render::region(&l, &r)})))
}

pub async fn delete_region(
    State(s): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let proof = authorize(
        &s,
        &auth,
        "identity:delete_region",
        target(none(), &[("region_id", &id)]),
    )?;
    s.limen.catalog().delete_region(&proof, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

// ---- services ----

pub async fn list_services(
    State(s): State<AppState>,
    auth: Auth,
    Base(l): Base,
    q: Query,
) -> ApiResult<Json<Value>> {
    enforce(
        &s,
        &auth.caller.token,
        "identity:list_services",
        target(none(), &[]),
    )?;
    let mut services = s.limen.catalog().list_services().await?;
    if let Some(t) = q.get("type") {
        services.retain(|x| x.service_type == t);
    }
    if let Some(n) = q.get("name") {
        services.retain(|x| x.name() == Some(n));
    }
    let items = services.iter().map(|x| render::service(&l, x)).collect();
    crate::routes::paged(&s, &l, "services", "services", &q, items)
}

pub async fn create_service(
    State(s): State<AppState>,
    auth: Auth,
    Base(l): Base,
    JsonBody(body): JsonBody,
) -> ApiResult<Response> {
    let proof = authorize(&s, &auth, "identity:create_service", target(none(), &[]))?;
    let x = s
        .limen
        .catalog()
        .create_service(&proof, input::service_create(body)?)
        .await?;
    Ok(created(json!({"service": render::service(&l, &x)})))
}

pub async fn get_service(
    State(s): State<AppState>,
    auth: Auth,
    Base(l): Base,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    enforce(
        &s,
        &auth.caller.token,
        "identity:get_service",
        target(none(), &[("service_id", &id)]),
    )?;
    let x = s.limen.catalog().get_service(&id).await?;
    Ok(Json(json!({"service": render::service(&l, &x)})))
}

pub async fn update_service(
    State(s): State<AppState>,
    auth: Auth,
    Base(l): Base,
    Path(id): Path<String>,
    JsonBody(mut body): JsonBody,
) -> ApiResult<Json<Value>> {
    crate::routes::drop_same_id(&mut body, "service", &id);
    let proof = authorize(
        &s,
        &auth,
        "identity:update_service",
        target(none(), &[("service_id", &id)]),
    )?;
    let x = s
        .limen
        .catalog()
        .update_service(&proof, &id, input::service_update(body)?)
        .await?;
    Ok(Json(json!({"service": render::service(&l, &x)})))
}

pub async fn delete_service(
    State(s): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let proof = authorize(
        &s,
        &auth,
        "identity:delete_service",
        target(none(), &[("service_id", &id)]),
    )?;
    s.limen.catalog().delete_service(&proof, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

// ---- endpoints ----

/// The legacy `region` attribute (without `region_id`) names a region that Keystone
/// creates on the fly when it does not exist yet.
async fn ensure_legacy_region(s: &AppState, proof: &Authorized, body: &Value) -> ApiResult<()> {
    let e = body.get("endpoint");
    let legacy = e.and_then(|e| e.get("region")).and_then(Value::as_str);
    let explicit = e.and_then(|e| e.get("region_id"));
    if let (Some(region), None) = (legacy, explicit) {
        if s.limen.catalog().find_region(region).await?.is_none() {
            s.limen
                .catalog()
                .create_region(
                    proof,
                    NewRegion {
                        id: Some(region.to_string()),
                        ..Default::default()
                    },
                )
                .await?;
        }
    }
    Ok(())
}

pub async fn list_endpoints(
    State(s): State<AppState>,
    auth: Auth,
    Base(l): Base,
    q: Query,
) -> ApiResult<Json<Value>> {
    enforce(
        &s,
        &auth.caller.token,
        "identity:list_endpoints",
        target(none(), &[]),
    )?;
    let interface = match q.get("interface") {
        None => None,
        Some(i) => match Interface::parse(i) {
            Some(x) => Some(x),
            None => return crate::routes::paged(&s, &l, "endpoints", "endpoints", &q, vec![]),
        },
    };
    let f = EndpointFilter {
        service_id: q.get("service_id").map(str::to_string),
        region_id: q.get("region_id").map(str::to_string),
        interface,
    };
    let items = s
        .limen
        .catalog()
        .list_endpoints(&f)
        .await?
        .iter()
        .map(|e| render::endpoint(&l, e))
        .collect();
    crate::routes::paged(&s, &l, "endpoints", "endpoints", &q, items)
}

pub async fn create_endpoint(
    State(s): State<AppState>,
    auth: Auth,
    Base(l): Base,
    JsonBody(body): JsonBody,
) -> ApiResult<Response> {
    let proof = authorize(&s, &auth, "identity:create_endpoint", target(none(), &[]))?;
    let e = input::endpoint_create(body.clone())?;
    ensure_legacy_region(&s, &proof, &body).await?;
    let x = s
        .limen
        .catalog()
        .create_endpoint(
            &proof,
            NewEndpoint {
                service_id: e.service_id,
                region_id: e.region_id,
                interface: e.interface,
                url: e.url,
                enabled: e.enabled,
                extra: e.extra,
            },
        )
        .await?;
    Ok(created(json!({"endpoint": render::endpoint(&l, &x)})))
}

pub async fn get_endpoint(
    State(s): State<AppState>,
    auth: Auth,
    Base(l): Base,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    enforce(
        &s,
        &auth.caller.token,
        "identity:get_endpoint",
        target(none(), &[("endpoint_id", &id)]),
    )?;
    let x = s.limen.catalog().get_endpoint(&id).await?;
    Ok(Json(json!({"endpoint": render::endpoint(&l, &x)})))
}

pub async fn update_endpoint(
    State(s): State<AppState>,
    auth: Auth,
    Base(l): Base,
    Path(id): Path<String>,
    JsonBody(mut body): JsonBody,
) -> ApiResult<Json<Value>> {
    crate::routes::drop_same_id(&mut body, "endpoint", &id);
    let proof = authorize(
        &s,
        &auth,
        "identity:update_endpoint",
        target(none(), &[("endpoint_id", &id)]),
    )?;
    let patch = input::endpoint_update(body.clone())?;
    s.limen.catalog().get_endpoint(&id).await?;
    ensure_legacy_region(&s, &proof, &body).await?;
    let x = s
        .limen
        .catalog()
        .update_endpoint(&proof, &id, patch)
        .await?;
    Ok(Json(json!({"endpoint": render::endpoint(&l, &x)})))
}

pub async fn delete_endpoint(
    State(s): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let proof = authorize(
        &s,
        &auth,
        "identity:delete_endpoint",
        target(none(), &[("endpoint_id", &id)]),
    )?;
    s.limen.catalog().delete_endpoint(&proof, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The routes this module serves.
pub(crate) fn routes() -> axum::Router<crate::state::AppState> {
    use axum::routing;
    axum::Router::new()
        .route(
            "/v3/regions",
            routing::get(list_regions).post(create_region),
        )
        .route(
            "/v3/regions/{region_id}",
            routing::get(get_region)
                .put(put_region)
                .patch(update_region)
                .delete(delete_region),
        )
        .route(
            "/v3/services",
            routing::get(list_services).post(create_service),
        )
        .route(
            "/v3/services/{service_id}",
            routing::get(get_service)
                .patch(update_service)
                .delete(delete_service),
        )
        .route(
            "/v3/endpoints",
            routing::get(list_endpoints).post(create_endpoint),
        )
        .route(
            "/v3/endpoints/{endpoint_id}",
            routing::get(get_endpoint)
                .patch(update_endpoint)
                .delete(delete_endpoint),
        )
}
