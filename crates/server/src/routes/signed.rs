//! `/v3/ec2tokens` and `/v3/s3tokens`: an EC2 or S3 front end (holding an admin or
//! service token) trades a request a user signed with an EC2 credential for a token.

use crate::authz::{enforce, target};
use crate::error::{ApiError, ApiResult};
use crate::extract::{Auth, JsonBody};
use crate::routes::auth::token_response;
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use limen_proto::signed::{signed_credentials, SignedBodyError};
use serde_json::json;

async fn signed_token(
    s: &AppState,
    auth: &Auth,
    body: &serde_json::Value,
    s3: bool,
) -> ApiResult<Response> {
    let action = if s3 {
        "identity:s3tokens_validate"
    } else {
        "identity:ec2tokens_validate"
    };
    enforce(s, &auth.caller.token, action, target(json!({}), &[]))?;
    let creds = signed_credentials(body, s3).map_err(|e| match e {
        SignedBodyError::NoBody => ApiError::bad_request(e.to_string()),
        SignedBodyError::NotSigned => ApiError::unauthorized(),
    })?;
    let issued = s.limen.delegation().authenticate_signed(creds).await?;
    tracing::info!(user = %issued.info.user.id, s3, "token issued for a signed request");
    token_response(s, &issued.info, &issued.id, false, StatusCode::OK).await
}

/// `POST /v3/ec2tokens`: the token is in `X-Subject-Token`.
pub async fn ec2tokens(
    State(s): State<AppState>,
    auth: Auth,
    JsonBody(body): JsonBody,
) -> ApiResult<Response> {
    signed_token(&s, &auth, &body, false).await
}

/// `POST /v3/s3tokens`: the token body only, as Keystone answers it.
pub async fn s3tokens(
    State(s): State<AppState>,
    auth: Auth,
    JsonBody(body): JsonBody,
) -> ApiResult<Response> {
    let mut resp = signed_token(&s, &auth, &body, true).await?;
    resp.headers_mut().remove("x-subject-token");
    Ok(resp)
}

/// The routes this module serves.
pub(crate) fn routes() -> axum::Router<crate::state::AppState> {
    use axum::routing;
    axum::Router::new()
        .route("/v3/ec2tokens", routing::post(ec2tokens))
        .route("/v3/s3tokens", routing::post(s3tokens))
}
