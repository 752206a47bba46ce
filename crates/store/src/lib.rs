//! Limen's storage: one implementation of [`limen_core::store::Store`] over sqlx's `Any`
//! driver, so the same SQL runs on SQLite (the embedded default) and PostgreSQL.
//!
//! The SQL is kept portable: `$N` placeholders (SQLite accepts them too), TEXT and BIGINT
//! columns only, times as microseconds (an OAuth record's expiry in the unix seconds
//! core passes), JSON as text.

mod bulk;
mod codec;
mod conn;
pub mod keys;
mod sql;
mod store_impl;

pub use bulk::BulkLoader;
pub use keys::{ClusterSetting, KeyKind, PublishedKey, Rotation, SealedKey};
pub use store_impl::SqlStore;

use thiserror::Error;

#[derive(Debug, Error)]
pub enum OpenError {
    #[error("unsupported database URL {0:?}: use sqlite://PATH or postgres://…")]
    UnsupportedUrl(String),
    #[error("cannot open the database: {0}")]
    Connect(String),
    #[error("cannot migrate the database schema: {0}")]
    Migrate(String),
}
