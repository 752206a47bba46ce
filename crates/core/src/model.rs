//! The entities Limen stores. Field names follow Keystone's; `extra` keeps the free-form
//! attributes Keystone accepts on most entities and echoes back.

use serde_json::{Map, Value};
use time::OffsetDateTime;

pub type Extra = Map<String, Value>;

/// The id Keystone gives the default domain.
pub const DEFAULT_DOMAIN_ID: &str = "default";

#[derive(Debug, Clone, PartialEq)]
pub struct Domain {
    pub id: String,
    pub name: String,
    pub description: String,
    pub enabled: bool,
    pub tags: Vec<String>,
    pub options: Extra,
    pub extra: Extra,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Project {
    pub id: String,
    pub name: String,
    pub domain_id: String,
    /// The parent project, or the domain id for a top-level project (as Keystone renders it).
    pub parent_id: String,
    pub description: String,
    pub enabled: bool,
    pub tags: Vec<String>,
    pub options: Extra,
    pub extra: Extra,
}

impl Project {
    pub fn is_top_level(&self) -> bool {
        self.parent_id == self.domain_id
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct User {
    pub id: String,
    pub name: String,
    pub domain_id: String,
    pub enabled: bool,
    pub default_project_id: Option<String>,
    pub options: Extra,
    pub extra: Extra,
    pub created_at: OffsetDateTime,
    pub last_active_at: Option<OffsetDateTime>,
    /// Consecutive failed password authentications, for lockout.
    pub failed_auth_count: i64,
    pub failed_auth_at: Option<OffsetDateTime>,
}

/// One stored password of a user; the newest is the current one, older ones are history.
#[derive(Debug, Clone, PartialEq)]
pub struct Password {
    pub user_id: String,
    pub hash: String,
    pub created_at: OffsetDateTime,
    pub expires_at: Option<OffsetDateTime>,
    pub self_service: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Group {
    pub id: String,
    pub name: String,
    pub domain_id: String,
    pub description: String,
    pub extra: Extra,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Role {
    pub id: String,
    pub name: String,
    /// `None` for a global role; a domain id for a domain-specific role.
    pub domain_id: Option<String>,
    pub description: Option<String>,
    pub options: Extra,
    pub extra: Extra,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ImpliedRole {
    pub prior_role_id: String,
    pub implied_role_id: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Actor {
    User(String),
    Group(String),
}

impl Actor {
    pub fn id(&self) -> &str {
        match self {
            Actor::User(id) | Actor::Group(id) => id,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Target {
    Project(String),
    Domain(String),
    /// The system; Keystone's only system target is `all`.
    System,
}

pub const SYSTEM_ALL: &str = "all";

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Assignment {
    pub actor: Actor,
    pub target: Target,
    pub role_id: String,
    pub inherited: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Region {
    pub id: String,
    pub description: String,
    pub parent_region_id: Option<String>,
    pub extra: Extra,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Service {
    pub id: String,
    pub service_type: String,
    pub enabled: bool,
    /// `name`, `description` and any other attribute live here, as in Keystone.
    pub extra: Extra,
}

impl Service {
    pub fn name(&self) -> Option<&str> {
        self.extra.get("name").and_then(Value::as_str)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Interface {
    Public,
    Internal,
    Admin,
}

impl Interface {
    pub fn as_str(self) -> &'static str {
        match self {
            Interface::Public => "public",
            Interface::Internal => "internal",
            Interface::Admin => "admin",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "public" => Some(Interface::Public),
            "internal" => Some(Interface::Internal),
            "admin" => Some(Interface::Admin),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Endpoint {
    pub id: String,
    pub service_id: String,
    pub region_id: Option<String>,
    pub interface: Interface,
    pub url: String,
    pub enabled: bool,
    pub extra: Extra,
}

/// A Keystone revocation event: a token matching every set field and issued at or before
/// `issued_before` is revoked.
#[derive(Debug, Clone, PartialEq)]
pub struct RevocationEvent {
    pub user_id: Option<String>,
    pub project_id: Option<String>,
    pub domain_id: Option<String>,
    pub role_id: Option<String>,
    pub trust_id: Option<String>,
    pub consumer_id: Option<String>,
    pub access_token_id: Option<String>,
    pub audit_id: Option<String>,
    pub audit_chain_id: Option<String>,
    pub expires_at: Option<OffsetDateTime>,
    pub issued_before: OffsetDateTime,
    pub revoked_at: OffsetDateTime,
}

impl RevocationEvent {
    /// An event with no matching fields set yet, revoking what was issued up to `at`.
    pub fn at(at: OffsetDateTime) -> Self {
        RevocationEvent {
            user_id: None,
            project_id: None,
            domain_id: None,
            role_id: None,
            trust_id: None,
            consumer_id: None,
            access_token_id: None,
            audit_id: None,
            audit_chain_id: None,
            expires_at: None,
            issued_before: at,
            revoked_at: at,
        }
    }
}

/// An application credential: a secret that acts for its user on one project with a
/// subset of the user's roles.
#[derive(Debug, Clone, PartialEq)]
pub struct ApplicationCredential {
    pub id: String,
    pub name: String,
    pub user_id: String,
    pub project_id: String,
    pub description: Option<String>,
    pub secret_hash: String,
    pub expires_at: Option<OffsetDateTime>,
    /// May create further application credentials and trusts.
    pub unrestricted: bool,
    pub role_ids: Vec<String>,
    pub access_rule_ids: Vec<String>,
    pub created_at: OffsetDateTime,
}

/// An access rule (service, path, method) an application credential is limited to.
#[derive(Debug, Clone, PartialEq)]
pub struct AccessRule {
    pub id: String,
    pub user_id: String,
    pub service: String,
    pub path: String,
    pub method: String,
}

/// A trust: the trustor lets the trustee act with some of its roles on a project.
#[derive(Debug, Clone, PartialEq)]
pub struct Trust {
    pub id: String,
    pub trustor_user_id: String,
    pub trustee_user_id: String,
    pub project_id: Option<String>,
    /// Tokens act as the trustor rather than the trustee.
    pub impersonation: bool,
    pub expires_at: Option<OffsetDateTime>,
    /// Tokens that may still be issued (`None`: unlimited).
    pub remaining_uses: Option<i64>,
    pub redelegated_trust_id: Option<String>,
    pub redelegation_count: i64,
    pub role_ids: Vec<String>,
    pub extra: Extra,
    pub created_at: OffsetDateTime,
}
