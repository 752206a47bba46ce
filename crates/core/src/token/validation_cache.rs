//! A cache of validated tokens, shared by every request of a node, with exact invalidation.
//!
//! A validated token depends on stored things (its user, the user's domain, its project or
//! domain, the grants behind its roles, its trust, application credential, OAuth1 access
//! token, revocation events). Every write to one of them is recorded in the store as a
//! [`Dependency`] change (see [`crate::change_tracking`]); each node applies its own
//! changes at once and everybody else's when it polls the store's change feed, which the
//! server does several times a second.
//!
//! How staleness is ruled out: every entry is tagged with the node's change epoch read
//! *before* the validation's reads began. Applying a change raises the epoch and marks
//! each dependency it names with the new epoch. An entry is served only while none of its
//! dependencies (nor [`Dependency::All`]) carries a mark newer than its tag, so data read
//! before a change is never served after the node has seen it, whenever it was inserted.
//! When the feed cannot be read (the store is unreachable or the feed was never synced,
//! e.g. in a CLI process), the cache is bypassed rather than trusted.

use crate::catalog::CatalogEntry;
use crate::federation::ServiceProvider;
use crate::model::{RevocationEvent, Role};
use crate::token::auth::{ResolvedScope, TokenInfo};
use quick_cache::sync::Cache;
use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};
use time::OffsetDateTime;

/// What a validated token can depend on. `All` stands for changes too broad to name
/// (a role renamed or deleted, an implied role, a group deleted …).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Dependency {
    All,
    User(String),
    Project(String),
    Domain(String),
    Trust(String),
    ApplicationCredential(String),
    OAuth1AccessToken(String),
    OAuth1Consumer(String),
    /// A token's own audit id or its chain's (revocation of one token or a chain).
    Audit(String),
    /// Services, endpoints, regions and endpoint filters: what token catalogs show.
    Catalog,
    /// The federation service providers every token body lists.
    ServiceProviders,
    /// Any revocation event (besides the narrower dependency it also names): what a
    /// token about to be stamped must not predate.
    Revocations,
    /// Key material or token-format settings stored in the database (`fernet`,
    /// `credential`, `jws`, `settings`): what nodes reload. No validation depends on it
    /// (the codec's key generation covers that); it travels the feed for the key follower.
    KeyMaterial(String),
}

impl Dependency {
    /// The kind's name in the change feed.
    pub fn kind(&self) -> &'static str {
        match self {
            Dependency::All => "all",
            Dependency::User(_) => "user",
            Dependency::Project(_) => "project",
            Dependency::Domain(_) => "domain",
            Dependency::Trust(_) => "trust",
            Dependency::ApplicationCredential(_) => "application_credential",
            Dependency::OAuth1AccessToken(_) => "oauth1_access_token",
            Dependency::OAuth1Consumer(_) => "oauth1_consumer",
            Dependency::Audit(_) => "audit",
            Dependency::Catalog => "catalog",
            Dependency::ServiceProviders => "service_providers",
            Dependency::Revocations => "revocations",
            Dependency::KeyMaterial(_) => "key_material",
        }
    }

    pub fn id(&self) -> &str {
        match self {
            Dependency::All
            | Dependency::Catalog
            | Dependency::ServiceProviders
            | Dependency::Revocations => "",
            Dependency::User(id)
            | Dependency::Project(id)
            | Dependency::Domain(id)
            | Dependency::Trust(id)
            | Dependency::ApplicationCredential(id)
            | Dependency::OAuth1AccessToken(id)
            | Dependency::OAuth1Consumer(id)
            | Dependency::Audit(id)
            | Dependency::KeyMaterial(id) => id,
        }
    }

    /// Reads a feed row back; an unknown kind (written by a newer node) counts as `All`.
    pub fn from_parts(kind: &str, id: &str) -> Dependency {
        let id = id.to_string();
        match kind {
            "user" => Dependency::User(id),
            "project" => Dependency::Project(id),
            "domain" => Dependency::Domain(id),
            "trust" => Dependency::Trust(id),
            "application_credential" => Dependency::ApplicationCredential(id),
            "oauth1_access_token" => Dependency::OAuth1AccessToken(id),
            "oauth1_consumer" => Dependency::OAuth1Consumer(id),
            "audit" => Dependency::Audit(id),
            "catalog" => Dependency::Catalog,
            "service_providers" => Dependency::ServiceProviders,
            "revocations" => Dependency::Revocations,
            "key_material" => Dependency::KeyMaterial(id),
            _ => Dependency::All,
        }
    }
}

/// Cache settings (`[token] caching`, `cache_time`, `cache_size`).
#[derive(Debug, Clone)]
pub struct CacheSettings {
    pub enabled: bool,
    /// The longest an entry is served, whatever happens.
    pub max_age: Duration,
    pub capacity: usize,
    /// How stale the node's view of the change feed may be before the cache is bypassed.
    pub max_sync_age: Duration,
}

struct Entry {
    info: Arc<TokenInfo>,
    tag: u64,
    /// The token codec's key generation the validation ran under.
    keys: u64,
    dependencies: Vec<Dependency>,
    /// The earliest expiry among the token and what it was issued through.
    valid_until: OffsetDateTime,
    cached_at: Instant,
}

struct Mark {
    epoch: u64,
    at: Instant,
}

/// The epoch and key generation at which a validation started; pass it back to
/// [`ValidationCache::insert`].
#[derive(Debug, Clone, Copy)]
pub struct Ticket {
    epoch: u64,
    keys: u64,
}

/// Values derived from stored data (catalogs, the service providers, a user's roles on a
/// scope, rendered token bodies), cached by key under the same invalidation as
/// validations: an entry is dropped once one of the dependencies it was inserted with
/// changes. Keep values cheap to clone (an `Arc`, `Bytes`).
pub struct Derived<T> {
    entries: Option<Cache<String, Arc<DerivedEntry<T>>>>,
}

struct DerivedEntry<T> {
    value: T,
    tag: u64,
    dependencies: Vec<Dependency>,
    cached_at: Instant,
}

impl<T> Derived<T> {
    /// A cache of up to `capacity` values; `on = false` caches nothing.
    pub fn new(on: bool, capacity: usize) -> Self {
        Derived {
            entries: on.then(|| Cache::new(capacity.max(1))),
        }
    }

    fn clear(&self) {
        if let Some(e) = &self.entries {
            e.clear();
        }
    }
}

pub struct ValidationCache {
    settings: CacheSettings,
    entries: Option<Cache<String, Arc<Entry>>>,
    /// Token catalogs by project ("" for none).
    pub catalogs: Derived<Arc<Vec<CatalogEntry>>>,
    /// The enabled service providers (one entry, "").
    pub service_providers: Derived<Arc<Vec<ServiceProvider>>>,
    /// A user's scope and roles on it, by user and requested scope: what issuing a
    /// token resolves.
    pub scopes: Derived<Arc<(ResolvedScope, Vec<Role>)>>,
    /// Users' current password expiry, by user id.
    pub password_expiries: Derived<Option<OffsetDateTime>>,
    /// Revocation events recent enough to matter to a token stamped in a given second.
    pub recent_revocations: Derived<Arc<Vec<RevocationEvent>>>,
    epoch: AtomicU64,
    marks: RwLock<HashMap<Dependency, Mark>>,
    /// When the change feed was last read completely; `None` before the first read.
    synced_at: Mutex<Option<Instant>>,
}

impl ValidationCache {
    pub fn new(settings: CacheSettings) -> Self {
        let on = settings.enabled && settings.capacity > 0;
        let entries = on.then(|| Cache::new(settings.capacity));
        ValidationCache {
            catalogs: Derived::new(on, settings.capacity.min(1000)),
            service_providers: Derived::new(on, 1),
            scopes: Derived::new(on, settings.capacity),
            password_expiries: Derived::new(on, settings.capacity),
            recent_revocations: Derived::new(on, 4),
            settings,
            entries,
            epoch: AtomicU64::new(1),
            marks: RwLock::new(HashMap::new()),
            synced_at: Mutex::new(None),
        }
    }

    fn usable(&self) -> Option<&Cache<String, Arc<Entry>>> {
        let entries = self.entries.as_ref()?;
        self.synced_recently().then_some(entries)
    }

    fn synced_recently(&self) -> bool {
        let synced = self
            .synced_at
            .lock()
            .map(|s| *s)
            .unwrap_or_else(|p| *p.into_inner());
        synced.is_some_and(|at| at.elapsed() <= self.settings.max_sync_age)
    }

    fn marked_since(&self, tag: u64, dependencies: &[Dependency]) -> bool {
        let marks = self.marks.read().unwrap_or_else(|p| p.into_inner());
        let newer = |d: &Dependency| marks.get(d).is_some_and(|m| m.epoch > tag);
        newer(&Dependency::All) || dependencies.iter().any(newer)
    }

    /// The cached value of `derived` under `key`, if still good.
    pub fn derived<T: Clone>(&self, derived: &Derived<T>, key: &str) -> Option<T> {
        let entries = derived
            .entries
            .as_ref()
            .filter(|_| self.synced_recently())?;
        let entry = entries.get(key)?;
        if entry.cached_at.elapsed() >= self.settings.max_age
            || self.marked_since(entry.tag, &entry.dependencies)
        {
            return None;
        }
        Some(entry.value.clone())
    }

    /// Caches `value` (read after `ticket` was taken, resting on `dependencies`) under
    /// `key`.
    pub fn insert_derived<T>(
        &self,
        derived: &Derived<T>,
        key: &str,
        ticket: Ticket,
        value: T,
        dependencies: Vec<Dependency>,
    ) {
        let Some(entries) = derived.entries.as_ref().filter(|_| self.synced_recently()) else {
            return;
        };
        entries.insert(
            key.to_string(),
            Arc::new(DerivedEntry {
                value,
                tag: ticket.epoch,
                dependencies,
                cached_at: Instant::now(),
            }),
        );
    }

    /// The cached value of `derived` under `key`, or else what `read` gives, which is
    /// then cached with the dependencies it names. `read` is a future, so nothing it
    /// reads is read before the ticket is taken.
    pub async fn derive<T: Clone, E>(
        &self,
        derived: &Derived<T>,
        key: &str,
        read: impl Future<Output = Result<(T, Vec<Dependency>), E>>,
    ) -> Result<T, E> {
        if let Some(v) = self.derived(derived, key) {
            return Ok(v);
        }
        let ticket = self.ticket(0);
        let (value, dependencies) = read.await?;
        self.insert_derived(derived, key, ticket, value.clone(), dependencies);
        Ok(value)
    }

    /// A cached validation of `token`, if one is still good at `now` under the token
    /// codec's current key generation `keys` (keys rotated away or a format no longer
    /// accepted must not keep validating from the cache).
    pub fn get(&self, token: &str, now: OffsetDateTime, keys: u64) -> Option<Arc<TokenInfo>> {
        let entries = self.usable()?;
        let entry = entries.get(token)?;
        if now >= entry.valid_until
            || entry.cached_at.elapsed() >= self.settings.max_age
            || entry.keys != keys
        {
            entries.remove(token);
            return None;
        }
        if self.marked_since(entry.tag, &entry.dependencies) {
            entries.remove(token);
            return None;
        }
        Some(entry.info.clone())
    }

    /// Taken before a validation reads anything, with the codec's key generation.
    pub fn ticket(&self, keys: u64) -> Ticket {
        Ticket {
            epoch: self.epoch.load(Ordering::SeqCst),
            keys,
        }
    }

    pub fn insert(
        &self,
        token: &str,
        ticket: Ticket,
        info: &Arc<TokenInfo>,
        dependencies: Vec<Dependency>,
        valid_until: OffsetDateTime,
    ) {
        let Some(entries) = self.usable() else {
            return;
        };
        entries.insert(
            token.to_string(),
            Arc::new(Entry {
                info: info.clone(),
                tag: ticket.epoch,
                keys: ticket.keys,
                dependencies,
                valid_until,
                cached_at: Instant::now(),
            }),
        );
    }

    /// Makes every entry depending on one of `changed` stale.
    pub fn apply(&self, changed: &[Dependency]) {
        if changed.is_empty() {
            return;
        }
        let epoch = self.epoch.fetch_add(1, Ordering::SeqCst) + 1;
        let now = Instant::now();
        let mut marks = self.marks.write().unwrap_or_else(|p| p.into_inner());
        for d in changed {
            marks.insert(d.clone(), Mark { epoch, at: now });
        }
        // Entries never outlive `max_age`, so older marks can no longer reject anything.
        if marks.len() > 4096 {
            let max_age = self.settings.max_age;
            marks.retain(|_, m| m.at.elapsed() < max_age);
        }
        drop(marks);
        if changed.contains(&Dependency::All) {
            if let Some(entries) = &self.entries {
                entries.clear();
            }
            self.catalogs.clear();
            self.service_providers.clear();
            self.scopes.clear();
            self.password_expiries.clear();
            self.recent_revocations.clear();
        }
    }

    /// Records that the change feed has just been read completely.
    pub fn synced(&self) {
        let mut s = self.synced_at.lock().unwrap_or_else(|p| p.into_inner());
        *s = Some(Instant::now());
    }

    pub fn len(&self) -> usize {
        self.entries.as_ref().map_or(0, |e| e.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn catalog() -> Vec<Dependency> {
        vec![Dependency::Catalog]
    }

    fn cache() -> ValidationCache {
        ValidationCache::new(CacheSettings {
            enabled: true,
            max_age: Duration::from_secs(300),
            capacity: 100,
            max_sync_age: Duration::from_secs(60),
        })
    }

    #[test]
    fn nothing_is_served_before_the_feed_was_read() {
        let c = cache();
        let t = c.ticket(0);
        c.insert_derived(&c.catalogs, "p", t, Arc::new(vec![]), catalog());
        assert!(c.derived(&c.catalogs, "p").is_none());
        c.synced();
        c.insert_derived(&c.catalogs, "p", c.ticket(0), Arc::new(vec![]), catalog());
        assert!(c.derived(&c.catalogs, "p").is_some());
    }

    #[test]
    fn a_value_read_before_a_change_is_never_served_after_it() {
        let c = cache();
        c.synced();
        // A read starts, a change is applied meanwhile, then the read's result arrives.
        let before = c.ticket(0);
        c.apply(&[Dependency::Catalog]);
        c.insert_derived(&c.catalogs, "p", before, Arc::new(vec![]), catalog());
        assert!(c.derived(&c.catalogs, "p").is_none());
        // A read that starts after the change is served.
        c.insert_derived(&c.catalogs, "p", c.ticket(0), Arc::new(vec![]), catalog());
        assert!(c.derived(&c.catalogs, "p").is_some());
        // Changes to other things leave it alone; `All` does not.
        c.apply(&[Dependency::User("u".into()), Dependency::ServiceProviders]);
        assert!(c.derived(&c.catalogs, "p").is_some());
        c.apply(&[Dependency::All]);
        assert!(c.derived(&c.catalogs, "p").is_none());
    }

    #[test]
    fn a_disabled_cache_serves_nothing() {
        let c = ValidationCache::new(CacheSettings {
            enabled: false,
            max_age: Duration::from_secs(300),
            capacity: 100,
            max_sync_age: Duration::from_secs(60),
        });
        c.synced();
        c.insert_derived(
            &c.service_providers,
            "",
            c.ticket(0),
            Arc::new(vec![]),
            vec![Dependency::ServiceProviders],
        );
        assert!(c.derived(&c.service_providers, "").is_none());
        assert!(c.is_empty());
    }

    #[test]
    fn feed_rows_read_back_as_what_was_written() {
        for d in [
            Dependency::All,
            Dependency::User("u1".into()),
            Dependency::Project("p1".into()),
            Dependency::Domain("d1".into()),
            Dependency::Trust("t1".into()),
            Dependency::ApplicationCredential("a1".into()),
            Dependency::OAuth1AccessToken("o1".into()),
            Dependency::OAuth1Consumer("c1".into()),
            Dependency::Audit("x1".into()),
            Dependency::Catalog,
            Dependency::ServiceProviders,
            Dependency::Revocations,
            Dependency::KeyMaterial("fernet".into()),
        ] {
            assert_eq!(Dependency::from_parts(d.kind(), d.id()), d);
        }
        // A kind a newer node wrote counts as everything.
        assert_eq!(Dependency::from_parts("later", "x"), Dependency::All);
    }
}
