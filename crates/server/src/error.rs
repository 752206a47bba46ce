//! The HTTP layer's error: every failure leaves as Keystone's error body
//! `{"error": {"code", "title", "message"}}` with the matching status.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use limen_core::CoreError;
use serde_json::json;

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
    /// `WWW-Authenticate` value for 401s.
    pub authenticate: Option<String>,
    /// `Retry-After` seconds for 429s.
    pub retry_after: Option<u64>,
    /// An MFA receipt: its id (the `Openstack-Auth-Receipt` header) and the body.
    pub receipt: Option<Box<(String, serde_json::Value)>>,
}

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError {
            status,
            message: message.into(),
            authenticate: None,
            retry_after: None,
            receipt: None,
        }
    }

    pub fn bad_request(m: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, m)
    }

    pub fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "The request you have made requires authentication.",
        )
    }

    pub fn forbidden_action(action: &str) -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            format!("You are not authorized to perform the requested action: {action}."),
        )
    }

    pub fn not_found(m: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, m)
    }

    pub fn too_large() -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "Request is larger than the maximum request body size.",
        )
    }

    /// Keystone's generic 400 for a body that is not what was asked for.
    pub fn expecting(what: &str) -> Self {
        Self::bad_request(format!(
            "Expecting to find {what}. The server could not comply with the request since it is \
             either malformed or otherwise incorrect. The client is assumed to be in error."
        ))
    }
}

fn title(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        409 => "Conflict",
        413 => "Request Entity Too Large",
        415 => "Unsupported Media Type",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        _ => status.canonical_reason().unwrap_or("Error"),
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let Some(receipt) = self.receipt {
            let (id, body) = *receipt;
            let mut resp = (self.status, axum::Json(body)).into_response();
            if let Ok(v) = HeaderValue::from_str(&id) {
                resp.headers_mut().insert("openstack-auth-receipt", v);
            }
            return resp;
        }
        let body = json!({"error": {
            "code": self.status.as_u16(),
            "title": title(self.status),
            "message": self.message,
        }});
        let mut resp = (self.status, axum::Json(body)).into_response();
        if let Some(a) = self.authenticate {
            if let Ok(v) = HeaderValue::from_str(&a) {
                resp.headers_mut().insert(header::WWW_AUTHENTICATE, v);
            }
        }
        if let Some(secs) = self.retry_after {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if self.status == StatusCode::PAYLOAD_TOO_LARGE {
            // The rest of the body is never read, so the connection cannot carry another
            // request; saying so keeps clients from reusing it.
            resp.headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        resp
    }
}

impl From<CoreError> for ApiError {
    fn from(e: CoreError) -> Self {
        match e {
            CoreError::Validation(m) => ApiError::bad_request(m),
            CoreError::Unauthorized(m) => ApiError::new(StatusCode::UNAUTHORIZED, m),
            CoreError::Forbidden(m) => ApiError::new(StatusCode::FORBIDDEN, m),
            e @ CoreError::NotFound { .. } => ApiError::not_found(e.to_string()),
            CoreError::NotFoundMessage(m) => ApiError::not_found(m),
            e @ CoreError::Conflict { .. } => ApiError::new(StatusCode::CONFLICT, e.to_string()),
            CoreError::AdditionalAuthRequired(r) => {
                let mut e = ApiError::new(
                    StatusCode::UNAUTHORIZED,
                    "Additional authentications steps required.",
                );
                e.receipt = Some(Box::new((
                    r.id.clone(),
                    limen_proto::render::auth_receipt(&r),
                )));
                e
            }
            CoreError::TooManyAttempts {
                message,
                retry_after_secs,
            } => {
                let mut e = ApiError::new(StatusCode::TOO_MANY_REQUESTS, message);
                e.retry_after = Some(retry_after_secs);
                e
            }
            CoreError::Unavailable(m) => ApiError::new(StatusCode::SERVICE_UNAVAILABLE, m),
            CoreError::Internal(detail) => {
                tracing::error!(error = %detail, "internal error");
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "An unexpected error prevented the server from fulfilling your request.",
                )
            }
        }
    }
}

impl From<limen_proto::Invalid> for ApiError {
    fn from(e: limen_proto::Invalid) -> Self {
        ApiError::bad_request(e.0)
    }
}
