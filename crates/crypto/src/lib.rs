//! Limen's cryptography, compatible with Python Keystone: Fernet tokens (envelope, msgpack
//! payloads, key repositories) and password hashes.

pub mod fernet;
pub mod password;

pub use fernet::codec::FernetCodec;
pub use fernet::keys::{KeyRepository, KeyRepositoryError};
pub use password::KeystoneHasher;
