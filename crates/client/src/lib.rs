//! Limen on a person's machine: `limen login`, the credential plugin kubectl runs (the
//! client-go exec protocol, device login or an application credential, a token cache
//! shared by parallel kubectl runs), `limen logout`, and `limen kubeconfig`, which writes
//! the kubeconfig entries that run it. Nothing here knows the server's internals: it
//! speaks OAuth 2.0 to the issuer like any client.

pub mod cache;
pub mod exec;
pub mod kubeconfig;
pub mod login;
pub mod provider;

use std::path::Path;

/// Why a client command failed; the text is what the person reads on stderr.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Bad arguments, environment or input.
    #[error("{0}")]
    Usage(String),
    /// The cache or a kubeconfig could not be read or written.
    #[error("{path}: {source}")]
    File {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// The issuer could not be reached or answered nonsense.
    #[error("{0}")]
    Unreachable(String),
    /// The issuer refused (an OAuth 2.0 error).
    #[error("the issuer refused: {error}: {description}")]
    Refused { error: String, description: String },
    /// A login is needed and cannot happen here.
    #[error("{0}")]
    LoginNeeded(String),
    #[error("{0}")]
    Internal(String),
}

impl ClientError {
    pub(crate) fn cache(path: &Path, source: std::io::Error) -> ClientError {
        ClientError::File {
            path: path.display().to_string(),
            source,
        }
    }

    /// Whether the issuer said the credential used is no good (so a new login helps).
    pub fn is_invalid_grant(&self) -> bool {
        matches!(self, ClientError::Refused { error, .. }
            if error == "invalid_grant" || error == "invalid_request" || error == "invalid_client")
    }
}

/// This machine's clock, in unix seconds.
pub fn unix_now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}
