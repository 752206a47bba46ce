//! Limen's cryptography, compatible with Python Keystone: Fernet tokens (envelope, msgpack
//! payloads, key repositories), JWS tokens, password hashes and credential encryption.

pub mod credential;
pub mod fernet;
pub mod formats;
#[doc(hidden)]
pub mod fuzzing;
pub mod jws;
pub mod kek;
pub mod oidc_keys;
pub mod password;
mod reload;
pub mod shared;

pub use credential::FernetCredentialCipher;
pub use fernet::codec::FernetCodec;
pub use fernet::keys::{KeyRepository, KeyRepositoryError};
pub use formats::{Selection, TokenFormats};
pub use jws::{JwsCodec, JwsKeyError, JwsKeyRepository};
pub use kek::{Kek, KekError};
pub use oidc_keys::{LiveOidcKeys, OidcKeyError, OidcKeyRepository, OidcKeys};
pub use password::KeystoneHasher;
pub use shared::SharedFernetKeys;
