//! The storage interface the domain layer needs. `limen-store` implements it for SQLite and
//! PostgreSQL; every method that writes more than one row is atomic.

use crate::error::StoreResult;
use crate::model::*;
use crate::token::validation_cache::Dependency;
use async_trait::async_trait;
use std::sync::Arc;
use time::OffsetDateTime;

#[derive(Debug, Clone, Default)]
pub struct DomainFilter {
    pub name: Option<String>,
    pub enabled: Option<bool>,
}

#[derive(Debug, Clone, Default)]
pub struct ProjectFilter {
    pub name: Option<String>,
    pub domain_id: Option<String>,
    pub parent_id: Option<String>,
    pub enabled: Option<bool>,
    pub ids: Option<Vec<String>>,
    /// One page in id order instead of everything in name order.
    pub page: Option<Page>,
}

#[derive(Debug, Clone, Default)]
pub struct UserFilter {
    pub name: Option<String>,
    pub domain_id: Option<String>,
    pub enabled: Option<bool>,
    pub ids: Option<Vec<String>>,
    /// One page in id order instead of everything in name order.
    pub page: Option<Page>,
}

/// A page of a listing in id order (Keystone's `marker` and `limit`), read as such from
/// the database so a page costs the same however long the list is.
#[derive(Debug, Clone, Default)]
pub struct Page {
    /// Entries with ids above this one.
    pub after: Option<String>,
    /// At most this many entries; `None`: all the rest.
    pub limit: Option<usize>,
}

#[derive(Debug, Clone, Default)]
pub struct GroupFilter {
    pub name: Option<String>,
    pub domain_id: Option<String>,
    pub ids: Option<Vec<String>>,
}

#[derive(Debug, Clone, Default)]
pub struct RoleFilter {
    pub name: Option<String>,
    /// `Some(None)` selects global roles only; `Some(Some(d))` roles of domain `d`.
    pub domain_id: Option<Option<String>>,
}

#[derive(Debug, Clone, Default)]
pub struct AssignmentFilter {
    /// Any of these actors.
    pub actors: Option<Vec<Actor>>,
    /// Any of these targets.
    pub targets: Option<Vec<Target>>,
    pub role_id: Option<String>,
    pub inherited: Option<bool>,
}

/// A document as written: its body, what it belongs to (`""` for nothing) and the values
/// no other document of its kind may hold.
#[derive(Debug, Clone, Copy)]
pub struct DocumentWrite<'a> {
    pub kind: &'a str,
    pub id: &'a str,
    pub owner: &'a str,
    pub claims: &'a [String],
    pub body: &'a serde_json::Value,
    pub create_only: bool,
}

#[derive(Debug, Clone, Default)]
pub struct EndpointFilter {
    pub service_id: Option<String>,
    pub region_id: Option<String>,
    pub interface: Option<Interface>,
}

/// A unit of work: a store whose writes become visible together, at [`commit`], or not
/// at all (dropped without a commit, or after a failed step). Reads through it see its
/// own writes. Inside a unit, the first failed statement fails the unit: code that runs
/// in one must not catch a store error and go on. While a unit is open, its writes hold
/// their rows: every write of the same piece of work must go through the unit, or it
/// waits for the unit (SQLite's busy timeout; PostgreSQL's row locks).
///
/// [`commit`]: UnitOfWork::commit
#[async_trait]
pub trait UnitOfWork: Store {
    async fn commit(&self) -> StoreResult<()>;
}

#[async_trait]
pub trait Store: Send + Sync {
    /// Begins a [`UnitOfWork`]. Units do not nest: a unit refuses to begin another.
    async fn begin_unit(&self) -> StoreResult<Arc<dyn UnitOfWork>>;

    // Domains
    async fn create_domain(&self, d: &Domain) -> StoreResult<()>;
    async fn get_domain(&self, id: &str) -> StoreResult<Option<Domain>>;
    async fn get_domain_by_name(&self, name: &str) -> StoreResult<Option<Domain>>;
    async fn list_domains(&self, f: &DomainFilter) -> StoreResult<Vec<Domain>>;
    async fn update_domain(&self, d: &Domain) -> StoreResult<()>;
    /// Deletes the domain with everything inside it (projects, users, groups, domain roles,
    /// assignments on or of them), in one transaction.
    async fn delete_domain(&self, id: &str) -> StoreResult<bool>;

    // Projects
    async fn create_project(&self, p: &Project) -> StoreResult<()>;
    async fn get_project(&self, id: &str) -> StoreResult<Option<Project>>;
    async fn get_project_by_name(
        &self,
        domain_id: &str,
        name: &str,
    ) -> StoreResult<Option<Project>>;
    async fn list_projects(&self, f: &ProjectFilter) -> StoreResult<Vec<Project>>;
    async fn update_project(&self, p: &Project) -> StoreResult<()>;
    /// Deletes the project, its tags and the assignments on it.
    async fn delete_project(&self, id: &str) -> StoreResult<bool>;

    // Users and passwords
    async fn create_user(&self, u: &User, password: Option<&Password>) -> StoreResult<()>;
    async fn get_user(&self, id: &str) -> StoreResult<Option<User>>;
    async fn get_user_by_name(&self, domain_id: &str, name: &str) -> StoreResult<Option<User>>;
    async fn list_users(&self, f: &UserFilter) -> StoreResult<Vec<User>>;
    async fn update_user(&self, u: &User) -> StoreResult<()>;
    /// Deletes the user, its passwords, memberships and assignments.
    async fn delete_user(&self, id: &str) -> StoreResult<bool>;
    /// Stores `p` as the user's current password and keeps at most `keep_history` older
    /// ones, in one transaction.
    async fn set_password(&self, p: &Password, keep_history: usize) -> StoreResult<()>;
    /// The user's passwords, newest first.
    async fn list_passwords(&self, user_id: &str) -> StoreResult<Vec<Password>>;
    /// The expiry of each listed user's current password (users without a password, or
    /// whose password does not expire, map to `None` or are absent).
    async fn current_password_expiries(
        &self,
        user_ids: &[String],
    ) -> StoreResult<std::collections::HashMap<String, Option<OffsetDateTime>>>;
    async fn record_auth_failure(
        &self,
        user_id: &str,
        count: i64,
        at: Option<OffsetDateTime>,
    ) -> StoreResult<()>;
    async fn record_auth_success(&self, user_id: &str, at: OffsetDateTime) -> StoreResult<()>;

    // Groups
    async fn create_group(&self, g: &Group) -> StoreResult<()>;
    async fn get_group(&self, id: &str) -> StoreResult<Option<Group>>;
    async fn list_groups(&self, f: &GroupFilter) -> StoreResult<Vec<Group>>;
    async fn update_group(&self, g: &Group) -> StoreResult<()>;
    async fn delete_group(&self, id: &str) -> StoreResult<bool>;
    async fn add_user_to_group(&self, group_id: &str, user_id: &str) -> StoreResult<()>;
    async fn remove_user_from_group(&self, group_id: &str, user_id: &str) -> StoreResult<bool>;
    async fn is_user_in_group(&self, group_id: &str, user_id: &str) -> StoreResult<bool>;
    async fn list_group_ids_for_user(&self, user_id: &str) -> StoreResult<Vec<String>>;
    async fn list_user_ids_in_group(&self, group_id: &str) -> StoreResult<Vec<String>>;

    // Roles
    async fn create_role(&self, r: &Role) -> StoreResult<()>;
    async fn get_role(&self, id: &str) -> StoreResult<Option<Role>>;
    async fn list_roles(&self, f: &RoleFilter) -> StoreResult<Vec<Role>>;
    async fn update_role(&self, r: &Role) -> StoreResult<()>;
    /// Deletes the role, its implications and its assignments.
    async fn delete_role(&self, id: &str) -> StoreResult<bool>;
    async fn create_implied_role(&self, i: &ImpliedRole) -> StoreResult<()>;
    async fn delete_implied_role(&self, i: &ImpliedRole) -> StoreResult<bool>;
    async fn list_implied_roles(&self) -> StoreResult<Vec<ImpliedRole>>;

    // Assignments
    async fn create_assignment(&self, a: &Assignment) -> StoreResult<()>;
    async fn delete_assignment(&self, a: &Assignment) -> StoreResult<bool>;
    async fn list_assignments(&self, f: &AssignmentFilter) -> StoreResult<Vec<Assignment>>;

    // Catalog
    async fn create_region(&self, r: &Region) -> StoreResult<()>;
    async fn get_region(&self, id: &str) -> StoreResult<Option<Region>>;
    async fn list_regions(&self, parent_region_id: Option<&str>) -> StoreResult<Vec<Region>>;
    async fn update_region(&self, r: &Region) -> StoreResult<()>;
    async fn delete_region(&self, id: &str) -> StoreResult<bool>;
    async fn create_service(&self, s: &Service) -> StoreResult<()>;
    async fn get_service(&self, id: &str) -> StoreResult<Option<Service>>;
    async fn list_services(&self) -> StoreResult<Vec<Service>>;
    async fn update_service(&self, s: &Service) -> StoreResult<()>;
    /// Deletes the service and its endpoints.
    async fn delete_service(&self, id: &str) -> StoreResult<bool>;
    async fn create_endpoint(&self, e: &Endpoint) -> StoreResult<()>;
    async fn get_endpoint(&self, id: &str) -> StoreResult<Option<Endpoint>>;
    async fn list_endpoints(&self, f: &EndpointFilter) -> StoreResult<Vec<Endpoint>>;
    async fn update_endpoint(&self, e: &Endpoint) -> StoreResult<()>;
    async fn delete_endpoint(&self, id: &str) -> StoreResult<bool>;

    // Application credentials and access rules
    /// Stores the credential and the access rules it names that are new, in one
    /// transaction.
    async fn create_application_credential(
        &self,
        c: &ApplicationCredential,
        new_rules: &[AccessRule],
    ) -> StoreResult<()>;
    async fn get_application_credential(
        &self,
        id: &str,
    ) -> StoreResult<Option<ApplicationCredential>>;
    async fn list_application_credentials(
        &self,
        user_id: &str,
        name: Option<&str>,
    ) -> StoreResult<Vec<ApplicationCredential>>;
    async fn delete_application_credential(&self, id: &str) -> StoreResult<bool>;
    async fn list_access_rules(&self, user_id: &str) -> StoreResult<Vec<AccessRule>>;
    async fn delete_access_rule(&self, id: &str) -> StoreResult<bool>;

    // Credentials
    async fn create_credential(
        &self,
        c: &crate::delegation::credential::StoredCredential,
    ) -> StoreResult<()>;
    async fn get_credential(
        &self,
        id: &str,
    ) -> StoreResult<Option<crate::delegation::credential::StoredCredential>>;
    async fn list_credentials(
        &self,
        user_id: Option<&str>,
        cred_type: Option<&str>,
    ) -> StoreResult<Vec<crate::delegation::credential::StoredCredential>>;
    async fn update_credential(
        &self,
        c: &crate::delegation::credential::StoredCredential,
    ) -> StoreResult<()>;
    async fn delete_credential(&self, id: &str) -> StoreResult<bool>;

    // Trusts
    async fn create_trust(&self, t: &Trust) -> StoreResult<()>;
    async fn get_trust(&self, id: &str) -> StoreResult<Option<Trust>>;
    async fn list_trusts(
        &self,
        trustor_user_id: Option<&str>,
        trustee_user_id: Option<&str>,
    ) -> StoreResult<Vec<Trust>>;
    async fn delete_trust(&self, id: &str) -> StoreResult<bool>;
    /// Takes one use of a limited trust atomically; false when none is left. Unlimited
    /// trusts always succeed.
    async fn consume_trust_use(&self, id: &str) -> StoreResult<bool>;

    // Documents: small configuration resources kept as JSON by kind and id.
    /// Inserts (`create_only`: a duplicate is an error) or replaces a document with its
    /// owner and claims, in one transaction. A claim another document of the kind holds
    /// is a `Duplicate`.
    async fn put_document(&self, doc: &DocumentWrite<'_>) -> StoreResult<()>;
    async fn get_document(&self, kind: &str, id: &str) -> StoreResult<Option<serde_json::Value>>;
    async fn list_documents(&self, kind: &str) -> StoreResult<Vec<serde_json::Value>>;
    /// The documents of `kind` that belong to `owner` (through an index).
    async fn list_documents_of(
        &self,
        kind: &str,
        owner: &str,
    ) -> StoreResult<Vec<serde_json::Value>>;
    /// The documents of `kind` written before owners were kept (owner `""`).
    async fn list_unindexed_documents(&self, kind: &str) -> StoreResult<Vec<serde_json::Value>>;
    /// Deletes a document with its claims.
    async fn delete_document(&self, kind: &str, id: &str) -> StoreResult<bool>;
    /// Deletes the documents of `kind` that belong to `owner`, with their claims; their ids.
    async fn delete_documents_of(&self, kind: &str, owner: &str) -> StoreResult<Vec<String>>;

    // OAuth records: the OpenID Provider's short-lived state, JSON by kind and id, dead
    // after `expires_at` (unix seconds). Not part of the change feed.
    /// Inserts (`create_only`: an existing record, dead or alive, is a `Duplicate`; the
    /// atomic step behind every single-use code) or replaces a record.
    async fn put_oauth_record(
        &self,
        kind: &str,
        id: &str,
        body: &serde_json::Value,
        expires_at: i64,
        create_only: bool,
    ) -> StoreResult<()>;
    /// The record if it is alive at `now`.
    async fn get_oauth_record(
        &self,
        kind: &str,
        id: &str,
        now: i64,
    ) -> StoreResult<Option<serde_json::Value>>;
    async fn delete_oauth_record(&self, kind: &str, id: &str) -> StoreResult<bool>;
    /// Removes every record dead at `now`; how many.
    async fn prune_oauth_records(&self, now: i64) -> StoreResult<u64>;

    // Revocation
    async fn add_revocation_event(&self, e: &RevocationEvent) -> StoreResult<()>;
    /// Events that can still match a live token (issued_before later than `since`).
    async fn list_revocation_events(
        &self,
        since: Option<OffsetDateTime>,
    ) -> StoreResult<Vec<RevocationEvent>>;
    /// Removes events older than `before`: no token they could match is still valid.
    async fn prune_revocation_events(&self, before: OffsetDateTime) -> StoreResult<u64>;

    // The token change feed (see `validation_cache`).
    /// Appends `changed` to the feed in one transaction; returns the last sequence number.
    async fn record_token_changes(
        &self,
        changed: &[Dependency],
        at: OffsetDateTime,
    ) -> StoreResult<i64>;
    /// Up to `limit` changes numbered above `after`, oldest first.
    async fn token_changes_since(
        &self,
        after: i64,
        limit: i64,
    ) -> StoreResult<Vec<(i64, Dependency)>>;
    /// The newest sequence number handed out (0 before any change).
    async fn latest_token_change(&self) -> StoreResult<i64>;
    /// Removes changes recorded before `before`.
    async fn prune_token_changes(&self, before: OffsetDateTime) -> StoreResult<u64>;
}
