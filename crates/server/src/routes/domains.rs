//! `/v3/domains`

use crate::authz::{authorize, enforce, target};
use crate::error::ApiResult;
use crate::extract::Path;
use crate::extract::{Auth, Base, JsonBody, Query};
use crate::routes::{created, filter_name};
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::Json;
use limen_core::resource::NewDomain;
use limen_core::store::DomainFilter;
use limen_proto::{input, render};
use serde_json::{json, Value};

pub async fn list(
    State(s): State<AppState>,
    auth: Auth,
    Base(l): Base,
    q: Query,
) -> ApiResult<Json<Value>> {
    let token_domain = auth.caller.token.domain_scope_id().map(str::to_string);
    let t = match &token_domain {
        Some(d) => json!({"domain": {"id": d}}),
        None => json!({}),
    };
    enforce(
        &s,
        &auth.caller.token,
        "identity:list_domains",
        target(t, &[]),
    )?;
    let filter = DomainFilter {
        name: q.get("name").map(str::to_string),
        enabled: q.bool("enabled")?,
    };
    let mut domains = s.limen.resource().list_domains(&filter).await?;
    if let Some(d) = token_domain {
        domains.retain(|x| x.id == d);
    }
    let items = filter_name(domains, &q, |d| &d.name)?
        .iter()
        .map(|d| render::domain(&l, d))
        .collect();
    crate::routes::paged(&s, &l, "domains", "domains", &q, items)
}

pub async fn create(
    State(s): State<AppState>,
    auth: Auth,
    Base(l): Base,
    JsonBody(body): JsonBody,
) -> ApiResult<Response> {
    let target_doc = target(
        json!({"domain": body.get("domain").cloned().unwrap_or(Value::Null)}),
        &[],
    );
    let proof = authorize(&s, &auth, "identity:create_domain", target_doc)?;
    let d = input::domain_create(body)?;
    let domain = s
        .limen
        .resource()
        .create_domain(
            &proof,
            NewDomain {
                id: None,
                name: d.name,
                description: d.description,
                enabled: d.enabled,
                tags: d.tags,
                options: d.options,
                extra: d.extra,
            },
        )
        .await?;
    Ok(created(json!({"domain": render::domain(&l, &domain)})))
}

pub async fn get(
    State(s): State<AppState>,
    auth: Auth,
    Base(l): Base,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let domain = s.limen.resource().get_domain(&id).await?;
    let t = json!({"domain": {"id": domain.id, "name": domain.name}});
    enforce(
        &s,
        &auth.caller.token,
        "identity:get_domain",
        target(t, &[("domain_id", &id)]),
    )?;
    Ok(Json(json!({"domain": render::domain(&l, &domain)})))
}

pub async fn update(
    State(s): State<AppState>,
    auth: Auth,
    Base(l): Base,
    Path(id): Path<String>,
    JsonBody(mut body): JsonBody,
) -> ApiResult<Json<Value>> {
    crate::routes::drop_same_id(&mut body, "domain", &id);
    let proof = authorize(
        &s,
        &auth,
        "identity:update_domain",
        target(json!({"domain": {"id": id}}), &[("domain_id", &id)]),
    )?;
    let patch = input::domain_update(body)?;
    let d = s.limen.resource().update_domain(&proof, &id, patch).await?;
    Ok(Json(json!({"domain": render::domain(&l, &d)})))
}

pub async fn delete(
    State(s): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let proof = authorize(
        &s,
        &auth,
        "identity:delete_domain",
        target(json!({"domain": {"id": id}}), &[("domain_id", &id)]),
    )?;
    s.limen.resource().delete_domain(&proof, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The routes this module serves.
pub(crate) fn routes() -> axum::Router<crate::state::AppState> {
    use axum::routing;
    axum::Router::new()
        .route("/v3/domains", routing::get(list).post(create))
        .route(
            "/v3/domains/{domain_id}",
            routing::get(get).patch(update).delete(delete),
        )
}
