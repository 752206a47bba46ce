//! [`Limen`]: the domain services, wired to a store, a clock, randomness and crypto.

use crate::authz::LivePolicy;
use crate::change_tracking::TrackingStore;
use crate::clock::{Clock, Random};
use crate::config::CoreConfig;
use crate::delegation::credential::CredentialCipher;
use crate::delegation::guess_limit::GuessLimiter;
use crate::error::CoreResult;
use crate::identity::password::PasswordHasher;
use crate::store::{Store, UnitOfWork};
use crate::token::validation_cache::{CacheSettings, Dependency, ValidationCache};
use crate::token::TokenCodec;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How often a server reads the change feed ([`Limen::sync_token_changes`]).
pub const SYNC_INTERVAL: Duration = Duration::from_millis(200);
/// Past this without a complete read of the feed, cached validations are not trusted:
/// together with the read interval this bounds how long another node's change can go
/// unnoticed (well under a second).
const MAX_SYNC_AGE: Duration = Duration::from_millis(700);
/// Changes kept in the feed: a node that could not read it for longer starts afresh.
const FEED_RETENTION: time::Duration = time::Duration::hours(1);
/// Most changes read per round.
const FEED_PAGE: i64 = 5000;

/// The domain services: what every area shares (store, clock, randomness, codecs,
/// policy, units of work). Each area's operations live on its own service type, reached
/// through `limen.identity()`, `limen.resource()`, `limen.assignment()`, `limen.token()`,
/// `limen.delegation()`, `limen.oauth()`, `limen.kubernetes()`, `limen.federation()` and
/// `limen.catalog()` (docs/architecture.md, ADR 10).
#[derive(Clone)]
pub struct Limen {
    /// Private: handlers read and write through the services, which check what a write
    /// needs ([`crate::authz::Authorized`]) and keep the validation cache right.
    pub(crate) store: Arc<dyn Store>,
    /// Set while these services run inside a unit of work ([`Limen::in_unit`]); `store`
    /// is then the unit.
    unit: Option<Arc<dyn UnitOfWork>>,
    pub clock: Arc<dyn Clock>,
    pub random: Arc<dyn Random>,
    pub tokens: Arc<dyn TokenCodec>,
    pub hasher: Arc<dyn PasswordHasher>,
    /// Encrypts stored credentials; `None` where no credential key repository exists.
    pub credentials: Option<Arc<dyn CredentialCipher>>,
    pub config: Arc<CoreConfig>,
    /// Validated tokens, invalidated through the store's change feed.
    pub validations: Arc<ValidationCache>,
    /// The last change-feed number this node has applied.
    synced_through: Arc<Mutex<Option<i64>>>,
    /// Wrong-secret allowances of application credentials, in this node's memory;
    /// `None` when the limit is off.
    pub guesses: Option<Arc<GuessLimiter>>,
    /// The policy [`Limen::authorize`] checks; Keystone's defaults until replaced.
    pub(crate) policy: Arc<LivePolicy>,
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
        let validations = Arc::new(ValidationCache::new(CacheSettings {
            enabled: config.token.caching,
            max_age: Duration::from_secs(config.token.cache_time),
            capacity: config.token.cache_size,
            max_sync_age: MAX_SYNC_AGE,
        }));
        let guesses =
            GuessLimiter::new(config.application_credential_failures_per_minute).map(Arc::new);
        Limen {
            store: Arc::new(TrackingStore::new(
                store,
                validations.clone(),
                clock.clone(),
            )),
            unit: None,
            clock,
            random,
            tokens,
            hasher,
            credentials: None,
            config: Arc::new(config),
            validations,
            synced_through: Arc::new(Mutex::new(None)),
            guesses,
            policy: Arc::new(LivePolicy::new(limen_policy::Policy::keystone_defaults())),
        }
    }

    /// Runs `work` as one unit of work: the store writes it makes through the services it
    /// is given commit together (with their change-feed entries), or none does (an error,
    /// a crash). Inside a unit, `in_unit` joins it.
    pub(crate) async fn in_unit<T>(
        &self,
        work: impl AsyncFnOnce(&Limen) -> CoreResult<T>,
    ) -> CoreResult<T> {
        if self.unit.is_some() {
            return work(self).await;
        }
        let unit = self.store.begin_unit().await?;
        let mut inside = self.clone();
        inside.store = unit.clone();
        inside.unit = Some(unit.clone());
        let out = work(&inside).await?;
        unit.commit().await?;
        Ok(out)
    }

    /// Sets the cipher for stored credentials.
    pub fn with_credential_cipher(mut self, c: Arc<dyn CredentialCipher>) -> Self {
        self.credentials = Some(c);
        self
    }

    /// Reads the store's change feed and applies what other nodes changed. A server calls
    /// this every [`SYNC_INTERVAL`]; until the first complete read, and whenever reads fail
    /// for too long, validations bypass the cache. Returns what the round read, so the
    /// server can reload key material it names; `All` stands for "anything may have
    /// changed" (the first read, or a gap in the feed).
    pub async fn sync_token_changes(&self) -> CoreResult<Vec<Dependency>> {
        let through = *self
            .synced_through
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let Some(mut through) = through else {
            // Nothing cached yet, so nothing before this point can be stale.
            let latest = self.store.latest_token_change().await?;
            *self
                .synced_through
                .lock()
                .unwrap_or_else(|p| p.into_inner()) = Some(latest);
            self.validations.synced();
            return Ok(vec![Dependency::All]);
        };
        let mut read = Vec::new();
        loop {
            let page = self.store.token_changes_since(through, FEED_PAGE).await?;
            let Some(&(first, _)) = page.first() else {
                break;
            };
            // Numbers are gap-free; a gap means the feed was pruned past what this node saw.
            let mut changed: Vec<Dependency> = page.iter().map(|(_, d)| d.clone()).collect();
            if first != through + 1 {
                changed.push(Dependency::All);
            }
            self.validations.apply(&changed);
            read.extend(changed);
            through = page.last().map_or(through, |(n, _)| *n);
            *self
                .synced_through
                .lock()
                .unwrap_or_else(|p| p.into_inner()) = Some(through);
            if (page.len() as i64) < FEED_PAGE {
                break;
            }
        }
        self.validations.synced();
        Ok(read)
    }

    /// Drops revocation events of tokens issued before `before`: no live token can
    /// match them any more.
    pub async fn prune_revocation_events(&self, before: time::OffsetDateTime) -> CoreResult<u64> {
        Ok(self.store.prune_revocation_events(before).await?)
    }

    /// Drops feed entries no node can still need.
    pub async fn prune_token_changes(&self) -> CoreResult<u64> {
        Ok(self
            .store
            .prune_token_changes(self.clock.now() - FEED_RETENTION)
            .await?)
    }

    pub(crate) fn new_id(&self) -> String {
        self.random.new_id()
    }
}
