//! `/v3/limen/clusters`: the Kubernetes clusters registered with Limen, per domain.
//! Policy targets come from the stored cluster (its domain), never from the request body.

use crate::authz::{authorize, enforce, target};
use crate::error::ApiResult;
use crate::extract::{Auth, Base, JsonBody, Query};
use crate::routes::{created, domain_to_list, owning_domain};
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Json;
use limen_core::authz::Authorized;
use limen_core::kubernetes::cluster::Cluster;
use limen_proto::cluster::{cluster, cluster_create, cluster_update, kube_rule, kube_rule_create};
use serde_json::{json, Value};

fn cluster_target(c: &Cluster) -> Value {
    target(
        json!({"cluster": {"id": c.id, "domain_id": c.domain_id}}),
        &[],
    )
}

/// The stored cluster, once the caller may `action` it.
async fn checked(
    s: &AppState,
    auth: &Auth,
    id: &str,
    action: &str,
) -> ApiResult<(Cluster, Authorized)> {
    let c = s.limen.kubernetes().get_cluster(id).await?;
    let proof = authorize(s, auth, action, cluster_target(&c))?;
    Ok((c, proof))
}

pub async fn list(
    State(s): State<AppState>,
    auth: Auth,
    Base(l): Base,
    q: Query,
) -> ApiResult<Json<Value>> {
    let domain = domain_to_list(&auth, &q);
    enforce(
        &s,
        &auth.caller.token,
        "identity:list_clusters",
        target(json!({ "domain_id": domain }), &[]),
    )?;
    let clusters = s
        .limen
        .kubernetes()
        .list_clusters(domain.as_deref())
        .await?;
    let items = clusters.iter().map(|c| cluster(&l, c, None)).collect();
    Ok(Json(l.collection("clusters", "limen/clusters", items)))
}

pub async fn get(
    State(s): State<AppState>,
    auth: Auth,
    Base(l): Base,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let (c, _) = checked(&s, &auth, &id, "identity:get_cluster").await?;
    Ok(Json(json!({"cluster": cluster(&l, &c, None)})))
}

pub async fn create(
    State(s): State<AppState>,
    auth: Auth,
    Base(l): Base,
    JsonBody(body): JsonBody,
) -> ApiResult<Response> {
    let (mut new, domain_id) = cluster_create(body)?;
    new.domain_id = owning_domain(&auth, domain_id);
    let proof = authorize(
        &s,
        &auth,
        "identity:create_cluster",
        target(json!({"cluster": {"domain_id": new.domain_id}}), &[]),
    )?;
    let (c, webhook_token) = s.limen.kubernetes().create_cluster(&proof, new).await?;
    tracing::info!(cluster = %c.id, domain = %c.domain_id, "cluster registered");
    Ok(created(
        json!({"cluster": cluster(&l, &c, Some(&webhook_token))}),
    ))
}

pub async fn update(
    State(s): State<AppState>,
    auth: Auth,
    Base(l): Base,
    Path(id): Path<String>,
    JsonBody(body): JsonBody,
) -> ApiResult<Json<Value>> {
    let (_, proof) = checked(&s, &auth, &id, "identity:update_cluster").await?;
    let patch = cluster_update(body)?;
    let c = s
        .limen
        .kubernetes()
        .update_cluster(&proof, &id, patch)
        .await?;
    Ok(Json(json!({"cluster": cluster(&l, &c, None)})))
}

pub async fn delete(
    State(s): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let (_, proof) = checked(&s, &auth, &id, "identity:delete_cluster").await?;
    s.limen.kubernetes().delete_cluster(&proof, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /v3/limen/clusters/{id}/webhook_token`: a new webhook token, shown once; the old
/// one stops working at once.
pub async fn rotate_webhook_token(
    State(s): State<AppState>,
    auth: Auth,
    Base(l): Base,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let (_, proof) = checked(&s, &auth, &id, "identity:update_cluster").await?;
    let (c, webhook_token) = s
        .limen
        .kubernetes()
        .rotate_cluster_webhook_token(&proof, &id)
        .await?;
    tracing::info!(cluster = %c.id, "cluster webhook token rotated");
    Ok(Json(
        json!({"cluster": cluster(&l, &c, Some(&webhook_token))}),
    ))
}

/// `GET /v3/limen/clusters/{id}/rules`: the cluster's authorization rules (readable by
/// whoever may read the cluster).
pub async fn list_rules(
    State(s): State<AppState>,
    auth: Auth,
    Base(l): Base,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    checked(&s, &auth, &id, "identity:get_cluster").await?;
    let rules = s.limen.kubernetes().list_kube_rules(&id).await?;
    let items = rules.iter().map(|r| kube_rule(&l, r)).collect();
    Ok(Json(l.collection(
        "rules",
        &format!("limen/clusters/{id}/rules"),
        items,
    )))
}

/// `POST /v3/limen/clusters/{id}/rules`: a new rule, in force at once (changing rules is
/// changing the cluster).
pub async fn create_rule(
    State(s): State<AppState>,
    auth: Auth,
    Base(l): Base,
    Path(id): Path<String>,
    JsonBody(body): JsonBody,
) -> ApiResult<Response> {
    let (_, proof) = checked(&s, &auth, &id, "identity:update_cluster").await?;
    let new = kube_rule_create(body)?;
    let r = s
        .limen
        .kubernetes()
        .create_kube_rule(&proof, &id, new)
        .await?;
    tracing::info!(cluster = %id, rule = %r.id, "cluster rule added");
    Ok(created(json!({"rule": kube_rule(&l, &r)})))
}

pub async fn get_rule(
    State(s): State<AppState>,
    auth: Auth,
    Base(l): Base,
    Path((id, rule_id)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    checked(&s, &auth, &id, "identity:get_cluster").await?;
    let r = s.limen.kubernetes().get_kube_rule(&id, &rule_id).await?;
    Ok(Json(json!({"rule": kube_rule(&l, &r)})))
}

pub async fn delete_rule(
    State(s): State<AppState>,
    auth: Auth,
    Path((id, rule_id)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let (_, proof) = checked(&s, &auth, &id, "identity:update_cluster").await?;
    s.limen
        .kubernetes()
        .delete_kube_rule(&proof, &id, &rule_id)
        .await?;
    tracing::info!(cluster = %id, rule = %rule_id, "cluster rule removed");
    Ok(StatusCode::NO_CONTENT)
}

/// The routes this module serves.
pub(crate) fn routes() -> axum::Router<crate::state::AppState> {
    use axum::routing;
    axum::Router::new()
        .route("/v3/limen/clusters", routing::get(list).post(create))
        .route(
            "/v3/limen/clusters/{id}",
            routing::get(get).patch(update).delete(delete),
        )
        .route(
            "/v3/limen/clusters/{id}/webhook_token",
            routing::post(rotate_webhook_token),
        )
        .route(
            "/v3/limen/clusters/{id}/rules",
            routing::get(list_rules).post(create_rule),
        )
        .route(
            "/v3/limen/clusters/{id}/rules/{rule_id}",
            routing::get(get_rule).delete(delete_rule),
        )
}
