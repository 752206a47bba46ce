//! `/v3/limen/oauth_clients`: the OpenID Provider's clients, per domain. Policy targets
//! come from the stored client (its domain), never from the request body.

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
use limen_core::oauth::client::OAuthClient;
use limen_proto::oauth::{oauth_client, oauth_client_create, oauth_client_update};
use serde_json::{json, Value};

fn client_target(c: &OAuthClient) -> Value {
    target(
        json!({"oauth_client": {"id": c.id, "domain_id": c.domain_id}}),
        &[],
    )
}

/// The stored client, once the caller may `action` it.
async fn checked(
    s: &AppState,
    auth: &Auth,
    id: &str,
    action: &str,
) -> ApiResult<(OAuthClient, Authorized)> {
    let c = s.limen.oauth().get_oauth_client(id).await?;
    let proof = authorize(s, auth, action, client_target(&c))?;
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
        "identity:list_oauth_clients",
        target(json!({ "domain_id": domain }), &[]),
    )?;
    let clients = s
        .limen
        .oauth()
        .list_oauth_clients(domain.as_deref())
        .await?;
    let items = clients.iter().map(|c| oauth_client(&l, c, None)).collect();
    Ok(Json(l.collection(
        "oauth_clients",
        "limen/oauth_clients",
        items,
    )))
}

pub async fn get(
    State(s): State<AppState>,
    auth: Auth,
    Base(l): Base,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let (c, _) = checked(&s, &auth, &id, "identity:get_oauth_client").await?;
    Ok(Json(json!({"oauth_client": oauth_client(&l, &c, None)})))
}

pub async fn create(
    State(s): State<AppState>,
    auth: Auth,
    Base(l): Base,
    JsonBody(body): JsonBody,
) -> ApiResult<Response> {
    let (mut new, domain_id) = oauth_client_create(body)?;
    new.domain_id = owning_domain(&auth, domain_id);
    let proof = authorize(
        &s,
        &auth,
        "identity:create_oauth_client",
        target(json!({"oauth_client": {"domain_id": new.domain_id}}), &[]),
    )?;
    let (c, secret) = s.limen.oauth().create_oauth_client(&proof, new).await?;
    tracing::info!(client = %c.id, domain = %c.domain_id, "OAuth client registered");
    Ok(created(
        json!({"oauth_client": oauth_client(&l, &c, secret.as_deref())}),
    ))
}

pub async fn update(
    State(s): State<AppState>,
    auth: Auth,
    Base(l): Base,
    Path(id): Path<String>,
    JsonBody(body): JsonBody,
) -> ApiResult<Json<Value>> {
    let (_, proof) = checked(&s, &auth, &id, "identity:update_oauth_client").await?;
    let patch = oauth_client_update(body)?;
    let c = s
        .limen
        .oauth()
        .update_oauth_client(&proof, &id, patch)
        .await?;
    Ok(Json(json!({"oauth_client": oauth_client(&l, &c, None)})))
}

pub async fn delete(
    State(s): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let (_, proof) = checked(&s, &auth, &id, "identity:delete_oauth_client").await?;
    s.limen.oauth().delete_oauth_client(&proof, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /v3/limen/oauth_clients/{id}/secret`: a new secret, shown once; the old one
/// stops working at once.
pub async fn rotate_secret(
    State(s): State<AppState>,
    auth: Auth,
    Base(l): Base,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let (_, proof) = checked(&s, &auth, &id, "identity:update_oauth_client").await?;
    let (c, secret) = s
        .limen
        .oauth()
        .rotate_oauth_client_secret(&proof, &id)
        .await?;
    tracing::info!(client = %c.id, "OAuth client secret rotated");
    Ok(Json(
        json!({"oauth_client": oauth_client(&l, &c, Some(&secret))}),
    ))
}

/// The routes this module serves.
pub(crate) fn routes() -> axum::Router<crate::state::AppState> {
    use axum::routing;
    axum::Router::new()
        .route("/v3/limen/oauth_clients", routing::get(list).post(create))
        .route(
            "/v3/limen/oauth_clients/{id}",
            routing::get(get).patch(update).delete(delete),
        )
        .route(
            "/v3/limen/oauth_clients/{id}/secret",
            routing::post(rotate_secret),
        )
}
