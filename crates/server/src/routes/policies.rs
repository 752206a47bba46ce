//! `/v3/policies` (Keystone's policy blobs) and OS-ENDPOINT-POLICY associations.

use crate::authz::authorize_caller as allow;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Auth, Base, JsonBody, Path, Query};
use crate::routes::with_links;
use crate::routes::{created, drop_same_id, paged};
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, put};
use axum::Json;
use axum::Router;
use limen_core::catalog::policies::PolicyAssociation;
use limen_proto::input;
use limen_proto::render::{self, Links};
use serde_json::{json, Value};

fn policy_doc(l: &Links, p: &limen_core::catalog::policies::PolicyBlob) -> Value {
    let mut m = p.extra.clone();
    m.insert("id".into(), json!(p.id));
    m.insert("blob".into(), json!(p.blob));
    m.insert("type".into(), json!(p.policy_type));
    with_links(l, &format!("policies/{}", p.id), m)
}

pub async fn create_policy(
    State(s): State<AppState>,
    auth: Auth,
    Base(l): Base,
    JsonBody(body): JsonBody,
) -> ApiResult<Response> {
    let proof = allow(&s, &auth, "identity:create_policy")?;
    let (blob, t, extra) = input::policy_create(body)?;
    let p = s
        .limen
        .catalog()
        .create_policy(&proof, blob, t, extra)
        .await?;
    Ok(created(json!({"policy": policy_doc(&l, &p)})))
}

pub async fn list_policies(
    State(s): State<AppState>,
    auth: Auth,
    Base(l): Base,
    q: Query,
) -> ApiResult<Json<Value>> {
    allow(&s, &auth, "identity:list_policies")?;
    let items = s
        .limen
        .catalog()
        .list_policies(q.get("type"))
        .await?
        .iter()
        .map(|p| policy_doc(&l, p))
        .collect();
    paged(&s, &l, "policies", "policies", &q, items)
}

pub async fn get_policy(
    State(s): State<AppState>,
    auth: Auth,
    Base(l): Base,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    allow(&s, &auth, "identity:get_policy")?;
    Ok(Json(
        json!({"policy": policy_doc(&l, &s.limen.catalog().get_policy(&id).await?)}),
    ))
}

pub async fn update_policy(
    State(s): State<AppState>,
    auth: Auth,
    Base(l): Base,
    Path(id): Path<String>,
    JsonBody(mut body): JsonBody,
) -> ApiResult<Json<Value>> {
    let proof = allow(&s, &auth, "identity:update_policy")?;
    drop_same_id(&mut body, "policy", &id);
    let p = s
        .limen
        .catalog()
        .update_policy(&proof, &id, input::policy_update(body)?)
        .await?;
    Ok(Json(json!({"policy": policy_doc(&l, &p)})))
}

pub async fn delete_policy(
    State(s): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let proof = allow(&s, &auth, "identity:delete_policy")?;
    s.limen.catalog().delete_policy(&proof, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Which `OS-ENDPOINT-POLICY` association a route addresses.
#[derive(Clone, Copy)]
pub enum AssociationKind {
    Endpoint,
    Service,
    RegionAndService,
}

fn association(kind: AssociationKind, p: &[String]) -> ApiResult<PolicyAssociation> {
    let get = |i: usize| {
        p.get(i)
            .cloned()
            .ok_or_else(|| ApiError::not_found("Not Found"))
    };
    Ok(match kind {
        AssociationKind::Endpoint => PolicyAssociation {
            policy_id: get(0)?,
            endpoint_id: Some(get(1)?),
            service_id: None,
            region_id: None,
        },
        AssociationKind::Service => PolicyAssociation {
            policy_id: get(0)?,
            endpoint_id: None,
            service_id: Some(get(1)?),
            region_id: None,
        },
        AssociationKind::RegionAndService => PolicyAssociation {
            policy_id: get(0)?,
            endpoint_id: None,
            service_id: Some(get(1)?),
            region_id: Some(get(2)?),
        },
    })
}

fn association_action(kind: AssociationKind, verb: &str) -> String {
    let what = match kind {
        AssociationKind::Endpoint => "endpoint",
        AssociationKind::Service => "service",
        AssociationKind::RegionAndService => "region_and_service",
    };
    format!("identity:{verb}_policy_association_for_{what}")
}

pub async fn put_association(
    kind: AssociationKind,
    State(s): State<AppState>,
    auth: Auth,
    Path(p): Path<Vec<String>>,
) -> ApiResult<StatusCode> {
    let proof = allow(&s, &auth, &association_action(kind, "create"))?;
    s.limen
        .catalog()
        .create_policy_association(&proof, association(kind, &p)?)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn check_association(
    kind: AssociationKind,
    State(s): State<AppState>,
    auth: Auth,
    Path(p): Path<Vec<String>>,
) -> ApiResult<StatusCode> {
    allow(&s, &auth, &association_action(kind, "check"))?;
    s.limen
        .catalog()
        .check_policy_association(&association(kind, &p)?)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn delete_association(
    kind: AssociationKind,
    State(s): State<AppState>,
    auth: Auth,
    Path(p): Path<Vec<String>>,
) -> ApiResult<StatusCode> {
    let proof = allow(&s, &auth, &association_action(kind, "delete"))?;
    s.limen
        .catalog()
        .delete_policy_association(&proof, &association(kind, &p)?)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn policy_endpoints(
    State(s): State<AppState>,
    auth: Auth,
    Base(l): Base,
    Path(id): Path<String>,
    q: Query,
) -> ApiResult<Json<Value>> {
    allow(&s, &auth, "identity:list_endpoints_for_policy")?;
    let items = s
        .limen
        .catalog()
        .endpoints_for_policy(&id)
        .await?
        .iter()
        .map(|e| render::endpoint(&l, e))
        .collect();
    paged(
        &s,
        &l,
        "endpoints",
        &format!("policies/{id}/OS-ENDPOINT-POLICY/endpoints"),
        &q,
        items,
    )
}

/// The routes this module serves.
pub fn routes() -> Router<AppState> {
    let assoc = |r: Router<AppState>, path: &str, kind: AssociationKind| {
        r.route(
            path,
            put(move |s: State<AppState>, a: Auth, p: Path<Vec<String>>| {
                put_association(kind, s, a, p)
            })
            .get(move |s: State<AppState>, a: Auth, p: Path<Vec<String>>| {
                check_association(kind, s, a, p)
            })
            .delete(move |s: State<AppState>, a: Auth, p: Path<Vec<String>>| {
                delete_association(kind, s, a, p)
            }),
        )
    };
    let r = Router::new()
        .route("/v3/policies", get(list_policies).post(create_policy))
        .route(
            "/v3/policies/{policy_id}",
            get(get_policy).patch(update_policy).delete(delete_policy),
        )
        .route(
            "/v3/policies/{policy_id}/OS-ENDPOINT-POLICY/endpoints",
            get(policy_endpoints),
        );
    let r = assoc(
        r,
        "/v3/policies/{policy_id}/OS-ENDPOINT-POLICY/endpoints/{endpoint_id}",
        AssociationKind::Endpoint,
    );
    let r = assoc(
        r,
        "/v3/policies/{policy_id}/OS-ENDPOINT-POLICY/services/{service_id}",
        AssociationKind::Service,
    );
    assoc(
        r,
        "/v3/policies/{policy_id}/OS-ENDPOINT-POLICY/services/{service_id}/regions/{region_id}",
        AssociationKind::RegionAndService,
    )
}
