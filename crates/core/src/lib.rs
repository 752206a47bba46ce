//! Limen's domain layer.
//!
//! Everything here is free of HTTP and SQL: the services take a [`store::Store`] for
//! persistence, a [`clock::Clock`] and [`clock::Random`] for time and randomness, and the
//! [`token::TokenCodec`] / [`identity::password::PasswordHasher`] traits for cryptography, so tests
//! can control all of them.

pub mod assignment;
pub mod authz;
pub mod bootstrap;
pub mod catalog;
mod change_tracking;
pub mod clock;
pub mod config;
pub mod delegation;
mod documents;
pub mod error;
pub mod federation;
#[doc(hidden)]
pub mod fuzzing;
pub mod identity;
pub mod kubernetes;
pub mod model;
pub mod oauth;
pub mod percent;
pub mod resource;
pub mod service;
pub mod store;
pub mod token;

pub use error::{CoreError, CoreResult};
pub use service::Limen;
