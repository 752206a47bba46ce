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
    AdditionalAuthRequired(Box<crate::token::auth::AuthReceipt>),
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
    /// A uniqueness constraint was violated. `constraint` names it as the backend does
    /// (for the log); `primary_key` tells an id that is taken from a name that is.
    #[error("duplicate entry ({constraint})")]
    Duplicate {
        constraint: String,
        primary_key: bool,
    },
    /// The backend failed (connection, I/O, corrupt row); `source` is the driver's error
    /// where there is one.
    #[error("storage backend error: {message}")]
    Backend {
        message: String,
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
}

impl StoreError {
    /// A failure described by the store itself (a corrupt row, an unknown value).
    pub fn backend(message: impl Into<String>) -> Self {
        StoreError::Backend {
            message: message.into(),
            source: None,
        }
    }

    /// A failure of the driver or of a decoder, kept as the cause.
    pub fn backend_cause(
        context: &str,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        StoreError::Backend {
            message: format!("{context}: {source}"),
            source: Some(Box::new(source)),
        }
    }
}

impl From<StoreError> for CoreError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Duplicate { primary_key, .. } => CoreError::Conflict {
                kind: "entity",
                detail: if primary_key {
                    "Duplicate ID".into()
                } else {
                    "Duplicate entry".into()
                },
            },
            StoreError::Backend { message, .. } => CoreError::Internal(message),
        }
    }
}

pub type StoreResult<T> = Result<T, StoreError>;
