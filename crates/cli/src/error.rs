//! The command line's errors. A failure keeps its typed cause (a configuration, store,
//! key or service error says itself what went wrong) and, where the cause alone would not
//! say it, what the command was doing when it failed.

use std::error::Error as StdError;

pub type CliResult<T> = Result<T, CliError>;

#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The command cannot do what it was asked as asked (a bad value, a missing option).
    #[error("{0}")]
    Usage(String),
    /// A step failed: what the command was doing, and why.
    #[error("{doing}: {source}")]
    Step {
        doing: String,
        #[source]
        source: Box<dyn StdError + Send + Sync>,
    },
    /// A failure whose cause says it all.
    #[error(transparent)]
    Failed(Box<dyn StdError + Send + Sync>),
}

impl CliError {
    pub fn usage(message: impl Into<String>) -> CliError {
        CliError::Usage(message.into())
    }
}

/// Any typed error of the crates the command drives becomes a failure with its cause.
macro_rules! failed_from {
    ($($t:ty),* $(,)?) => {
        $(impl From<$t> for CliError {
            fn from(e: $t) -> Self {
                CliError::Failed(Box::new(e))
            }
        })*
    };
}

failed_from!(
    limen_server::config::ConfigError,
    limen_server::StartError,
    limen_server::keys::KeysError,
    limen_core::CoreError,
    limen_core::error::StoreError,
    limen_crypto::KeyRepositoryError,
    limen_crypto::JwsKeyError,
    limen_crypto::oidc_keys::OidcKeyError,
    limen_crypto::KekError,
    limen_store::OpenError,
    limen_client::ClientError,
    std::io::Error,
    serde_json::Error,
    serde_yaml::Error,
);

/// Names the step a failure happened in.
pub trait Doing<T> {
    fn doing(self, what: impl FnOnce() -> String) -> CliResult<T>;
}

impl<T, E: StdError + Send + Sync + 'static> Doing<T> for Result<T, E> {
    fn doing(self, what: impl FnOnce() -> String) -> CliResult<T> {
        self.map_err(|e| CliError::Step {
            doing: what(),
            source: Box::new(e),
        })
    }
}
