//! Password hashing as the domain layer sees it. The crypto layer implements it with
//! bcrypt (and verifies every format Keystone writes) off the async runtime.

use async_trait::async_trait;

#[async_trait]
pub trait PasswordHasher: Send + Sync {
    /// Hashes a password for storage.
    async fn hash(&self, password: &str) -> Result<String, String>;
    /// Checks a password against a stored hash in constant time; an unknown or corrupt
    /// hash verifies as false.
    async fn verify(&self, password: &str, hash: &str) -> bool;
}
