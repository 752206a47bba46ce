//! Keystone Identity API v3 wire format: validating request bodies into domain inputs
//! ([`input`]) and rendering domain entities as Keystone renders them ([`render`]).

pub mod cluster;
pub mod federation;
#[doc(hidden)]
pub mod fuzzing;
pub mod input;
pub mod kubernetes;
pub mod kubernetes_config;
pub mod oauth;
pub mod oauth1;
pub mod render;
pub mod signed;
pub mod times;

/// A request body or query that breaks the API's schema; always answered with 400.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{0}")]
pub struct Invalid(pub String);

pub type ProtoResult<T> = Result<T, Invalid>;
