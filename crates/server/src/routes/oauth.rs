//! Limen's OpenID Provider endpoints under `/oauth2/` (see `docs/oidc.md`): the signing
//! keys' JWK set and the token endpoint. Errors are RFC 6749 §5.2 JSON bodies.

use crate::error::{ApiError, ApiResult};
use crate::extract::{form_urlencoded_pairs, percent_decode, read_body, ClientAddr};
use crate::state::AppState;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::Engine;
use limen_core::oauth_client::GRANT_CLIENT_CREDENTIALS;
use limen_core::oauth_grant::OAuthError;
use limen_crypto::oidc_keys::SigningAlg;
use serde_json::json;
use std::collections::HashMap;

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

/// `GET /.well-known/oauth-authorization-server` (RFC 8414): where the endpoints are and
/// what they support, for the grants Limen serves so far. The OpenID Connect document
/// (`openid-configuration`) follows with the authorization endpoint it requires.
pub async fn authorization_server_metadata(State(state): State<AppState>) -> ApiResult<Response> {
    let Some(issuer) = &state.config.oidc.issuer else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "The OpenID Provider is not set up: [oidc] issuer.",
        ));
    };
    let mut resp = Json(json!({
        "issuer": issuer,
        "token_endpoint": format!("{issuer}/oauth2/token"),
        "jwks_uri": format!("{issuer}/oauth2/jwks"),
        "grant_types_supported": [GRANT_CLIENT_CREDENTIALS],
        "response_types_supported": [],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
    }))
    .into_response();
    resp.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    Ok(resp)
}

/// An RFC 6749 error response; `basic` when the client authenticated with HTTP Basic
/// (then a failed client authentication is a 401 with a challenge).
fn oauth_error(e: &OAuthError, basic: bool) -> Response {
    let status = match e {
        OAuthError::InvalidClient(_) => StatusCode::UNAUTHORIZED,
        OAuthError::TemporarilyUnavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::BAD_REQUEST,
    };
    let mut resp = (
        status,
        Json(json!({"error": e.code(), "error_description": e.to_string()})),
    )
        .into_response();
    let h = resp.headers_mut();
    no_store(h);
    if matches!(e, OAuthError::InvalidClient(_)) && basic {
        h.insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"limen\""),
        );
    }
    resp
}

/// Token responses must not be cached (RFC 6749 §5.1).
fn no_store(h: &mut HeaderMap) {
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
}

/// A token request's form: each parameter at most once (RFC 6749 §3.2), empty values
/// treated as absent.
fn form(headers: &HeaderMap, body: &[u8]) -> Result<HashMap<String, String>, OAuthError> {
    let form_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|t| {
            t.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        });
    if !form_type {
        return Err(OAuthError::InvalidRequest(
            "The request must be application/x-www-form-urlencoded.".into(),
        ));
    }
    let text = std::str::from_utf8(body)
        .map_err(|_| OAuthError::InvalidRequest("The request body is not UTF-8.".into()))?;
    let mut params = HashMap::new();
    for (k, v) in form_urlencoded_pairs(text) {
        if v.is_empty() {
            continue;
        }
        if params.insert(k.clone(), v).is_some() {
            return Err(OAuthError::InvalidRequest(format!(
                "The parameter {k} is given more than once."
            )));
        }
    }
    Ok(params)
}

/// The client's credentials: HTTP Basic (each half form-encoded, RFC 6749 §2.3.1) or
/// `client_id` and `client_secret` in the body; never both. Returns (id, secret).
fn client_credentials(
    headers: &HeaderMap,
    params: &HashMap<String, String>,
) -> Result<(String, Option<String>), OAuthError> {
    let basic = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .filter(|v| v.len() > 6 && v[..6].eq_ignore_ascii_case("basic "))
        .map(|v| &v[6..]);
    let Some(encoded) = basic else {
        let id = params
            .get("client_id")
            .cloned()
            .ok_or_else(|| OAuthError::InvalidClient("The client did not authenticate.".into()))?;
        return Ok((id, params.get("client_secret").cloned()));
    };
    if params.contains_key("client_secret") {
        return Err(OAuthError::InvalidRequest(
            "Use one client authentication method, not both.".into(),
        ));
    }
    let bad = || OAuthError::InvalidClient("Malformed HTTP Basic client credentials.".into());
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .map_err(|_| bad())?;
    let decoded = String::from_utf8(decoded).map_err(|_| bad())?;
    let (id, secret) = decoded.split_once(':').ok_or_else(bad)?;
    let (id, secret) = (percent_decode(id), percent_decode(secret));
    if params
        .get("client_id")
        .is_some_and(|body_id| *body_id != id)
    {
        return Err(OAuthError::InvalidRequest(
            "client_id differs from the authenticated client.".into(),
        ));
    }
    Ok((id, Some(secret)))
}

/// `POST /oauth2/token`.
pub async fn token(State(state): State<AppState>, addr: ClientAddr, req: Request) -> Response {
    let (headers, body) = match form_request(&state, req).await {
        Ok(r) => r,
        Err(resp) => return resp,
    };
    let basic = used_basic(&headers);
    match grant(&state, &addr, &headers, &body).await {
        Ok(resp) => resp,
        Err(e) => oauth_error(&e, basic),
    }
}

async fn grant(
    state: &AppState,
    addr: &ClientAddr,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Response, OAuthError> {
    let (Some(issuer), Some(keys)) = (&state.config.oidc.issuer, state.oidc_keys.current()) else {
        return Err(OAuthError::TemporarilyUnavailable(
            "The OpenID Provider is not set up: [oidc] issuer and `limen keys oidc setup`.".into(),
        ));
    };
    let params = form(headers, body)?;
    let grant_type = params
        .get("grant_type")
        .ok_or_else(|| OAuthError::InvalidRequest("grant_type is required.".into()))?;
    if grant_type != GRANT_CLIENT_CREDENTIALS {
        return Err(OAuthError::UnsupportedGrantType(format!(
            "The grant type {grant_type:?} is not supported."
        )));
    }
    let (client_id, secret) = client_credentials(headers, &params)?;
    let lifetime = i64::try_from(state.config.oidc.access_token_lifetime).unwrap_or(3600);
    let scope = params.get("scope").map(String::as_str);
    let claims = limited(state, addr, async {
        let limen = &state.limen;
        let found = limen.find_oauth_client(&client_id).await?;
        match (found, secret.as_deref()) {
            // Not a registered client, but a secret: a Keystone application credential.
            (None, Some(secret)) => {
                limen
                    .application_credential_claims(&client_id, secret, scope, issuer, lifetime)
                    .await
            }
            (found, secret) => {
                let client = limen.authenticate_found_client(found, secret).await?;
                limen.client_credentials_claims(&client, scope, issuer, lifetime)
            }
        }
    })
    .await?;
    let token = keys
        .primary
        .sign(SigningAlg::RS256, "at+jwt", &claims)
        .map_err(|e| {
            tracing::error!(error = %e, "cannot sign an access token");
            OAuthError::TemporarilyUnavailable("The server cannot sign tokens right now.".into())
        })?;
    tracing::info!(client = %claims.client_id, sub = %claims.sub, grant = %grant_type, "OAuth token issued");
    let mut resp = Json(json!({
        "access_token": token,
        "token_type": "Bearer",
        "expires_in": claims.exp - claims.iat,
    }))
    .into_response();
    no_store(resp.headers_mut());
    Ok(resp)
}

/// Reads the form of an introspection or revocation request and authenticates its
/// caller, a registered OAuth client: the form and the client.
async fn client_request(
    state: &AppState,
    addr: &ClientAddr,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<
    (
        HashMap<String, String>,
        limen_core::oauth_client::OAuthClient,
    ),
    OAuthError,
> {
    if state.config.oidc.issuer.is_none() {
        return Err(OAuthError::TemporarilyUnavailable(
            "The OpenID Provider is not set up: [oidc] issuer.".into(),
        ));
    }
    let params = form(headers, body)?;
    let (client_id, secret) = client_credentials(headers, &params)?;
    let client = limited(state, addr, async {
        state
            .limen
            .authenticate_oauth_client(&client_id, secret.as_deref())
            .await
    })
    .await?;
    Ok((params, client))
}

/// The verified claims of the `token` parameter, if it is an access token Limen signed.
fn verified_access_token(
    state: &AppState,
    params: &HashMap<String, String>,
) -> Option<serde_json::Value> {
    let issuer = state.config.oidc.issuer.as_deref()?;
    let token = params.get("token")?;
    state
        .oidc_keys
        .current()?
        .verify_access_token(token, issuer)
}

/// `POST /oauth2/introspect` (RFC 7662), for confidential clients: `{"active": false}`
/// for anything but a live access token Limen signed, else its claims.
pub async fn introspect(State(state): State<AppState>, addr: ClientAddr, req: Request) -> Response {
    let (headers, body) = match form_request(&state, req).await {
        Ok(r) => r,
        Err(resp) => return resp,
    };
    let basic = used_basic(&headers);
    let answer = async {
        let (params, client) = client_request(&state, &addr, &headers, &body).await?;
        if !client.is_confidential() {
            return Err(OAuthError::UnauthorizedClient(
                "Only a confidential client may introspect tokens.".into(),
            ));
        }
        if !params.contains_key("token") {
            return Err(OAuthError::InvalidRequest("token is required.".into()));
        }
        let claims = match verified_access_token(&state, &params) {
            Some(c) if state.limen.access_token_active(&c).await? => c,
            _ => return Ok(json!({"active": false})),
        };
        let mut answer = claims;
        answer["active"] = json!(true);
        answer["token_type"] = json!("Bearer");
        Ok(answer)
    };
    match answer.await {
        Ok(v) => {
            let mut resp = Json(v).into_response();
            no_store(resp.headers_mut());
            resp
        }
        Err(e) => oauth_error(&e, basic),
    }
}

/// `POST /oauth2/revoke` (RFC 7009): a client revokes an access token issued to it.
/// 200 whatever the token was (unknown, expired, another client's: nothing happens), so
/// the answer tells nothing about other clients' tokens.
pub async fn revoke(State(state): State<AppState>, addr: ClientAddr, req: Request) -> Response {
    let (headers, body) = match form_request(&state, req).await {
        Ok(r) => r,
        Err(resp) => return resp,
    };
    let basic = used_basic(&headers);
    let done = async {
        let (params, client) = client_request(&state, &addr, &headers, &body).await?;
        if !params.contains_key("token") {
            return Err(OAuthError::InvalidRequest("token is required.".into()));
        }
        if let Some(claims) = verified_access_token(&state, &params) {
            if claims["client_id"].as_str() == Some(client.id.as_str()) {
                state.limen.revoke_access_token(&claims).await?;
                tracing::info!(client = %client.id, "OAuth access token revoked");
            }
        }
        Ok(())
    };
    match done.await {
        Ok(()) => {
            let mut resp = StatusCode::OK.into_response();
            no_store(resp.headers_mut());
            resp
        }
        Err(e) => oauth_error(&e, basic),
    }
}

/// The headers and body of a form request (within the body size limit).
async fn form_request(
    state: &AppState,
    req: Request,
) -> Result<(HeaderMap, axum::body::Bytes), Response> {
    let headers = req.headers().clone();
    match read_body(req, state.config.max_request_body_size).await {
        Ok(b) => Ok((headers, b)),
        Err(e) => Err(e.into_response()),
    }
}

/// Whether the client tried HTTP Basic authentication.
fn used_basic(headers: &HeaderMap) -> bool {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.len() > 6 && v[..6].eq_ignore_ascii_case("basic "))
}

/// A client-authenticating step under the failed-login limit of the caller's address, as
/// password logins are: refused while the address is over the limit, and a failed client
/// authentication counts against it.
async fn limited<T>(
    state: &AppState,
    addr: &ClientAddr,
    attempt: impl std::future::Future<Output = Result<T, OAuthError>>,
) -> Result<T, OAuthError> {
    let (Some(limiter), Some(ip)) = (&state.login_limiter, addr.0) else {
        return attempt.await;
    };
    if limiter.check(ip, std::time::Instant::now()).is_err() {
        return Err(OAuthError::InvalidClient(
            "Too many failed authentication attempts from this address; try again later.".into(),
        ));
    }
    let result = attempt.await;
    if matches!(result, Err(OAuthError::InvalidClient(_))) {
        limiter.record_failure(ip, std::time::Instant::now());
    }
    result
}
