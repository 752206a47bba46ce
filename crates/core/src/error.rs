//! The domain layer's error type. The HTTP layer maps each variant to one Keystone status
//! code and error body; nothing below the domain layer leaks through it.

use thiserror::Error;

#[derive(Debug, Error)]
pub enum CoreError {
    /// 400: the request is well-formed JSON but breaks a rule of the API.
    #[error("{0}")]
    Validation(String),
    /// 401: the caller could not be authenticated.
    #[error("{0}")]
    Unauthorized(String),
    /// 403: authenticated, but not allowed.
    #[error("{0}")]
    Forbidden(String),
    /// 404: no such entity.
    #[error("Could not find {kind}: {id}.")]
    NotFound { kind: &'static str, id: String },
    /// 404 with a free-form message.
    #[error("{0}")]
    NotFoundMessage(String),
    /// 409: conflicts with something stored.
    #[error("Conflict occurred attempting to store {kind} - {detail}.")]
    Conflict { kind: &'static str, detail: String },
    /// 401 with an auth receipt: the methods passed so far are not enough for the user's
    /// MFA rules (Keystone's `Openstack-Auth-Receipt` flow).
    #[error("additional authentication methods are required")]
    AdditionalAuthRequired(Box<crate::auth::AuthReceipt>),
    /// 429: too many wrong secrets for one credential lately; this one was not checked.
    #[error("{message}")]
    TooManyAttempts {
        message: String,
        retry_after_secs: u64,
    },
    /// 503: a feature is not set up on this node (the message says what is missing).
    #[error("{0}")]
    Unavailable(String),
    /// 500: the store or a dependency failed; the message is logged, never shown.
    #[error("internal error: {0}")]
    Internal(String),
}

impl CoreError {
    pub fn not_found(kind: &'static str, id: impl Into<String>) -> Self {
        CoreError::NotFound {
            kind,
            id: id.into(),
        }
    }

    pub fn validation(msg: impl Into<String>) -> Self {
        CoreError::Validation(msg.into())
    }

    pub fn unauthorized(msg: impl Into<String>) -> Self {
        CoreError::Unauthorized(msg.into())
    }

    pub fn forbidden(msg: impl Into<String>) -> Self {
        CoreError::Forbidden(msg.into())
    }

    pub fn conflict(kind: &'static str, detail: impl Into<String>) -> Self {
        CoreError::Conflict {
            kind,
            detail: detail.into(),
        }
    }
}

pub type CoreResult<T> = Result<T, CoreError>;

/// Errors a [`crate::store::Store`] implementation reports.
#[derive(Debug, Error)]
pub enum StoreError {
    /// A uniqueness constraint was violated; the text names what collided.
    #[error("{0}")]
    Duplicate(String),
    /// The backend failed (connection, I/O, corrupt row).
    #[error("storage backend error: {0}")]
    Backend(String),
}

impl From<StoreError> for CoreError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Duplicate(what) => CoreError::Conflict {
                kind: "entity",
                detail: what,
            },
            StoreError::Backend(msg) => CoreError::Internal(msg),
        }
    }
}

pub type StoreResult<T> = Result<T, StoreError>;
