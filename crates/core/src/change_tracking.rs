//! [`TrackingStore`]: the store as the domain layer sees it, recording every write that can
//! change what a validated token says in the store's change feed and in this node's
//! [`ValidationCache`]. Keeping the whole mapping from writes to [`Dependency`]s in this one
//! place means a write cannot bypass invalidation: the trait forces a decision per method.

use crate::catalog::endpoint_filter::CATALOG_DOCUMENTS;
use crate::clock::Clock;
use crate::documents::DocumentKind;
use crate::error::{StoreError, StoreResult};
use crate::model::*;
use crate::store::*;
use crate::token::validation_cache::{Dependency, ValidationCache};
use async_trait::async_trait;
use std::sync::{Arc, Mutex};
use time::OffsetDateTime;

pub struct TrackingStore {
    inner: Arc<dyn Store>,
    cache: Arc<ValidationCache>,
    clock: Arc<dyn Clock>,
    /// Set when this store is a unit of work (`inner` is then the unit).
    unit: Option<OpenUnit>,
}

/// A unit of work in progress and what its writes changed, published when it commits.
struct OpenUnit {
    work: Arc<dyn UnitOfWork>,
    changed: Mutex<Vec<Dependency>>,
}

impl TrackingStore {
    pub fn new(inner: Arc<dyn Store>, cache: Arc<ValidationCache>, clock: Arc<dyn Clock>) -> Self {
        TrackingStore {
            inner,
            cache,
            clock,
            unit: None,
        }
    }

    /// Where one tracked write runs: inside a unit, as part of it; alone, in a unit of
    /// its own, so the write and its change-feed entry commit together.
    async fn step(&self) -> StoreResult<Step<'_>> {
        Ok(match &self.unit {
            Some(open) => Step::InUnit {
                store: &*self.inner,
                open,
            },
            None => Step::Alone {
                work: self.inner.begin_unit().await?,
                tracking: self,
            },
        })
    }

    /// Commits `work` with the feed entries of `changed` in it, then applies them to
    /// this node's cache: the other nodes learn of the change from the same transaction
    /// that makes it.
    async fn commit_publishing(
        &self,
        work: &dyn UnitOfWork,
        changed: &[Dependency],
    ) -> StoreResult<()> {
        if !changed.is_empty() {
            work.record_token_changes(changed, self.clock.now()).await?;
        }
        work.commit().await?;
        if !changed.is_empty() {
            self.cache.apply(changed);
        }
        Ok(())
    }
}

/// One tracked write in progress (see [`TrackingStore::step`]).
enum Step<'a> {
    InUnit {
        store: &'a dyn Store,
        open: &'a OpenUnit,
    },
    Alone {
        work: Arc<dyn UnitOfWork>,
        tracking: &'a TrackingStore,
    },
}

impl Step<'_> {
    fn store(&self) -> &dyn Store {
        match self {
            Step::InUnit { store, .. } => *store,
            Step::Alone { work, .. } => &**work,
        }
    }

    /// The write is done and changed `changed`.
    async fn done(self, changed: Vec<Dependency>) -> StoreResult<()> {
        match self {
            Step::InUnit { open, .. } => {
                open.changed
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .extend(changed);
                Ok(())
            }
            Step::Alone { work, tracking } => tracking.commit_publishing(&*work, &changed).await,
        }
    }
}

#[async_trait]
impl UnitOfWork for TrackingStore {
    /// Commits the unit with one feed entry per change its writes made, then applies the
    /// changes to this node's cache.
    async fn commit(&self) -> StoreResult<()> {
        let Some(open) = &self.unit else {
            return Err(StoreError::backend("no unit of work to commit"));
        };
        let changed = std::mem::take(&mut *open.changed.lock().unwrap_or_else(|p| p.into_inner()));
        self.commit_publishing(&*open.work, &changed).await
    }
}

/// The users a grant to `actor` reaches.
async fn actor_users(store: &dyn Store, actor: &Actor) -> StoreResult<Vec<Dependency>> {
    Ok(match actor {
        Actor::User(id) => vec![Dependency::User(id.clone())],
        Actor::Group(id) => store
            .list_user_ids_in_group(id)
            .await?
            .into_iter()
            .map(Dependency::User)
            .collect(),
    })
}

/// Documents that validation reads: OAuth1 access tokens and consumers, the endpoint
/// filters that shape catalogs, and the service providers token bodies list.
fn document_dependency(kind: &str, id: &str) -> Vec<Dependency> {
    match DocumentKind::from_name(kind) {
        Some(DocumentKind::OAuth1AccessToken) => {
            vec![Dependency::OAuth1AccessToken(id.to_string())]
        }
        Some(DocumentKind::OAuth1Consumer) => vec![Dependency::OAuth1Consumer(id.to_string())],
        Some(k) if CATALOG_DOCUMENTS.contains(&k) => vec![Dependency::Catalog],
        Some(DocumentKind::ServiceProvider) => vec![Dependency::ServiceProviders],
        _ => vec![],
    }
}

/// The narrowest dependency every token a revocation event matches has.
fn event_dependency(e: &RevocationEvent) -> Dependency {
    let pick = [
        e.audit_id.clone().map(Dependency::Audit),
        e.audit_chain_id.clone().map(Dependency::Audit),
        e.user_id.clone().map(Dependency::User),
        e.project_id.clone().map(Dependency::Project),
        e.domain_id.clone().map(Dependency::Domain),
        e.trust_id.clone().map(Dependency::Trust),
        e.access_token_id.clone().map(Dependency::OAuth1AccessToken),
        e.consumer_id.clone().map(Dependency::OAuth1Consumer),
    ];
    pick.into_iter().flatten().next().unwrap_or(Dependency::All)
}

#[async_trait]
impl Store for TrackingStore {
    async fn begin_unit(&self) -> StoreResult<Arc<dyn UnitOfWork>> {
        if self.unit.is_some() {
            return Err(StoreError::backend("units of work do not nest"));
        }
        let work = self.inner.begin_unit().await?;
        Ok(Arc::new(TrackingStore {
            inner: work.clone(),
            cache: self.cache.clone(),
            clock: self.clock.clone(),
            unit: Some(OpenUnit {
                work,
                changed: Mutex::new(Vec::new()),
            }),
        }))
    }

    async fn create_domain(&self, d: &Domain) -> StoreResult<()> {
        self.inner.create_domain(d).await
    }

    async fn get_domain(&self, id: &str) -> StoreResult<Option<Domain>> {
        self.inner.get_domain(id).await
    }

    async fn get_domain_by_name(&self, name: &str) -> StoreResult<Option<Domain>> {
        self.inner.get_domain_by_name(name).await
    }

    async fn list_domains(&self, f: &DomainFilter) -> StoreResult<Vec<Domain>> {
        self.inner.list_domains(f).await
    }

    async fn update_domain(&self, d: &Domain) -> StoreResult<()> {
        let w = self.step().await?;
        w.store().update_domain(d).await?;
        w.done(vec![Dependency::Domain(d.id.clone())]).await?;
        Ok(())
    }

    async fn delete_domain(&self, id: &str) -> StoreResult<bool> {
        let w = self.step().await?;
        let gone = w.store().delete_domain(id).await?;
        w.done(vec![Dependency::Domain(id.to_string())]).await?;
        Ok(gone)
    }

    async fn create_project(&self, p: &Project) -> StoreResult<()> {
        self.inner.create_project(p).await
    }

    async fn get_project(&self, id: &str) -> StoreResult<Option<Project>> {
        self.inner.get_project(id).await
    }

    async fn get_project_by_name(
        &self,
        domain_id: &str,
        name: &str,
    ) -> StoreResult<Option<Project>> {
        self.inner.get_project_by_name(domain_id, name).await
    }

    async fn list_projects(&self, f: &ProjectFilter) -> StoreResult<Vec<Project>> {
        self.inner.list_projects(f).await
    }

    async fn update_project(&self, p: &Project) -> StoreResult<()> {
        let w = self.step().await?;
        w.store().update_project(p).await?;
        w.done(vec![Dependency::Project(p.id.clone())]).await?;
        Ok(())
    }

    async fn delete_project(&self, id: &str) -> StoreResult<bool> {
        let w = self.step().await?;
        let gone = w.store().delete_project(id).await?;
        w.done(vec![Dependency::Project(id.to_string())]).await?;
        Ok(gone)
    }

    async fn create_user(&self, u: &User, password: Option<&Password>) -> StoreResult<()> {
        self.inner.create_user(u, password).await
    }

    async fn get_user(&self, id: &str) -> StoreResult<Option<User>> {
        self.inner.get_user(id).await
    }

    async fn get_user_by_name(&self, domain_id: &str, name: &str) -> StoreResult<Option<User>> {
        self.inner.get_user_by_name(domain_id, name).await
    }

    async fn list_users(&self, f: &UserFilter) -> StoreResult<Vec<User>> {
        self.inner.list_users(f).await
    }

    async fn update_user(&self, u: &User) -> StoreResult<()> {
        let w = self.step().await?;
        w.store().update_user(u).await?;
        w.done(vec![Dependency::User(u.id.clone())]).await?;
        Ok(())
    }

    async fn delete_user(&self, id: &str) -> StoreResult<bool> {
        let w = self.step().await?;
        let gone = w.store().delete_user(id).await?;
        w.done(vec![Dependency::User(id.to_string())]).await?;
        Ok(gone)
    }

    async fn set_password(&self, p: &Password, keep_history: usize) -> StoreResult<()> {
        let w = self.step().await?;
        w.store().set_password(p, keep_history).await?;
        w.done(vec![Dependency::User(p.user_id.clone())]).await?;
        Ok(())
    }

    async fn list_passwords(&self, user_id: &str) -> StoreResult<Vec<Password>> {
        self.inner.list_passwords(user_id).await
    }

    async fn current_password_expiries(
        &self,
        user_ids: &[String],
    ) -> StoreResult<std::collections::HashMap<String, Option<OffsetDateTime>>> {
        self.inner.current_password_expiries(user_ids).await
    }

    async fn record_auth_failure(
        &self,
        user_id: &str,
        count: i64,
        at: Option<OffsetDateTime>,
    ) -> StoreResult<()> {
        self.inner.record_auth_failure(user_id, count, at).await
    }

    async fn record_auth_success(&self, user_id: &str, at: OffsetDateTime) -> StoreResult<()> {
        self.inner.record_auth_success(user_id, at).await
    }

    async fn create_group(&self, g: &Group) -> StoreResult<()> {
        self.inner.create_group(g).await
    }

    async fn get_group(&self, id: &str) -> StoreResult<Option<Group>> {
        self.inner.get_group(id).await
    }

    async fn list_groups(&self, f: &GroupFilter) -> StoreResult<Vec<Group>> {
        self.inner.list_groups(f).await
    }

    async fn update_group(&self, g: &Group) -> StoreResult<()> {
        self.inner.update_group(g).await
    }

    async fn delete_group(&self, id: &str) -> StoreResult<bool> {
        let w = self.step().await?;
        // The members lose what the group was granted.
        let members = w.store().list_user_ids_in_group(id).await?;
        let gone = w.store().delete_group(id).await?;
        w.done(members.into_iter().map(Dependency::User).collect())
            .await?;
        Ok(gone)
    }

    async fn add_user_to_group(&self, group_id: &str, user_id: &str) -> StoreResult<()> {
        let w = self.step().await?;
        w.store().add_user_to_group(group_id, user_id).await?;
        w.done(vec![Dependency::User(user_id.to_string())]).await?;
        Ok(())
    }

    async fn remove_user_from_group(&self, group_id: &str, user_id: &str) -> StoreResult<bool> {
        let w = self.step().await?;
        let gone = w.store().remove_user_from_group(group_id, user_id).await?;
        w.done(vec![Dependency::User(user_id.to_string())]).await?;
        Ok(gone)
    }

    async fn is_user_in_group(&self, group_id: &str, user_id: &str) -> StoreResult<bool> {
        self.inner.is_user_in_group(group_id, user_id).await
    }

    async fn list_group_ids_for_user(&self, user_id: &str) -> StoreResult<Vec<String>> {
        self.inner.list_group_ids_for_user(user_id).await
    }

    async fn list_user_ids_in_group(&self, group_id: &str) -> StoreResult<Vec<String>> {
        self.inner.list_user_ids_in_group(group_id).await
    }

    async fn create_role(&self, r: &Role) -> StoreResult<()> {
        self.inner.create_role(r).await
    }

    async fn get_role(&self, id: &str) -> StoreResult<Option<Role>> {
        self.inner.get_role(id).await
    }

    async fn list_roles(&self, f: &RoleFilter) -> StoreResult<Vec<Role>> {
        self.inner.list_roles(f).await
    }

    async fn update_role(&self, r: &Role) -> StoreResult<()> {
        let w = self.step().await?;
        w.store().update_role(r).await?;
        w.done(vec![Dependency::All]).await?;
        Ok(())
    }

    async fn delete_role(&self, id: &str) -> StoreResult<bool> {
        let w = self.step().await?;
        let gone = w.store().delete_role(id).await?;
        w.done(vec![Dependency::All]).await?;
        Ok(gone)
    }

    async fn create_implied_role(&self, i: &ImpliedRole) -> StoreResult<()> {
        let w = self.step().await?;
        w.store().create_implied_role(i).await?;
        w.done(vec![Dependency::All]).await?;
        Ok(())
    }

    async fn delete_implied_role(&self, i: &ImpliedRole) -> StoreResult<bool> {
        let w = self.step().await?;
        let gone = w.store().delete_implied_role(i).await?;
        w.done(vec![Dependency::All]).await?;
        Ok(gone)
    }

    async fn list_implied_roles(&self) -> StoreResult<Vec<ImpliedRole>> {
        self.inner.list_implied_roles().await
    }

    async fn create_assignment(&self, a: &Assignment) -> StoreResult<()> {
        let w = self.step().await?;
        let users = actor_users(w.store(), &a.actor).await?;
        w.store().create_assignment(a).await?;
        w.done(users).await?;
        Ok(())
    }

    async fn delete_assignment(&self, a: &Assignment) -> StoreResult<bool> {
        let w = self.step().await?;
        let users = actor_users(w.store(), &a.actor).await?;
        let gone = w.store().delete_assignment(a).await?;
        w.done(users).await?;
        Ok(gone)
    }

    async fn list_assignments(&self, f: &AssignmentFilter) -> StoreResult<Vec<Assignment>> {
        self.inner.list_assignments(f).await
    }

    async fn create_region(&self, r: &Region) -> StoreResult<()> {
        let w = self.step().await?;
        let out = w.store().create_region(r).await?;
        w.done(vec![Dependency::Catalog]).await?;
        Ok(out)
    }

    async fn get_region(&self, id: &str) -> StoreResult<Option<Region>> {
        self.inner.get_region(id).await
    }

    async fn list_regions(&self, parent_region_id: Option<&str>) -> StoreResult<Vec<Region>> {
        self.inner.list_regions(parent_region_id).await
    }

    async fn update_region(&self, r: &Region) -> StoreResult<()> {
        let w = self.step().await?;
        let out = w.store().update_region(r).await?;
        w.done(vec![Dependency::Catalog]).await?;
        Ok(out)
    }

    async fn delete_region(&self, id: &str) -> StoreResult<bool> {
        let w = self.step().await?;
        let out = w.store().delete_region(id).await?;
        w.done(vec![Dependency::Catalog]).await?;
        Ok(out)
    }

    async fn create_service(&self, s: &Service) -> StoreResult<()> {
        let w = self.step().await?;
        let out = w.store().create_service(s).await?;
        w.done(vec![Dependency::Catalog]).await?;
        Ok(out)
    }

    async fn get_service(&self, id: &str) -> StoreResult<Option<Service>> {
        self.inner.get_service(id).await
    }

    async fn list_services(&self) -> StoreResult<Vec<Service>> {
        self.inner.list_services().await
    }

    async fn update_service(&self, s: &Service) -> StoreResult<()> {
        let w = self.step().await?;
        let out = w.store().update_service(s).await?;
        w.done(vec![Dependency::Catalog]).await?;
        Ok(out)
    }

    async fn delete_service(&self, id: &str) -> StoreResult<bool> {
        let w = self.step().await?;
        let out = w.store().delete_service(id).await?;
        w.done(vec![Dependency::Catalog]).await?;
        Ok(out)
    }

    async fn create_endpoint(&self, e: &Endpoint) -> StoreResult<()> {
        let w = self.step().await?;
        let out = w.store().create_endpoint(e).await?;
        w.done(vec![Dependency::Catalog]).await?;
        Ok(out)
    }

    async fn get_endpoint(&self, id: &str) -> StoreResult<Option<Endpoint>> {
        self.inner.get_endpoint(id).await
    }

    async fn list_endpoints(&self, f: &EndpointFilter) -> StoreResult<Vec<Endpoint>> {
        self.inner.list_endpoints(f).await
    }

    async fn update_endpoint(&self, e: &Endpoint) -> StoreResult<()> {
        let w = self.step().await?;
        let out = w.store().update_endpoint(e).await?;
        w.done(vec![Dependency::Catalog]).await?;
        Ok(out)
    }

    async fn delete_endpoint(&self, id: &str) -> StoreResult<bool> {
        let w = self.step().await?;
        let out = w.store().delete_endpoint(id).await?;
        w.done(vec![Dependency::Catalog]).await?;
        Ok(out)
    }

    async fn create_application_credential(
        &self,
        c: &ApplicationCredential,
        new_rules: &[AccessRule],
    ) -> StoreResult<()> {
        self.inner.create_application_credential(c, new_rules).await
    }

    async fn get_application_credential(
        &self,
        id: &str,
    ) -> StoreResult<Option<ApplicationCredential>> {
        self.inner.get_application_credential(id).await
    }

    async fn list_application_credentials(
        &self,
        user_id: &str,
        name: Option<&str>,
    ) -> StoreResult<Vec<ApplicationCredential>> {
        self.inner.list_application_credentials(user_id, name).await
    }

    async fn delete_application_credential(&self, id: &str) -> StoreResult<bool> {
        let w = self.step().await?;
        let gone = w.store().delete_application_credential(id).await?;
        w.done(vec![Dependency::ApplicationCredential(id.to_string())])
            .await?;
        Ok(gone)
    }

    async fn list_access_rules(&self, user_id: &str) -> StoreResult<Vec<AccessRule>> {
        self.inner.list_access_rules(user_id).await
    }

    async fn delete_access_rule(&self, id: &str) -> StoreResult<bool> {
        self.inner.delete_access_rule(id).await
    }

    async fn create_credential(
        &self,
        c: &crate::delegation::credential::StoredCredential,
    ) -> StoreResult<()> {
        self.inner.create_credential(c).await
    }

    async fn get_credential(
        &self,
        id: &str,
    ) -> StoreResult<Option<crate::delegation::credential::StoredCredential>> {
        self.inner.get_credential(id).await
    }

    async fn list_credentials(
        &self,
        user_id: Option<&str>,
        cred_type: Option<&str>,
    ) -> StoreResult<Vec<crate::delegation::credential::StoredCredential>> {
        self.inner.list_credentials(user_id, cred_type).await
    }

    async fn update_credential(
        &self,
        c: &crate::delegation::credential::StoredCredential,
    ) -> StoreResult<()> {
        self.inner.update_credential(c).await
    }

    async fn delete_credential(&self, id: &str) -> StoreResult<bool> {
        self.inner.delete_credential(id).await
    }

    async fn create_trust(&self, t: &Trust) -> StoreResult<()> {
        self.inner.create_trust(t).await
    }

    async fn get_trust(&self, id: &str) -> StoreResult<Option<Trust>> {
        self.inner.get_trust(id).await
    }

    async fn list_trusts(
        &self,
        trustor_user_id: Option<&str>,
        trustee_user_id: Option<&str>,
    ) -> StoreResult<Vec<Trust>> {
        self.inner
            .list_trusts(trustor_user_id, trustee_user_id)
            .await
    }

    async fn delete_trust(&self, id: &str) -> StoreResult<bool> {
        let w = self.step().await?;
        let gone = w.store().delete_trust(id).await?;
        w.done(vec![Dependency::Trust(id.to_string())]).await?;
        Ok(gone)
    }

    async fn consume_trust_use(&self, id: &str) -> StoreResult<bool> {
        self.inner.consume_trust_use(id).await
    }

    async fn put_document(&self, doc: &DocumentWrite<'_>) -> StoreResult<()> {
        let changed = document_dependency(doc.kind, doc.id);
        if changed.is_empty() {
            return self.inner.put_document(doc).await;
        }
        let w = self.step().await?;
        w.store().put_document(doc).await?;
        w.done(changed).await
    }

    async fn get_document(&self, kind: &str, id: &str) -> StoreResult<Option<serde_json::Value>> {
        self.inner.get_document(kind, id).await
    }

    async fn list_documents(&self, kind: &str) -> StoreResult<Vec<serde_json::Value>> {
        self.inner.list_documents(kind).await
    }

    async fn list_documents_of(
        &self,
        kind: &str,
        owner: &str,
    ) -> StoreResult<Vec<serde_json::Value>> {
        self.inner.list_documents_of(kind, owner).await
    }

    async fn list_unindexed_documents(&self, kind: &str) -> StoreResult<Vec<serde_json::Value>> {
        self.inner.list_unindexed_documents(kind).await
    }

    async fn delete_document(&self, kind: &str, id: &str) -> StoreResult<bool> {
        let changed = document_dependency(kind, id);
        if changed.is_empty() {
            return self.inner.delete_document(kind, id).await;
        }
        let w = self.step().await?;
        let gone = w.store().delete_document(kind, id).await?;
        w.done(changed).await?;
        Ok(gone)
    }

    async fn delete_documents_of(&self, kind: &str, owner: &str) -> StoreResult<Vec<String>> {
        // A kind validation never reads invalidates nothing, whichever documents go.
        if document_dependency(kind, "").is_empty() {
            return self.inner.delete_documents_of(kind, owner).await;
        }
        // Which documents go is known only once they are gone.
        let w = self.step().await?;
        let gone = w.store().delete_documents_of(kind, owner).await?;
        let changed = gone
            .iter()
            .flat_map(|id| document_dependency(kind, id))
            .collect();
        w.done(changed).await?;
        Ok(gone)
    }

    async fn put_oauth_record(
        &self,
        kind: &str,
        id: &str,
        body: &serde_json::Value,
        expires_at: i64,
        create_only: bool,
    ) -> StoreResult<()> {
        self.inner
            .put_oauth_record(kind, id, body, expires_at, create_only)
            .await
    }

    async fn get_oauth_record(
        &self,
        kind: &str,
        id: &str,
        now: i64,
    ) -> StoreResult<Option<serde_json::Value>> {
        self.inner.get_oauth_record(kind, id, now).await
    }

    async fn delete_oauth_record(&self, kind: &str, id: &str) -> StoreResult<bool> {
        self.inner.delete_oauth_record(kind, id).await
    }

    async fn prune_oauth_records(&self, now: i64) -> StoreResult<u64> {
        self.inner.prune_oauth_records(now).await
    }

    async fn add_revocation_event(&self, e: &RevocationEvent) -> StoreResult<()> {
        let w = self.step().await?;
        w.store().add_revocation_event(e).await?;
        w.done(vec![event_dependency(e), Dependency::Revocations])
            .await?;
        Ok(())
    }

    async fn list_revocation_events(
        &self,
        since: Option<OffsetDateTime>,
    ) -> StoreResult<Vec<RevocationEvent>> {
        self.inner.list_revocation_events(since).await
    }

    async fn prune_revocation_events(&self, before: OffsetDateTime) -> StoreResult<u64> {
        self.inner.prune_revocation_events(before).await
    }

    async fn record_token_changes(
        &self,
        changed: &[Dependency],
        at: OffsetDateTime,
    ) -> StoreResult<i64> {
        self.inner.record_token_changes(changed, at).await
    }

    async fn token_changes_since(
        &self,
        after: i64,
        limit: i64,
    ) -> StoreResult<Vec<(i64, Dependency)>> {
        self.inner.token_changes_since(after, limit).await
    }

    async fn latest_token_change(&self) -> StoreResult<i64> {
        self.inner.latest_token_change().await
    }

    async fn prune_token_changes(&self, before: OffsetDateTime) -> StoreResult<u64> {
        self.inner.prune_token_changes(before).await
    }
}
