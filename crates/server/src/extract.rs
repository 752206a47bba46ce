//! Request extractors that answer with Keystone's errors: the JSON body, the caller's
//! token, the query string, and the base URL links are built on.

use crate::error::ApiError;
use crate::state::AppState;
use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap};
use limen_core::authz::Caller;
use limen_proto::render::Links;
use serde_json::Value;
use std::sync::Arc;

/// A JSON request body: `application/json`, within the size limit, well-formed.
pub struct JsonBody(pub Value);

impl FromRequest<AppState> for JsonBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        let limit = state.config.max_request_body_size;
        let has_json_type = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|ct| {
                ct.split(';')
                    .next()
                    .unwrap_or("")
                    .trim()
                    .eq_ignore_ascii_case("application/json")
            });
        let bytes = read_body(req, limit).await?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(JsonBody(Value::Null));
        }
        if has_json_type == Some(false) {
            return Err(ApiError::expecting(
                "application/json in Content-Type header",
            ));
        }
        serde_json::from_slice::<Value>(&bytes)
            .ok()
            .filter(Value::is_object)
            .map(JsonBody)
            .ok_or_else(|| ApiError::expecting("valid JSON in request body"))
    }
}

/// Reads a body up to `limit` bytes; longer is a 413, slower than `[http]
/// body_read_timeout` a 408.
pub async fn read_body(req: Request, limit: usize) -> Result<Bytes, ApiError> {
    let too_long = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok())
        .is_some_and(|n| n > limit);
    if too_long {
        return Err(ApiError::too_large());
    }
    axum::body::to_bytes(req.into_body(), limit)
        .await
        .map_err(|e| {
            if crate::listener::timed_out(&e) {
                ApiError::new(
                    axum::http::StatusCode::REQUEST_TIMEOUT,
                    "The request body did not arrive in time.",
                )
            } else {
                ApiError::too_large()
            }
        })
}

/// The caller as core sees it: the validated token (`X-Auth-Token`) and the request's
/// id, for [`crate::authz::authorize`].
pub struct Auth {
    pub caller: Caller,
}

/// The request's id (`req-<uuid>`), drawn before the handler runs and sent back in
/// `X-Openstack-Request-Id`.
#[derive(Debug, Clone)]
pub struct RequestId(pub Arc<str>);

pub fn unauthorized(state: &AppState, headers: &HeaderMap) -> ApiError {
    let mut e = ApiError::unauthorized();
    e.authenticate = Some(format!("Keystone uri=\"{}\"", root_url(state, headers)));
    e
}

impl FromRequestParts<AppState> for Auth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = parts
            .headers
            .get("x-auth-token")
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| unauthorized(state, &parts.headers))?;
        // Every identity-API request with a token passes here, so this is where a token
        // limited by application-credential access rules meets them (Keystone answers
        // 401 when none allows the request).
        let request = limen_core::delegation::access_rules::ApiRequest {
            method: parts.method.as_str(),
            path: parts.uri.path(),
        };
        match state
            .limen
            .token()
            .validate_token_with_access_rules(token, false)
            .await
        {
            Ok(info) if !info.allows_request(request) => {
                tracing::info!(user = %info.user.id, method = %request.method,
                    path = %request.path, "token refused: its access rules do not allow this");
                Err(unauthorized(state, &parts.headers))
            }
            // A token for a signed EC2/S3 request is for the EC2/S3 service alone; it
            // authorizes nothing here (it can still be validated as a subject token).
            Ok(info)
                if info
                    .payload
                    .methods
                    .iter()
                    .any(|m| m == limen_core::delegation::ec2::EC2_METHOD) =>
            {
                Err(ApiError::new(
                    axum::http::StatusCode::FORBIDDEN,
                    "You are not authorized to perform the requested action.",
                ))
            }
            Ok(info) => {
                let request_id = parts.extensions.get::<RequestId>().map(|r| r.0.clone());
                Ok(Auth {
                    caller: Caller::new(info, request_id),
                })
            }
            Err(limen_core::CoreError::Internal(e)) => {
                Err(limen_core::CoreError::Internal(e).into())
            }
            Err(_) => Err(unauthorized(state, &parts.headers)),
        }
    }
}

/// The query string as ordered pairs; a bare `?flag` has the value `""`.
#[derive(Debug, Default, Clone)]
pub struct Query {
    pub pairs: Vec<(String, String)>,
    pub raw: String,
}

impl Query {
    pub fn get(&self, k: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(name, _)| name == k)
            .map(|(_, v)| v.as_str())
    }

    pub fn has(&self, k: &str) -> bool {
        self.pairs.iter().any(|(name, _)| name == k)
    }

    /// Keystone's boolean query values: absent is `None`; a bare flag, `true`, `1`, `yes`
    /// (any case) are true; `false`, `0`, `no` false; anything else is a 400.
    pub fn bool(&self, k: &str) -> Result<Option<bool>, ApiError> {
        match self.get(k) {
            None => Ok(None),
            Some(v) => match v.to_ascii_lowercase().as_str() {
                "" | "true" | "1" | "yes" | "on" => Ok(Some(true)),
                "false" | "0" | "no" | "off" => Ok(Some(false)),
                _ => Err(ApiError::bad_request(format!(
                    "Invalid value for query parameter {k}: {v:?} is not a boolean."
                ))),
            },
        }
    }

    /// A flag is on when present and not explicitly false.
    pub fn flag(&self, k: &str) -> Result<bool, ApiError> {
        Ok(self.bool(k)?.unwrap_or(false))
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Query {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let raw = parts.uri.query().unwrap_or("").to_string();
        let pairs = form_urlencoded_pairs(&raw);
        Ok(Query { pairs, raw })
    }
}

pub fn form_urlencoded_pairs(q: &str) -> Vec<(String, String)> {
    q.split('&')
        .filter(|s| !s.is_empty())
        .map(|part| {
            let (k, v) = part.split_once('=').unwrap_or((part, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

pub fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(b) => {
                        out.push(b);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The externally visible root URL (no trailing slash).
pub fn root_url(state: &AppState, headers: &HeaderMap) -> String {
    if let Some(p) = &state.config.public_url {
        return p.trim_end_matches('/').to_string();
    }
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .filter(|h| h.bytes().all(|b| b.is_ascii_graphic()))
        .unwrap_or("localhost");
    format!("http://{host}")
}

/// Links rooted at `<root>/v3`.
pub struct Base(pub Links);

impl FromRequestParts<AppState> for Base {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        Ok(Base(Links::new(format!(
            "{}/v3",
            root_url(state, &parts.headers)
        ))))
    }
}

/// The client's address as the request middleware resolved it through trusted proxies
/// (`crate::client_addr`).
#[derive(Debug, Clone, Copy)]
pub struct ClientIp(pub std::net::IpAddr);

/// The client's address (absent when the server runs without connection info, as in
/// in-process tests).
pub struct ClientAddr(pub Option<std::net::IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddr {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        Ok(ClientAddr(parts.extensions.get::<ClientIp>().map(|c| c.0)))
    }
}

/// Runs a login attempt under the failed-login limit of the client's address: refused
/// with 429 while the address is over the limit (attempts in flight count, so concurrent
/// guesses cannot overtake the limit); a 401 stays counted against it.
pub async fn limited_login<T>(
    state: &AppState,
    addr: &ClientAddr,
    attempt: impl std::future::Future<Output = Result<T, ApiError>>,
) -> Result<T, ApiError> {
    let (Some(limiter), Some(ip)) = (&state.login_limiter, addr.0) else {
        return attempt.await;
    };
    let reserved = match limiter.reserve(ip, std::time::Instant::now()) {
        Ok(r) => r,
        Err(wait) => {
            let mut e = ApiError::new(
                axum::http::StatusCode::TOO_MANY_REQUESTS,
                "Too many failed authentication attempts from this address; try again later.",
            );
            e.retry_after = Some(wait.as_secs().max(1));
            return Err(e);
        }
    };
    let result = attempt.await;
    if let Err(e) = &result {
        // A receipt asking for a second factor is part of a normal MFA login.
        if e.status == axum::http::StatusCode::UNAUTHORIZED && e.receipt.is_none() {
            reserved.failed();
        }
    }
    result
}

/// Path parameters; a path that cannot be decoded (invalid UTF-8, say) names nothing
/// that exists, so it is Keystone's 404 rather than axum's plain-text 400.
pub struct Path<T>(pub T);

impl<T> FromRequestParts<AppState> for Path<T>
where
    T: serde::de::DeserializeOwned + Send,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(v)) => Ok(Path(v)),
            Err(_) => Err(ApiError::not_found("The resource could not be found.")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_parsing() {
        let p = form_urlencoded_pairs("a=1&effective&name=x%20y&b=%zz&c=%4");
        assert_eq!(p[0], ("a".into(), "1".into()));
        assert_eq!(p[1], ("effective".into(), "".into()));
        assert_eq!(p[2], ("name".into(), "x y".into()));
        assert_eq!(p[3], ("b".into(), "%zz".into()));
        assert_eq!(p[4], ("c".into(), "%4".into()));
    }
}
