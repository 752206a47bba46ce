//! `/v3/OS-TRUST/trusts`

use crate::authz::{authorize, enforce, refuse_delegated, target, Guarded};
use crate::error::ApiResult;
use crate::extract::{Auth, Base, JsonBody, Path, Query};
use crate::routes::{created, paged};
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::Json;
use limen_core::authz::Authorized;
use limen_core::model::Trust;
use limen_proto::{input, render};
use serde_json::{json, Value};

fn trust_target(t: &Trust) -> Value {
    target(
        json!({"trust": {"id": t.id, "trustor_user_id": t.trustor_user_id, "trustee_user_id": t.trustee_user_id}}),
        &[("trust_id", &t.id)],
    )
}

async fn checked(
    s: &AppState,
    auth: &Auth,
    id: &str,
    action: &str,
) -> ApiResult<(Trust, Authorized)> {
    let t = s.limen.delegation().get_trust(id).await?;
    let proof = authorize(s, auth, action, trust_target(&t))?;
    refuse_delegated(&auth.caller.token, Guarded::Trusts)?;
    Ok((t, proof))
}

pub async fn create(
    State(s): State<AppState>,
    auth: Auth,
    Base(l): Base,
    JsonBody(body): JsonBody,
) -> ApiResult<Response> {
    let raw = body.get("trust").cloned().unwrap_or(Value::Null);
    refuse_delegated(&auth.caller.token, Guarded::Trusts)?;
    let proof = authorize(
        &s,
        &auth,
        "identity:create_trust",
        target(json!({"trust": raw}), &[]),
    )?;
    let (t, roles) = s
        .limen
        .delegation()
        .create_trust(&proof, &auth.caller.token, input::trust_create(body)?)
        .await?;
    Ok(created(
        json!({"trust": render::trust(&l, &t, Some(&roles))}),
    ))
}

pub async fn list(
    State(s): State<AppState>,
    auth: Auth,
    Base(l): Base,
    q: Query,
) -> ApiResult<Json<Value>> {
    let trustor = q.get("trustor_user_id");
    let trustee = q.get("trustee_user_id");
    let (action, t) = match (trustor, trustee) {
        (Some(u), _) => (
            "identity:list_trusts_for_trustor",
            json!({"trust": {"trustor_user_id": u}}),
        ),
        (None, Some(u)) => (
            "identity:list_trusts_for_trustee",
            json!({"trust": {"trustee_user_id": u}}),
        ),
        (None, None) => ("identity:list_trusts", json!({})),
    };
    enforce(&s, &auth.caller.token, action, target(t, &[]))?;
    refuse_delegated(&auth.caller.token, Guarded::Trusts)?;
    let items = s
        .limen
        .delegation()
        .list_trusts(trustor, trustee)
        .await?
        .iter()
        .map(|t| render::trust(&l, t, None))
        .collect();
    paged(&s, &l, "trusts", "OS-TRUST/trusts", &q, items)
}

pub async fn get(
    State(s): State<AppState>,
    auth: Auth,
    Base(l): Base,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let (t, _) = checked(&s, &auth, &id, "identity:get_trust").await?;
    let roles = s.limen.delegation().trust_roles(&t).await?;
    Ok(Json(json!({"trust": render::trust(&l, &t, Some(&roles))})))
}

pub async fn delete(
    State(s): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let (_, proof) = checked(&s, &auth, &id, "identity:delete_trust").await?;
    s.limen
        .delegation()
        .delete_trust(&proof, &auth.caller.token, &id)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn roles(
    State(s): State<AppState>,
    auth: Auth,
    Base(l): Base,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let (t, _) = checked(&s, &auth, &id, "identity:list_roles_for_trust").await?;
    let roles = s.limen.delegation().trust_roles(&t).await?;
    Ok(Json(l.collection(
        "roles",
        &format!("OS-TRUST/trusts/{id}/roles"),
        roles.iter().map(|r| render::role(&l, r)).collect(),
    )))
}

pub async fn role(
    State(s): State<AppState>,
    auth: Auth,
    Base(l): Base,
    Path((id, role_id)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    let (t, _) = checked(&s, &auth, &id, "identity:get_role_for_trust").await?;
    let r = s
        .limen
        .delegation()
        .trust_roles(&t)
        .await?
        .into_iter()
        .find(|r| r.id == role_id)
        .ok_or_else(|| limen_core::CoreError::not_found("role", &role_id))?;
    Ok(Json(json!({"role": render::role(&l, &r)})))
}

/// The routes this module serves.
pub(crate) fn routes() -> axum::Router<crate::state::AppState> {
    use axum::routing;
    axum::Router::new()
        .route("/v3/OS-TRUST/trusts", routing::get(list).post(create))
        .route(
            "/v3/OS-TRUST/trusts/{trust_id}",
            routing::get(get).delete(delete),
        )
        .route("/v3/OS-TRUST/trusts/{trust_id}/roles", routing::get(roles))
        .route(
            "/v3/OS-TRUST/trusts/{trust_id}/roles/{role_id}",
            routing::get(role),
        )
}
