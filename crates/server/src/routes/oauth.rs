//! Limen's OpenID Provider endpoints that speak JSON (see `docs/oidc.md`): metadata, the
//! signing keys' JWK set, the token endpoint, introspection, revocation and userinfo.
//! Errors are RFC 6749 §5.2 (or RFC 6750) JSON bodies. The pages a person sees are in
//! `authorize.rs` and `login.rs`.

use crate::error::{ApiError, ApiResult};
use crate::extract::{form_urlencoded_pairs, percent_decode, read_body, ClientAddr};
use crate::state::AppState;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::Engine;
use limen_core::oauth::authorize::SCOPES;
use limen_core::oauth::client::{
    TokenSigningAlg, GRANT_AUTHORIZATION_CODE, GRANT_CLIENT_CREDENTIALS, GRANT_DEVICE_CODE,
    GRANT_REFRESH_TOKEN, GRANT_TOKEN_EXCHANGE,
};
use limen_core::oauth::exchange::{
    requested_project, SubjectToken, EXCHANGED_TOKEN_TYP, TOKEN_TYPE_ACCESS, TOKEN_TYPE_ID,
    TOKEN_TYPE_JWT,
};
use limen_core::oauth::grant::OAuthError;
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

/// The provider's metadata, served both as OpenID Connect Discovery
/// (`/.well-known/openid-configuration`) and RFC 8414
/// (`/.well-known/oauth-authorization-server`); 404 without `[oidc] issuer`.
pub async fn metadata(State(state): State<AppState>) -> ApiResult<Response> {
    let Some(i) = &state.config.oidc.issuer else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "The OpenID Provider is not set up: [oidc] issuer.",
        ));
    };
    let mut resp = Json(json!({
        "issuer": i,
        "authorization_endpoint": format!("{i}/oauth2/authorize"),
        "token_endpoint": format!("{i}/oauth2/token"),
        "device_authorization_endpoint": format!("{i}/oauth2/device_authorization"),
        "userinfo_endpoint": format!("{i}/oauth2/userinfo"),
        "jwks_uri": format!("{i}/oauth2/jwks"),
        "revocation_endpoint": format!("{i}/oauth2/revoke"),
        "introspection_endpoint": format!("{i}/oauth2/introspect"),
        "end_session_endpoint": format!("{i}/logout"),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "subject_types_supported": ["public"],
        "grant_types_supported": [
            GRANT_AUTHORIZATION_CODE,
            GRANT_REFRESH_TOKEN,
            GRANT_CLIENT_CREDENTIALS,
            GRANT_DEVICE_CODE,
            GRANT_TOKEN_EXCHANGE,
        ],
        "code_challenge_methods_supported": ["S256"],
        "id_token_signing_alg_values_supported": ["RS256", "ES256"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "revocation_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "scopes_supported": SCOPES,
        "claims_supported": [
            "sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "azp", "amr", "name",
            "preferred_username", "email", "email_verified", "groups", "limen", "limen_grant",
        ],
        "request_parameter_supported": false,
        "request_uri_parameter_supported": false,
        "claims_parameter_supported": false,
        "authorization_response_iss_parameter_supported": true,
    }))
    .into_response();
    resp.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    Ok(resp)
}

/// `GET|POST /oauth2/userinfo` (OpenID Connect Core §5.3) with a bearer access token;
/// errors as RFC 6750 says (a challenge in `WWW-Authenticate`).
pub async fn userinfo(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .filter(|v| v.len() > 7 && v[..7].eq_ignore_ascii_case("bearer "))
        .map(|v| v[7..].trim().to_string());
    let answer = async {
        let Some(token) = bearer else {
            return Err(None);
        };
        let params = HashMap::from([("token".to_string(), token)]);
        let claims = verified_access_token(&state, &params).ok_or_else(|| {
            Some(OAuthError::InvalidToken(
                "The access token is malformed, expired or not Limen's.".into(),
            ))
        })?;
        state.limen.oauth().userinfo(&claims).await.map_err(Some)
    };
    match answer.await {
        Ok(v) => {
            let mut resp = Json(v).into_response();
            no_store(resp.headers_mut());
            resp
        }
        Err(e) => {
            let (status, challenge) = match &e {
                None => (
                    StatusCode::UNAUTHORIZED,
                    "Bearer realm=\"limen\"".to_string(),
                ),
                Some(e @ OAuthError::InsufficientScope(_)) => (
                    StatusCode::FORBIDDEN,
                    format!("Bearer realm=\"limen\", error=\"{}\"", e.code()),
                ),
                Some(e @ OAuthError::TemporarilyUnavailable(_)) => {
                    return oauth_error(e, false);
                }
                Some(e) => (
                    StatusCode::UNAUTHORIZED,
                    format!("Bearer realm=\"limen\", error=\"{}\"", e.code()),
                ),
            };
            let body = e.map_or_else(
                || json!({"error": "invalid_request", "error_description": "A bearer access token is required."}),
                |e| json!({"error": e.code(), "error_description": e.to_string()}),
            );
            let mut resp = (status, Json(body)).into_response();
            no_store(resp.headers_mut());
            if let Ok(v) = HeaderValue::from_str(&challenge) {
                resp.headers_mut().insert(header::WWW_AUTHENTICATE, v);
            }
            resp
        }
    }
}

/// An RFC 6749 error response; `basic` when the client authenticated with HTTP Basic
/// (then a failed client authentication is a 401 with a challenge).
fn oauth_error(e: &OAuthError, basic: bool) -> Response {
    let status = match e {
        OAuthError::InvalidClient(_) | OAuthError::InvalidToken(_) => StatusCode::UNAUTHORIZED,
        OAuthError::InsufficientScope(_) => StatusCode::FORBIDDEN,
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
pub(crate) fn form(
    headers: &HeaderMap,
    body: &[u8],
) -> Result<HashMap<String, String>, OAuthError> {
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
            if k == "audience" || k == "resource" {
                return Err(OAuthError::InvalidTarget(
                    "Ask for exactly one audience per token exchange.".into(),
                ));
            }
            return Err(OAuthError::InvalidRequest(format!(
                "The parameter {k} is given more than once."
            )));
        }
    }
    Ok(params)
}

/// The client's credentials: HTTP Basic (each half form-encoded, RFC 6749 §2.3.1) or
/// `client_id` and `client_secret` in the body; never both. Returns (id, secret).
pub(crate) fn client_credentials(
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
    let (Some(_), Some(keys)) = (&state.config.oidc.issuer, state.oidc_keys.current()) else {
        return Err(OAuthError::TemporarilyUnavailable(
            "The OpenID Provider is not set up: [oidc] issuer and `limen keys oidc setup`.".into(),
        ));
    };
    let params = form(headers, body)?;
    let param = |k: &str| params.get(k).map(String::as_str);
    let grant_type = param("grant_type")
        .ok_or_else(|| OAuthError::InvalidRequest("grant_type is required.".into()))?;
    if ![
        GRANT_CLIENT_CREDENTIALS,
        GRANT_AUTHORIZATION_CODE,
        GRANT_REFRESH_TOKEN,
        GRANT_DEVICE_CODE,
        GRANT_TOKEN_EXCHANGE,
    ]
    .contains(&grant_type)
    {
        return Err(OAuthError::UnsupportedGrantType(format!(
            "The grant type {grant_type:?} is not supported."
        )));
    }
    let (client_id, secret) = client_credentials(headers, &params)?;
    let limen = &state.limen;
    let scope = param("scope");
    if grant_type == GRANT_CLIENT_CREDENTIALS {
        let (claims, alg) = limited(state, addr, async {
            let found = limen.oauth().find_oauth_client(&client_id).await?;
            match (found, secret.as_deref()) {
                // Not a registered client, but a secret: a Keystone application credential.
                (None, Some(secret)) => limen
                    .oauth()
                    .application_credential_claims(&client_id, secret, scope)
                    .await
                    .map(|c| (c, TokenSigningAlg::default())),
                (found, secret) => {
                    let client = limen
                        .oauth()
                        .authenticate_found_client(found, secret)
                        .await?;
                    limen
                        .oauth()
                        .client_credentials_claims(&client, scope)
                        .map(|c| (c, client.token_signing_alg))
                }
            }
        })
        .await?;
        let token = sign(&keys, alg, "at+jwt", &claims)?;
        tracing::info!(client = %claims.client_id, sub = %claims.sub, grant = %grant_type, "OAuth token issued");
        return Ok(token_response(json!({
            "access_token": token,
            "token_type": "Bearer",
            "expires_in": claims.exp - claims.iat,
        })));
    }
    let client = limited(state, addr, async {
        limen
            .oauth()
            .authenticate_oauth_client(&client_id, secret.as_deref())
            .await
    })
    .await?;
    if grant_type == GRANT_TOKEN_EXCHANGE {
        return exchange(state, &keys, &client, &params).await;
    }
    let tokens = match grant_type {
        GRANT_AUTHORIZATION_CODE => {
            limen
                .oauth()
                .redeem_authorization_code(
                    &client,
                    param("code"),
                    param("redirect_uri"),
                    param("code_verifier"),
                )
                .await?
        }
        GRANT_DEVICE_CODE => {
            limen
                .oauth()
                .poll_device_code(&client, param("device_code"))
                .await?
        }
        _ => {
            limen
                .oauth()
                .refresh_grant(&client, param("refresh_token"), scope)
                .await?
        }
    };
    let access = &tokens.access;
    let mut answer = json!({
        "access_token": sign(&keys, client.token_signing_alg, "at+jwt", access)?,
        "token_type": "Bearer",
        "expires_in": access.exp - access.iat,
        "scope": access.scope.clone().unwrap_or_default(),
    });
    if let Some(id_token) = &tokens.id_token {
        answer["id_token"] = json!(sign(&keys, client.token_signing_alg, "JWT", id_token)?);
    }
    if let Some(refresh) = &tokens.refresh_token {
        answer["refresh_token"] = json!(refresh);
    }
    tracing::info!(client = %client.id, sub = %access.sub, grant = %grant_type, "OAuth token issued");
    Ok(token_response(answer))
}

/// Token exchange (RFC 8693): the subject token, verified, becomes a short-lived JWT for
/// the one audience asked for.
async fn exchange(
    state: &AppState,
    keys: &limen_crypto::oidc_keys::OidcKeys,
    client: &limen_core::oauth::client::OAuthClient,
    params: &HashMap<String, String>,
) -> Result<Response, OAuthError> {
    let param = |k: &str| params.get(k).map(String::as_str);
    let required =
        |k: &str| param(k).ok_or_else(|| OAuthError::InvalidRequest(format!("{k} is required.")));
    let token = required("subject_token")?;
    let token_type = required("subject_token_type")?;
    if params.contains_key("actor_token") {
        return Err(OAuthError::InvalidRequest(
            "Delegation (actor_token) is not supported.".into(),
        ));
    }
    let requested = param("requested_token_type").unwrap_or(TOKEN_TYPE_JWT);
    if requested != TOKEN_TYPE_JWT {
        return Err(OAuthError::InvalidRequest(format!(
            "Only {TOKEN_TYPE_JWT} tokens are issued."
        )));
    }
    let audience = match (param("audience"), param("resource")) {
        (Some(a), None) | (None, Some(a)) => a,
        _ => {
            return Err(OAuthError::InvalidTarget(
                "Name exactly one audience (or resource).".into(),
            ))
        }
    };
    let issuer = state.config.oidc.issuer.as_deref().unwrap_or_default();
    let now = state.limen.clock.now().unix_timestamp();
    let subject = match token_type {
        TOKEN_TYPE_ACCESS => match keys.verify_access_token(token, issuer, now) {
            Some(claims) => SubjectToken::LimenAccess(claims),
            None => SubjectToken::Keystone(token.to_string()),
        },
        TOKEN_TYPE_ID | TOKEN_TYPE_JWT => keys
            .verify_id_token(token, issuer, &client.id, now)
            .map(SubjectToken::LimenId)
            .ok_or_else(|| {
                OAuthError::InvalidRequest(
                    "The subject token is not a live ID token Limen issued to this client.".into(),
                )
            })?,
        other => {
            return Err(OAuthError::InvalidRequest(format!(
                "The subject_token_type {other:?} is not supported."
            )))
        }
    };
    let project = requested_project(param("scope"))?;
    let claims = state
        .limen
        .oauth()
        .exchange_token(client, subject, audience, project.as_deref())
        .await?;
    tracing::info!(client = %client.id, sub = %claims.sub, aud = %claims.aud, "token exchanged");
    Ok(token_response(json!({
        "access_token": sign(keys, client.token_signing_alg, EXCHANGED_TOKEN_TYP, &claims)?,
        "issued_token_type": TOKEN_TYPE_JWT,
        "token_type": "Bearer",
        "expires_in": claims.exp - claims.iat,
    })))
}

/// A JWT of `claims` signed with `alg`'s key of the primary slot.
fn sign<T: serde::Serialize>(
    keys: &limen_crypto::oidc_keys::OidcKeys,
    alg: TokenSigningAlg,
    typ: &str,
    claims: &T,
) -> Result<String, OAuthError> {
    let alg = match alg {
        TokenSigningAlg::RS256 => SigningAlg::RS256,
        TokenSigningAlg::ES256 => SigningAlg::ES256,
    };
    keys.primary.sign(alg, typ, claims).map_err(|e| {
        tracing::error!(error = %e, "cannot sign a token");
        OAuthError::TemporarilyUnavailable("The server cannot sign tokens right now.".into())
    })
}

/// A token endpoint answer (RFC 6749 §5.1: never cached).
fn token_response(body: serde_json::Value) -> Response {
    let mut resp = Json(body).into_response();
    no_store(resp.headers_mut());
    resp
}

/// `POST /oauth2/device_authorization` (RFC 8628 §3.1): a device code for the device
/// to poll with, and a user code for its person to enter at `verification_uri`.
pub async fn device_authorization(
    State(state): State<AppState>,
    addr: ClientAddr,
    req: Request,
) -> Response {
    let (headers, body) = match form_request(&state, req).await {
        Ok(r) => r,
        Err(resp) => return resp,
    };
    let basic = used_basic(&headers);
    let answer = async {
        let (params, client) = client_request(&state, &addr, &headers, &body).await?;
        let start = state
            .limen
            .oauth()
            .start_device_authorization(&client, params.get("scope").map(String::as_str))
            .await?;
        let issuer = state.config.oidc.issuer.clone().unwrap_or_default();
        Ok(json!({
            "device_code": start.device_code,
            "user_code": start.user_code,
            "verification_uri": format!("{issuer}/device"),
            "verification_uri_complete": format!("{issuer}/device?user_code={}", start.user_code),
            "expires_in": start.expires_in,
            "interval": start.interval,
        }))
    };
    match answer.await {
        Ok(v) => token_response(v),
        Err(e) => oauth_error(&e, basic),
    }
}

/// Reads the form of a request to an endpoint for registered OAuth clients only
/// (device authorization, introspection, revocation) and authenticates its caller: the
/// form and the client.
async fn client_request(
    state: &AppState,
    addr: &ClientAddr,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<
    (
        HashMap<String, String>,
        limen_core::oauth::client::OAuthClient,
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
            .oauth()
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
    state.oidc_keys.current()?.verify_access_token(
        token,
        issuer,
        state.limen.clock.now().unix_timestamp(),
    )
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
            Some(c) if state.limen.oauth().access_token_active(&c).await? => c,
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
        let limen = &state.limen;
        if let Some(claims) = verified_access_token(&state, &params) {
            if claims["client_id"].as_str() == Some(client.id.as_str()) {
                // A person's token takes its whole grant with it.
                if let Some(grant) = claims["limen_grant"].as_str() {
                    limen.oauth().revoke_grant(grant).await?;
                }
                limen.oauth().revoke_access_token(&claims).await?;
                tracing::info!(client = %client.id, "OAuth access token revoked");
            }
        } else if let Some(token) = params.get("token") {
            if limen.oauth().revoke_refresh_token(&client, token).await? {
                tracing::info!(client = %client.id, "OAuth refresh token revoked");
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
    let Ok(reserved) = limiter.reserve(ip, std::time::Instant::now()) else {
        return Err(OAuthError::InvalidClient(
            "Too many failed authentication attempts from this address; try again later.".into(),
        ));
    };
    let result = attempt.await;
    if matches!(result, Err(OAuthError::InvalidClient(_))) {
        reserved.failed();
    }
    result
}

/// The routes this module serves.
pub(crate) fn routes() -> axum::Router<crate::state::AppState> {
    use axum::routing;
    axum::Router::new()
        .route("/oauth2/jwks", routing::get(jwks))
        .route("/oauth2/token", routing::post(token))
        .route("/oauth2/introspect", routing::post(introspect))
        .route("/oauth2/revoke", routing::post(revoke))
        .route(
            "/.well-known/oauth-authorization-server",
            routing::get(metadata),
        )
        .route("/.well-known/openid-configuration", routing::get(metadata))
        .route("/oauth2/userinfo", routing::get(userinfo).post(userinfo))
        .route(
            "/oauth2/device_authorization",
            routing::post(device_authorization),
        )
}
