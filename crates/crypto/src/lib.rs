//! Limen's cryptography, compatible with Python Keystone: Fernet tokens (envelope, msgpack
//! payloads, key repositories) and password hashes.

pub mod credential;
pub mod fernet;
pub mod password;

pub use credential::FernetCredentialCipher;
pub use fernet::codec::FernetCodec;
pub use fernet::keys::{KeyRepository, KeyRepositoryError};
pub use password::KeystoneHasher;
