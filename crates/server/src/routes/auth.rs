//! `/v3/auth/*`: issuing, validating and revoking tokens, and what a token gives access to.

use crate::authz::{authorize, enforce, target};
use crate::error::{ApiError, ApiResult};
use crate::extract::{limited_login, Auth, Base, ClientAddr, JsonBody, Query};
use crate::state::AppState;
use axum::body::Bytes;
use axum::extract::{OriginalUri, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use limen_core::authz::Authorized;
use limen_core::model::Target;
use limen_core::token::auth::{ResolvedScope, TokenInfo};
use limen_core::token::validation_cache::Dependency;
use limen_proto::{input, render};
use serde_json::{json, Value};
use std::sync::Arc;

const SUBJECT_TOKEN: &str = "x-subject-token";
const ACCESS_RULES_HEADER: &str = "openstack-identity-access-rules";

pub(crate) async fn token_response(
    state: &AppState,
    info: &TokenInfo,
    token_id: &str,
    nocatalog: bool,
    status: StatusCode,
) -> ApiResult<Response> {
    let body = token_body(state, info, nocatalog).await?;
    Ok(json_with_subject(status, body, token_id))
}

/// A token's body, serialized: what it names, its catalog (unless `nocatalog` or
/// unscoped) and the enabled service providers.
async fn token_body(state: &AppState, info: &TokenInfo, nocatalog: bool) -> ApiResult<Bytes> {
    let catalog = if nocatalog || matches!(info.scope, ResolvedScope::Unscoped) {
        None
    } else {
        Some(
            state
                .limen
                .catalog()
                .token_catalog(info.project_id())
                .await?,
        )
    };
    let mut body = render::token(info, catalog.as_ref().map(|c| c.as_slice()));
    // Every token lists the enabled service providers (Keystone-to-Keystone federation).
    let sps = state.limen.federation().enabled_service_providers().await?;
    if !sps.is_empty() {
        body["token"]["service_providers"] = sps
            .iter()
            .map(limen_proto::federation::service_provider_in_token)
            .collect();
    }
    serde_json::to_vec(&body)
        .map(Bytes::from)
        .map_err(|e| limen_core::CoreError::Internal(e.to_string()).into())
}

fn json_with_subject(status: StatusCode, body: Bytes, token_id: &str) -> Response {
    let mut resp = (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response();
    if let Ok(v) = HeaderValue::from_str(token_id) {
        resp.headers_mut().insert(SUBJECT_TOKEN, v);
    }
    resp
}

/// `POST /v3/auth/tokens`
pub async fn issue(
    State(state): State<AppState>,
    addr: ClientAddr,
    method: Method,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    q: Query,
    JsonBody(body): JsonBody,
) -> ApiResult<Response> {
    if body.is_null() {
        return Err(ApiError::expecting("auth in request body"));
    }
    let mut req = input::auth_request(body)?;
    req.receipt = headers
        .get("openstack-auth-receipt")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    if req
        .methods
        .iter()
        .any(|m| m == limen_core::delegation::oauth1::OAUTH1_METHOD)
    {
        req.oauth1 = crate::routes::oauth1::signed_request(&state, &method, &headers, &uri, None)?;
    }
    let issued = limited_login(&state, &addr, async {
        Ok(state.limen.token().authenticate(req).await?)
    })
    .await?;
    tracing::info!(user = %issued.info.user.id, "token issued");
    token_response(
        &state,
        &issued.info,
        &issued.id,
        q.flag("nocatalog")?,
        StatusCode::CREATED,
    )
    .await
}

/// Whether the validating service announced (`OpenStack-Identity-Access-Rules`) that it
/// enforces application-credential access rules; without that, a token limited by them
/// does not validate (404), as in Keystone.
fn validator_enforces_rules(headers: &HeaderMap) -> bool {
    limen_core::delegation::access_rules::validator_enforces_rules(
        headers
            .get(ACCESS_RULES_HEADER)
            .and_then(|v| v.to_str().ok()),
    )
}

/// Validates the `X-Subject-Token` and checks the caller may see it. A token limited by
/// access rules validates only if `rules_understood`.
async fn subject(
    state: &AppState,
    auth: &Auth,
    headers: &HeaderMap,
    allow_expired: bool,
    rules_understood: bool,
    action: &str,
) -> ApiResult<(Arc<TokenInfo>, String, Authorized)> {
    let subject = headers
        .get(SUBJECT_TOKEN)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| ApiError::not_found("No token in the request"))?
        .to_string();
    let validated = if rules_understood {
        state
            .limen
            .token()
            .validate_token_with_access_rules(&subject, allow_expired)
            .await
    } else {
        state
            .limen
            .token()
            .validate_token(&subject, allow_expired)
            .await
    };
    let info = validated.map_err(|e| match e {
        limen_core::CoreError::Internal(m) => limen_core::CoreError::Internal(m).into(),
        _ => ApiError::not_found("Failed to validate token"),
    })?;
    let proof = authorize(
        state,
        auth,
        action,
        target(json!({"token": {"user_id": info.user.id}}), &[]),
    )?;
    Ok((info, subject, proof))
}

/// `GET /v3/auth/tokens`. The serialized body is cached with the validation: it is what
/// the token, its catalog and the service providers render to, so it rests on the
/// validation's dependencies and on those two.
pub async fn validate(
    State(state): State<AppState>,
    auth: Auth,
    headers: HeaderMap,
    q: Query,
) -> ApiResult<Response> {
    let allow_expired = q.flag("allow_expired")?;
    let nocatalog = q.flag("nocatalog")?;
    let cache = &state.limen.validations;
    // Taken before the subject is validated, so a change seen from here on rejects
    // the body cached below.
    let ticket = cache.ticket(0);
    let (info, id, _) = subject(
        &state,
        &auth,
        &headers,
        allow_expired,
        validator_enforces_rules(&headers),
        "identity:validate_token",
    )
    .await?;
    let key = format!("{}{id}", if nocatalog { 'n' } else { 'c' });
    let body = match cache.derived(&state.token_bodies, &key) {
        Some(body) => body,
        None => {
            let body = token_body(&state, &info, nocatalog).await?;
            let mut dependencies = info.dependencies();
            dependencies.extend([Dependency::Catalog, Dependency::ServiceProviders]);
            cache.insert_derived(
                &state.token_bodies,
                &key,
                ticket,
                body.clone(),
                dependencies,
            );
            body
        }
    };
    Ok(json_with_subject(StatusCode::OK, body, &id))
}

/// `HEAD /v3/auth/tokens`
pub async fn check(
    State(state): State<AppState>,
    auth: Auth,
    headers: HeaderMap,
    q: Query,
) -> ApiResult<Response> {
    let allow_expired = q.flag("allow_expired")?;
    let (_, id, _) = subject(
        &state,
        &auth,
        &headers,
        allow_expired,
        validator_enforces_rules(&headers),
        "identity:check_token",
    )
    .await?;
    let mut resp = StatusCode::OK.into_response();
    if let Ok(v) = HeaderValue::from_str(&id) {
        resp.headers_mut().insert(SUBJECT_TOKEN, v);
    }
    Ok(resp)
}

/// `DELETE /v3/auth/tokens[?cascade=false]`: as in Keystone 30, revoking a token also
/// revokes the tokens rescoped from it unless `cascade` is false.
pub async fn revoke(
    State(state): State<AppState>,
    auth: Auth,
    headers: HeaderMap,
    q: Query,
) -> ApiResult<StatusCode> {
    let cascade = q.bool("cascade")?.unwrap_or(true);
    // Revoking takes nothing from a token's access rules: a limited token can go too.
    let (info, _, proof) = subject(
        &state,
        &auth,
        &headers,
        false,
        true,
        "identity:revoke_token",
    )
    .await?;
    state
        .limen
        .token()
        .revoke_token(&proof, &info, cascade)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /v3/auth/catalog`
pub async fn catalog(
    State(state): State<AppState>,
    auth: Auth,
    Base(l): Base,
) -> ApiResult<Json<Value>> {
    enforce(
        &state,
        &auth.caller.token,
        "identity:get_auth_catalog",
        target(json!({}), &[]),
    )?;
    if matches!(
        auth.caller.token.scope,
        ResolvedScope::Unscoped | ResolvedScope::System
    ) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "You are not authorized to perform the requested action.",
        ));
    }
    let c = state
        .limen
        .catalog()
        .token_catalog(auth.caller.token.project_id())
        .await?;
    Ok(Json(json!({
        "catalog": render::catalog(&c, auth.caller.token.project_id()),
        "links": {"self": l.url("auth/catalog"), "previous": null, "next": null},
    })))
}

/// `GET /v3/auth/projects`
pub async fn projects(
    State(state): State<AppState>,
    auth: Auth,
    Base(l): Base,
) -> ApiResult<Json<Value>> {
    enforce(
        &state,
        &auth.caller.token,
        "identity:get_auth_projects",
        target(json!({}), &[]),
    )?;
    let projects = state
        .limen
        .assignment()
        .projects_for_user(&auth.caller.token.user.id)
        .await?;
    let mut items = Vec::new();
    for p in projects.iter().filter(|p| p.enabled) {
        if state
            .limen
            .resource()
            .get_domain(&p.domain_id)
            .await
            .map(|d| d.enabled)
            .unwrap_or(false)
        {
            items.push(render::project(&l, p));
        }
    }
    Ok(Json(l.collection("projects", "auth/projects", items)))
}

/// `GET /v3/auth/domains`
pub async fn domains(
    State(state): State<AppState>,
    auth: Auth,
    Base(l): Base,
) -> ApiResult<Json<Value>> {
    enforce(
        &state,
        &auth.caller.token,
        "identity:get_auth_domains",
        target(json!({}), &[]),
    )?;
    let domains = state
        .limen
        .assignment()
        .domains_for_user(&auth.caller.token.user.id)
        .await?;
    let items = domains
        .iter()
        .filter(|d| d.enabled)
        .map(|d| render::domain(&l, d))
        .collect();
    Ok(Json(l.collection("domains", "auth/domains", items)))
}

/// `GET /v3/auth/system`
pub async fn system(
    State(state): State<AppState>,
    auth: Auth,
    Base(l): Base,
) -> ApiResult<Json<Value>> {
    enforce(
        &state,
        &auth.caller.token,
        "identity:get_auth_system",
        target(json!({}), &[]),
    )?;
    let roles = state
        .limen
        .assignment()
        .effective_role_ids(&auth.caller.token.user.id, &Target::System)
        .await?;
    let system: Vec<Value> = if roles.is_empty() {
        vec![]
    } else {
        vec![json!({"all": true})]
    };
    Ok(Json(json!({
        "system": system,
        "links": {"self": l.url("auth/system"), "previous": null, "next": null},
    })))
}

/// The routes this module serves.
pub(crate) fn routes() -> axum::Router<crate::state::AppState> {
    use axum::routing;
    axum::Router::new()
        .route(
            "/v3/auth/tokens",
            routing::post(issue)
                .get(validate)
                .head(check)
                .delete(revoke),
        )
        .route("/v3/auth/catalog", routing::get(catalog))
        .route("/v3/auth/projects", routing::get(projects))
        .route("/v3/auth/domains", routing::get(domains))
        .route("/v3/auth/system", routing::get(system))
}
