//! [`Limen`]: the domain services, wired to a store, a clock, randomness and crypto.

use crate::clock::{Clock, Random};
use crate::config::CoreConfig;
use crate::credential::CredentialCipher;
use crate::password::PasswordHasher;
use crate::store::Store;
use crate::token::TokenCodec;
use std::sync::Arc;

/// The domain services. Each concern lives in its own module as an `impl Limen` block:
/// `resource` (domains, projects), `identity` (users, groups, passwords), `assignment`
/// (roles, grants), `catalog`, `auth` (authentication and tokens) and `revoke`.
#[derive(Clone)]
pub struct Limen {
    pub store: Arc<dyn Store>,
    pub clock: Arc<dyn Clock>,
    pub random: Arc<dyn Random>,
    pub tokens: Arc<dyn TokenCodec>,
    pub hasher: Arc<dyn PasswordHasher>,
    /// Encrypts stored credentials; `None` where no credential key repository exists.
    pub credentials: Option<Arc<dyn CredentialCipher>>,
    pub config: Arc<CoreConfig>,
}

impl Limen {
    pub fn new(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        random: Arc<dyn Random>,
        tokens: Arc<dyn TokenCodec>,
        hasher: Arc<dyn PasswordHasher>,
        config: CoreConfig,
    ) -> Self {
        Limen {
            store,
            clock,
            random,
            tokens,
            hasher,
            credentials: None,
            config: Arc::new(config),
        }
    }

    /// Sets the cipher for stored credentials.
    pub fn with_credential_cipher(mut self, c: Arc<dyn CredentialCipher>) -> Self {
        self.credentials = Some(c);
        self
    }

    pub(crate) fn new_id(&self) -> String {
        self.random.new_id()
    }
}
