//! `/v3/users/{user_id}/application_credentials` and `/v3/users/{user_id}/access_rules`.

use crate::authz::{authorize, enforce, refuse_delegated, target, Guarded};
use crate::error::ApiResult;
use crate::extract::{Auth, Base, JsonBody, Path, Query};
use crate::routes::{created, paged};
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::Json;
use limen_core::CoreError;
use limen_proto::{input, render};
use serde_json::{json, Value};

fn owner_target(user_id: &str) -> Value {
    target(json!({"user": {"id": user_id}}), &[("user_id", user_id)])
}

pub async fn create(
    State(s): State<AppState>,
    auth: Auth,
    Base(l): Base,
    Path(user_id): Path<String>,
    JsonBody(body): JsonBody,
) -> ApiResult<Response> {
    let proof = authorize(
        &s,
        &auth,
        "identity:create_application_credential",
        owner_target(&user_id),
    )?;
    refuse_delegated(&auth.caller.token, Guarded::ApplicationCredentials)?;
    let input = input::application_credential_create(body)?;
    let c = s
        .limen
        .delegation()
        .create_application_credential(&proof, &auth.caller.token, &user_id, input)
        .await?;
    Ok(created(
        json!({"application_credential": render::application_credential(
            &l,
            &c.credential,
            &c.roles,
            &c.access_rules,
            Some(&c.secret),
        )}),
    ))
}

pub async fn list(
    State(s): State<AppState>,
    auth: Auth,
    Base(l): Base,
    Path(user_id): Path<String>,
    q: Query,
) -> ApiResult<Json<Value>> {
    enforce(
        &s,
        &auth.caller.token,
        "identity:list_application_credentials",
        owner_target(&user_id),
    )?;
    refuse_delegated(&auth.caller.token, Guarded::ApplicationCredentials)?;
    let creds = s
        .limen
        .delegation()
        .list_application_credentials(&user_id, q.get("name"))
        .await?;
    let mut items = Vec::with_capacity(creds.len());
    for c in &creds {
        let (roles, rules) = s
            .limen
            .delegation()
            .application_credential_details(c)
            .await?;
        items.push(render::application_credential(&l, c, &roles, &rules, None));
    }
    paged(
        &s,
        &l,
        "application_credentials",
        &format!("users/{user_id}/application_credentials"),
        &q,
        items,
    )
}

/// A credential of `user_id`; another user's credential is "not found".
async fn owned(
    s: &AppState,
    user_id: &str,
    id: &str,
) -> ApiResult<limen_core::model::ApplicationCredential> {
    let c = s.limen.delegation().get_application_credential(id).await?;
    if c.user_id != user_id {
        return Err(CoreError::not_found("application credential", id).into());
    }
    Ok(c)
}

pub async fn get(
    State(s): State<AppState>,
    auth: Auth,
    Base(l): Base,
    Path((user_id, id)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    enforce(
        &s,
        &auth.caller.token,
        "identity:get_application_credential",
        owner_target(&user_id),
    )?;
    refuse_delegated(&auth.caller.token, Guarded::ApplicationCredentials)?;
    let c = owned(&s, &user_id, &id).await?;
    let (roles, rules) = s
        .limen
        .delegation()
        .application_credential_details(&c)
        .await?;
    Ok(Json(
        json!({"application_credential": render::application_credential(&l, &c, &roles, &rules, None)}),
    ))
}

pub async fn delete(
    State(s): State<AppState>,
    auth: Auth,
    Path((user_id, id)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let proof = authorize(
        &s,
        &auth,
        "identity:delete_application_credential",
        owner_target(&user_id),
    )?;
    refuse_delegated(&auth.caller.token, Guarded::ApplicationCredentials)?;
    owned(&s, &user_id, &id).await?;
    s.limen
        .delegation()
        .delete_application_credential(&proof, &auth.caller.token, &id)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn list_access_rules(
    State(s): State<AppState>,
    auth: Auth,
    Base(l): Base,
    Path(user_id): Path<String>,
    q: Query,
) -> ApiResult<Json<Value>> {
    enforce(
        &s,
        &auth.caller.token,
        "identity:list_access_rules",
        owner_target(&user_id),
    )?;
    refuse_delegated(&auth.caller.token, Guarded::ApplicationCredentials)?;
    let rules = s.limen.delegation().list_access_rules(&user_id).await?;
    let items = rules.iter().map(|r| render::access_rule(&l, r)).collect();
    paged(
        &s,
        &l,
        "access_rules",
        &format!("users/{user_id}/access_rules"),
        &q,
        items,
    )
}

pub async fn get_access_rule(
    State(s): State<AppState>,
    auth: Auth,
    Base(l): Base,
    Path((user_id, id)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    enforce(
        &s,
        &auth.caller.token,
        "identity:get_access_rule",
        owner_target(&user_id),
    )?;
    refuse_delegated(&auth.caller.token, Guarded::ApplicationCredentials)?;
    let r = s.limen.delegation().get_access_rule(&user_id, &id).await?;
    Ok(Json(json!({"access_rule": render::access_rule(&l, &r)})))
}

pub async fn delete_access_rule(
    State(s): State<AppState>,
    auth: Auth,
    Path((user_id, id)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let proof = authorize(
        &s,
        &auth,
        "identity:delete_access_rule",
        owner_target(&user_id),
    )?;
    refuse_delegated(&auth.caller.token, Guarded::ApplicationCredentials)?;
    s.limen
        .delegation()
        .delete_access_rule(&proof, &user_id, &id)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The routes this module serves.
pub(crate) fn routes() -> axum::Router<crate::state::AppState> {
    use axum::routing;
    axum::Router::new()
        .route(
            "/v3/users/{user_id}/application_credentials",
            routing::get(list).post(create),
        )
        .route(
            "/v3/users/{user_id}/application_credentials/{application_credential_id}",
            routing::get(get).delete(delete),
        )
        .route(
            "/v3/users/{user_id}/access_rules",
            routing::get(list_access_rules),
        )
        .route(
            "/v3/users/{user_id}/access_rules/{access_rule_id}",
            routing::get(get_access_rule).delete(delete_access_rule),
        )
}
