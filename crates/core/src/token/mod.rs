//! What a token carries, independent of its format (Fernet today, JWS later), and the codec
//! trait the crypto layer implements.

pub mod auth;
pub mod revoke;
pub mod validation_cache;

use crate::service::Limen;
use thiserror::Error;
use time::OffsetDateTime;

/// What a token is scoped to. The variants mirror Keystone's payload types so every token
/// Keystone writes can be read, even where Limen does not issue that kind yet.
#[derive(Debug, Clone, PartialEq)]
pub enum TokenScope {
    Unscoped,
    Project {
        project_id: String,
    },
    Domain {
        domain_id: String,
    },
    /// System scope; Keystone's only system is `all`.
    System,
    Trust {
        project_id: String,
        trust_id: String,
    },
    ApplicationCredential {
        project_id: String,
        app_cred_id: String,
    },
    Federated {
        group_ids: Vec<String>,
        idp_id: String,
        protocol_id: String,
        /// `None`: unscoped; otherwise a project or domain.
        scope: Option<FederatedScope>,
    },
    OAuth1 {
        project_id: String,
        access_token_id: String,
    },
    OAuth2Mtls {
        project_id: String,
        domain_id: String,
        thumbprint: String,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub enum FederatedScope {
    Project(String),
    Domain(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct TokenPayload {
    pub user_id: String,
    pub methods: Vec<String>,
    pub scope: TokenScope,
    pub expires_at: OffsetDateTime,
    /// Base64url audit ids without padding: this token's own first, then its parent's.
    pub audit_ids: Vec<String>,
    /// Set by the codec on decode (the format's issue time); ignored on encode, where the
    /// codec stamps `issued_at` given separately.
    pub issued_at: OffsetDateTime,
}

#[derive(Debug, Error, PartialEq)]
pub enum TokenError {
    /// Not a token this node can read (bad encoding, wrong keys, tampered).
    #[error("invalid token: {0}")]
    Invalid(String),
    /// The payload cannot be represented in this format.
    #[error("cannot encode token: {0}")]
    Unencodable(String),
    /// No key material to sign or encrypt with.
    #[error("no usable token keys: {0}")]
    NoKeys(String),
}

/// An MFA auth receipt (Keystone's `Openstack-Auth-Receipt`): who has passed which
/// methods so far.
#[derive(Debug, Clone, PartialEq)]
pub struct ReceiptPayload {
    pub user_id: String,
    pub methods: Vec<String>,
    pub expires_at: OffsetDateTime,
    /// Set on decode from the envelope; the issue time stamped on encode.
    pub issued_at: OffsetDateTime,
}

pub trait TokenCodec: Send + Sync {
    /// Encodes `payload`, stamping `payload.issued_at` as the issue time.
    fn encode(&self, payload: &TokenPayload) -> Result<String, TokenError>;
    /// Decodes and authenticates a token; expiry is not checked here.
    fn decode(&self, token: &str) -> Result<TokenPayload, TokenError>;
    /// Encodes an auth receipt (Keystone always uses Fernet for these).
    fn encode_receipt(&self, receipt: &ReceiptPayload) -> Result<String, TokenError>;
    /// Decodes and authenticates an auth receipt; expiry is not checked here.
    fn decode_receipt(&self, receipt: &str) -> Result<ReceiptPayload, TokenError>;
    /// A number that changes whenever the keys or formats this codec accepts change, so a
    /// cache of validated tokens knows to forget what the old keys vouched for.
    fn key_generation(&self) -> u64 {
        0
    }
}

/// The token area's services: authentication, token validation and revocation (`limen.token()`).
#[derive(Clone, Copy)]
pub struct TokenService<'a> {
    limen: &'a Limen,
}

impl Limen {
    pub fn token(&self) -> TokenService<'_> {
        TokenService { limen: self }
    }
}

/// The shared machinery (store, clock, other areas) stays reachable as `self.…`.
impl std::ops::Deref for TokenService<'_> {
    type Target = Limen;

    fn deref(&self) -> &Limen {
        self.limen
    }
}
