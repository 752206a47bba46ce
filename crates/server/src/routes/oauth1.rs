//! The OAuth1 delegation flow (`OS-OAUTH1`, consumers are in `consumers`): request
//! tokens, their authorization, access tokens, and a user's access tokens under
//! `/v3/users/{user_id}/OS-OAUTH1/access_tokens`.
//!
//! Where Keystone answers 500 (a request without an `Authorization` header), Limen
//! answers 401.

use crate::authz::{self, refuse_delegated, target, Guarded};
use crate::error::{ApiError, ApiResult};
use crate::extract::{limited_login, root_url, unauthorized, Auth, Base, ClientAddr, JsonBody};
use crate::extract::{Path, Query};
use crate::routes::paged;
use crate::state::AppState;
use axum::body::Body;
use axum::extract::{OriginalUri, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::Json;
use axum::Router;
use limen_core::authz::Authorized;
use limen_core::delegation::oauth1::{SignedRequest, TokenGrant};
use limen_proto::oauth1 as wire;
use serde_json::{json, Value};

const FORM: &str = "application/x-www-form-urlencoded";

fn is_form(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|ct| ct.split(';').next())
        .is_some_and(|ct| ct.trim().eq_ignore_ascii_case(FORM))
}

/// A form-encoded body (its parameters are signed too); other bodies are not read.
async fn form_body(s: &AppState, headers: &HeaderMap, body: Body) -> ApiResult<Option<String>> {
    if !is_form(headers) {
        return Ok(None);
    }
    let bytes = axum::body::to_bytes(body, s.config.max_request_body_size)
        .await
        .map_err(|_| ApiError::too_large())?;
    String::from_utf8(bytes.to_vec())
        .map(Some)
        .map_err(|_| ApiError::bad_request("The form-encoded request body is not UTF-8."))
}

/// The request as an OAuth1 client signed it: the `Authorization: OAuth …` parameters,
/// the query and form parameters, and the URIs the client may have signed. Those are
/// this server's public URL (or, without one, `http://` and the Host header) with the
/// request path, as Keystone rebuilds them, and with a public URL also its scheme with
/// the Host header. `Ok(None)` without an OAuth Authorization header.
pub(crate) fn signed_request(
    s: &AppState,
    method: &Method,
    headers: &HeaderMap,
    uri: &Uri,
    form: Option<&str>,
) -> ApiResult<Option<SignedRequest>> {
    let Some(h) = headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let h = h
        .to_str()
        .map_err(|_| ApiError::bad_request("The Authorization header is not ASCII."))?;
    let Some(oauth) = wire::authorization_params(h)? else {
        return Ok(None);
    };
    let mut params = wire::form_params(uri.query().unwrap_or(""))?;
    if let Some(f) = form {
        params.extend(wire::form_params(f)?);
    }
    let path = uri.path();
    let mut uris = vec![format!("{}{path}", root_url(s, headers))];
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    if let (Some(public), Some(host)) = (&s.config.public_url, host) {
        if let Some((scheme, _)) = public.split_once("://") {
            let u = format!("{scheme}://{host}{path}");
            if !uris.contains(&u) {
                uris.push(u);
            }
        }
    }
    Ok(Some(SignedRequest {
        method: method.as_str().to_string(),
        uris,
        oauth,
        params,
    }))
}

fn grant_response(g: &TokenGrant) -> Response {
    let mut resp = (StatusCode::CREATED, wire::token_grant(g)).into_response();
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(FORM));
    resp
}

/// `POST /v3/OS-OAUTH1/request_token` (signed with the consumer's secret;
/// `Requested-Project-Id` names the project).
pub async fn request_token(
    State(s): State<AppState>,
    addr: ClientAddr,
    method: Method,
    headers: HeaderMap,
    OriginalUri(uri): OriginalUri,
    body: Body,
) -> ApiResult<Response> {
    let form = form_body(&s, &headers, body).await?;
    let signed = signed_request(&s, &method, &headers, &uri, form.as_deref())?
        .ok_or_else(|| unauthorized(&s, &headers))?;
    let project = headers
        .get("requested-project-id")
        .and_then(|v| v.to_str().ok())
        .map(str::trim);
    let grant = limited_login(&s, &addr, async {
        Ok(s.limen
            .delegation()
            .create_request_token(&signed, project)
            .await?)
    })
    .await?;
    tracing::info!(request_token = %grant.key, "OAuth1 request token created");
    Ok(grant_response(&grant))
}

/// `POST /v3/OS-OAUTH1/access_token` (signed with the consumer's and the request
/// token's secrets, with `oauth_token` and `oauth_verifier`).
pub async fn access_token(
    State(s): State<AppState>,
    addr: ClientAddr,
    method: Method,
    headers: HeaderMap,
    OriginalUri(uri): OriginalUri,
    body: Body,
) -> ApiResult<Response> {
    let form = form_body(&s, &headers, body).await?;
    let signed = signed_request(&s, &method, &headers, &uri, form.as_deref())?
        .ok_or_else(|| unauthorized(&s, &headers))?;
    let grant = limited_login(&s, &addr, async {
        Ok(s.limen.delegation().create_access_token(&signed).await?)
    })
    .await?;
    tracing::info!(access_token = %grant.key, "OAuth1 access token created");
    Ok(grant_response(&grant))
}

/// `PUT /v3/OS-OAUTH1/authorize/{request_token_id}`
pub async fn authorize(
    State(s): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
    JsonBody(body): JsonBody,
) -> ApiResult<Json<Value>> {
    let proof = authz::authorize(
        &s,
        &auth,
        "identity:authorize_request_token",
        target(json!({}), &[("request_token_id", &id)]),
    )?;
    let roles = wire::authorize_roles(body)?;
    let verifier = s
        .limen
        .delegation()
        .authorize_request_token(&proof, &auth.caller.token, &id, &roles)
        .await?;
    Ok(Json(json!({"token": {"oauth_verifier": verifier}})))
}

// ---- /v3/users/{user_id}/OS-OAUTH1/access_tokens ----

/// The policy check, then no delegated token (a delegation must not manage others).
fn allow(s: &AppState, auth: &Auth, action: &str, args: &[(&str, &str)]) -> ApiResult<Authorized> {
    let proof = authz::authorize(s, auth, action, target(json!({}), args))?;
    refuse_delegated(&auth.caller.token, Guarded::OAuthAccessTokens)?;
    Ok(proof)
}

pub async fn list_access_tokens(
    State(s): State<AppState>,
    auth: Auth,
    Base(l): Base,
    q: Query,
    Path(user_id): Path<String>,
) -> ApiResult<Json<Value>> {
    allow(
        &s,
        &auth,
        "identity:list_access_tokens",
        &[("user_id", &user_id)],
    )?;
    let items = s
        .limen
        .delegation()
        .list_access_tokens(&user_id)
        .await?
        .iter()
        .map(|t| wire::access_token(&l, t))
        .collect();
    paged(
        &s,
        &l,
        "access_tokens",
        &format!("users/{user_id}/OS-OAUTH1/access_tokens"),
        &q,
        items,
    )
}

pub async fn get_access_token(
    State(s): State<AppState>,
    auth: Auth,
    Base(l): Base,
    Path((user_id, id)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    allow(
        &s,
        &auth,
        "identity:get_access_token",
        &[("user_id", &user_id), ("access_token_id", &id)],
    )?;
    let t = s.limen.delegation().get_access_token(&user_id, &id).await?;
    Ok(Json(json!({"access_token": wire::access_token(&l, &t)})))
}

/// Revokes an access token. Keystone checks `identity:ec2_delete_credential` here (a
/// slip); Limen checks the rule named for it.
pub async fn delete_access_token(
    State(s): State<AppState>,
    auth: Auth,
    Path((user_id, id)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let proof = allow(
        &s,
        &auth,
        "identity:delete_access_token",
        &[("user_id", &user_id), ("access_token_id", &id)],
    )?;
    s.limen
        .delegation()
        .delete_access_token(&proof, &user_id, &id)
        .await?;
    tracing::info!(access_token = %id, "OAuth1 access token revoked");
    Ok(StatusCode::NO_CONTENT)
}

pub async fn list_access_token_roles(
    State(s): State<AppState>,
    auth: Auth,
    Base(l): Base,
    q: Query,
    Path((user_id, id)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    allow(
        &s,
        &auth,
        "identity:list_access_token_roles",
        &[("user_id", &user_id), ("access_token_id", &id)],
    )?;
    let items = s
        .limen
        .delegation()
        .access_token_roles(&user_id, &id)
        .await?
        .iter()
        .map(|r| wire::access_token_role(&l, r))
        .collect();
    paged(
        &s,
        &l,
        "roles",
        &format!("users/{user_id}/OS-OAUTH1/access_tokens/{id}/roles"),
        &q,
        items,
    )
}

pub async fn get_access_token_role(
    State(s): State<AppState>,
    auth: Auth,
    Base(l): Base,
    Path((user_id, id, role_id)): Path<(String, String, String)>,
) -> ApiResult<Json<Value>> {
    allow(
        &s,
        &auth,
        "identity:get_access_token_role",
        &[
            ("user_id", &user_id),
            ("access_token_id", &id),
            ("role_id", &role_id),
        ],
    )?;
    let r = s
        .limen
        .delegation()
        .access_token_role(&user_id, &id, &role_id)
        .await?;
    Ok(Json(json!({"role": wire::access_token_role(&l, &r)})))
}

/// The OAuth1 delegation flow's routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v3/OS-OAUTH1/request_token", post(request_token))
        .route("/v3/OS-OAUTH1/access_token", post(access_token))
        .route("/v3/OS-OAUTH1/authorize/{request_token_id}", put(authorize))
        .route(
            "/v3/users/{user_id}/OS-OAUTH1/access_tokens",
            get(list_access_tokens),
        )
        .route(
            "/v3/users/{user_id}/OS-OAUTH1/access_tokens/{access_token_id}",
            get(get_access_token).delete(delete_access_token),
        )
        .route(
            "/v3/users/{user_id}/OS-OAUTH1/access_tokens/{access_token_id}/roles",
            get(list_access_token_roles),
        )
        .route(
            "/v3/users/{user_id}/OS-OAUTH1/access_tokens/{access_token_id}/roles/{role_id}",
            get(get_access_token_role),
        )
}
