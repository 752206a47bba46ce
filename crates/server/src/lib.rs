//! Limen's HTTP layer: the Keystone Identity API v3 on axum.
//!
//! Handlers (in `routes`) parse requests with `limen-proto`, authorize with
//! `limen-policy`, call the domain services of `limen-core` and render the result; they
//! hold no business rules of their own.

pub mod app;
pub mod authz;
pub mod client_addr;
pub mod config;
pub mod error;
pub mod extract;
#[doc(hidden)]
pub mod fuzzing;
pub mod keys;
pub mod listener;
pub mod pages;
pub mod ratelimit;
pub mod routes;
pub mod state;

pub use app::{build, serve, App, StartError};
pub use config::Config;
