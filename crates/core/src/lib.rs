//! Limen's domain layer.
//!
//! Everything here is free of HTTP and SQL: the services take a [`store::Store`] for
//! persistence, a [`clock::Clock`] and [`clock::Random`] for time and randomness, and the
//! [`token::TokenCodec`] / [`password::PasswordHasher`] traits for cryptography, so tests
//! can control all of them.

pub mod access_rules;
pub mod appcred;
pub mod assignment;
pub mod auth;
pub mod authz;
pub mod aws_signature;
pub mod bootstrap;
pub mod catalog;
mod change_tracking;
pub mod clock;
pub mod cluster;
pub mod config;
pub mod credential;
mod documents;
pub mod domain_config;
pub mod ec2;
pub mod endpoint_filter;
pub mod error;
pub mod federation;
#[doc(hidden)]
pub mod fuzzing;
pub mod guess_limit;
pub mod identity;
pub mod keystone_auth;
pub mod kube_rules;
pub mod kubernetes;
pub mod limits;
pub mod model;
pub mod oauth1;
pub mod oauth_authorize;
pub mod oauth_client;
pub mod oauth_device;
pub mod oauth_exchange;
pub mod oauth_grant;
pub mod oauth_session;
pub mod oauth_user_grant;
pub mod password;
pub mod percent;
pub mod policyblob;
pub mod resource;
pub mod revoke;
pub mod service;
pub mod store;
pub mod token;
pub mod totp;
pub mod trust;
pub mod validation_cache;

pub use error::{CoreError, CoreResult};
pub use service::Limen;
