//! Limen's OpenID Provider endpoints under `/oauth2/` (see `docs/oidc.md`). So far the
//! signing keys' JWK set; the grants follow.

use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;

/// `GET /oauth2/jwks`: the public keys of every slot kept (staged, primary, retired), so
/// a relying party knows a key before it signs and until its last token expires.
pub async fn jwks(State(state): State<AppState>) -> ApiResult<Response> {
    let Some(keys) = state.oidc_keys.current() else {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "The OpenID Provider has no signing keys: run `limen keys oidc setup`.",
        ));
    };
    let mut resp = Json(keys.jwk_set()).into_response();
    // Relying parties may cache it briefly: a new key is published a rotation before it
    // signs, and an unknown kid makes them fetch the set again.
    resp.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    Ok(resp)
}
