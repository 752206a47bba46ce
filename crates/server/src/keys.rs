//! Key material shared through the store (`[keys] source = "database"`): Fernet token and
//! credential keys sealed with the key-encryption key (KEK), every node's JWS public keys,
//! and the cloud-wide token-format setting. Every change is an entry in the store's change
//! feed, which a running node reads several times a second (for its token cache as well);
//! [`KeyFollower`] swaps in whatever the feed names, so a rotation or a format switch on
//! one node reaches all of them within about a second.
//!
//! The same functions back the CLI (`limen keys …`, `limen token-format …`).

use crate::config::{Config, KeySource};
use limen_core::config::TokenFormat;
use limen_core::error::StoreError;
use limen_core::token::validation_cache::Dependency;
use limen_crypto::fernet::keys::generate_key;
use limen_crypto::jws::PublicKeyInfo;
use limen_crypto::oidc_keys::{rotate_slots, slot_infos, SigningSlot, SlotInfo};
use limen_crypto::{
    JwsCodec, JwsKeyError, Kek, KekError, KeyRepository, KeyRepositoryError, LiveOidcKeys,
    OidcKeyError, OidcKeys, Selection, SharedFernetKeys, TokenFormats,
};
use limen_store::keys::{COUNTER_JWS, COUNTER_SETTINGS};
use limen_store::{KeyKind, PublishedKey, Rotation, SealedKey, SqlStore};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use thiserror::Error;
use time::OffsetDateTime;

/// How long after a change in the store every running node is sure to use it: many
/// reads of the change feed, with room for slow ones. JWS rotation publishes a new public key this long
/// before signing with it; a format becomes the issued one only after it has been
/// accepted this long.
pub const PROPAGATION: Duration = Duration::from_secs(3);

/// The environment variable holding the KEK itself (base64), preferred over `kek_file`.
pub const KEK_ENV: &str = "LIMEN_KEK";

/// The cloud-wide token-format setting's name in `cluster_settings`.
pub const TOKEN_FORMATS_SETTING: &str = "token_formats";

#[derive(Debug, Error)]
pub enum KeysError {
    #[error("keys.source is \"database\" but no key-encryption key is configured: set keys.kek_file or {KEK_ENV} (`limen keys kek generate` makes one)")]
    NoKek,
    #[error("{KEK_ENV}: {0}")]
    KekEnv(KekError),
    #[error(transparent)]
    Kek(KekError),
    #[error("cannot open the {kind} keys stored in the database: {source}")]
    Open {
        kind: &'static str,
        source: KekError,
    },
    #[error("the database holds no {0} keys; run `limen bootstrap` or `limen keys {0} setup`")]
    NoKeys(&'static str),
    #[error("key store: {0}")]
    Store(#[from] StoreError),
    #[error(transparent)]
    Repository(#[from] KeyRepositoryError),
    #[error(transparent)]
    Oidc(#[from] OidcKeyError),
    #[error(transparent)]
    Jws(#[from] JwsKeyError),
    #[error("{0}")]
    Refused(String),
}

/// The KEK named by the configuration: `LIMEN_KEK` if set, else `[keys] kek_file`.
/// Earlier KEKs from `[keys] previous_kek_files` open what they sealed, too.
pub fn load_kek(config: &Config) -> Result<Kek, KeysError> {
    let current = if let Ok(text) = std::env::var(KEK_ENV) {
        Kek::from_base64(&text).map_err(KeysError::KekEnv)?
    } else {
        match &config.keys.kek_file {
            Some(path) => Kek::from_file(path).map_err(KeysError::Kek)?,
            None => return Err(KeysError::NoKek),
        }
    };
    let previous = config
        .keys
        .previous_kek_files
        .iter()
        .map(|p| Kek::from_file(p).map_err(KeysError::Kek))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(current.with_previous(previous))
}

/// Re-seals every stored key that an earlier KEK sealed with the current KEK, one
/// transaction per kind. Returns how many keys were re-sealed.
pub async fn reseal_keys(store: &SqlStore, kek: &Kek) -> Result<usize, KeysError> {
    let mut total = 0;
    for kind in [KeyKind::Fernet, KeyKind::Credential, KeyKind::Oidc] {
        let mut updates = Vec::new();
        for k in store.sealed_keys(kind).await? {
            if kek.is_current(&k.sealed) {
                continue;
            }
            let plain = open_sealed(kek, kind, &k.sealed)?;
            let sealed = kek.seal(kind.as_str(), &plain).map_err(KeysError::Kek)?;
            updates.push((k.number, k.sealed, sealed));
        }
        if !updates.is_empty() {
            total += store.reseal_keys(kind, &updates).await?;
        }
    }
    Ok(total)
}

/// This node's name on what it publishes.
pub fn node_name(config: &Config) -> String {
    if let Some(n) = &config.keys.node_name {
        return n.clone();
    }
    std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "limen".into())
}

pub fn is_database(config: &Config) -> bool {
    config.keys.source == KeySource::Database
}

/// Opens one sealed `kind` key with the KEK.
fn open_sealed(kek: &Kek, kind: KeyKind, sealed: &str) -> Result<Vec<u8>, KeysError> {
    kek.open(kind.as_str(), sealed)
        .map_err(|source| KeysError::Open {
            kind: kind.as_str(),
            source,
        })
}

/// The `kind` keys in the store, opened: their texts, primary first, staged last.
pub async fn load_keys(
    store: &SqlStore,
    kek: &Kek,
    kind: KeyKind,
) -> Result<Vec<String>, KeysError> {
    let sealed = store.sealed_keys(kind).await?;
    if sealed.is_empty() {
        return Err(KeysError::NoKeys(kind.as_str()));
    }
    sealed
        .iter()
        .map(|k| {
            let plain = open_sealed(kek, kind, &k.sealed)?;
            String::from_utf8(plain).map_err(|_| {
                KeysError::Repository(KeyRepositoryError::BadKey(format!(
                    "stored {} key {}",
                    kind.as_str(),
                    k.number
                )))
            })
        })
        .collect()
}

fn seal(kek: &Kek, kind: KeyKind, key: &str) -> Result<String, KeysError> {
    kek.seal(kind.as_str(), key.as_bytes())
        .map_err(KeysError::Kek)
}

/// Creates the `kind` key set in the store if it holds none; false when it existed.
pub async fn setup_keys(store: &SqlStore, kek: &Kek, kind: KeyKind) -> Result<bool, KeysError> {
    if !store.sealed_keys(kind).await?.is_empty() {
        // Existing keys must open with this KEK, or the operator has the wrong one.
        load_keys(store, kek, kind).await?;
        return Ok(false);
    }
    let staged = seal(kek, kind, &generate_key())?;
    let primary = seal(kek, kind, &generate_key())?;
    Ok(store.setup_keys(kind, &staged, &primary).await?)
}

/// The OpenID Provider's slots in the store: as stored, and opened.
async fn stored_oidc_slots(
    store: &SqlStore,
    kek: &Kek,
) -> Result<(Vec<SealedKey>, Vec<(u64, SigningSlot)>), KeysError> {
    let sealed = store.sealed_keys(KeyKind::Oidc).await?;
    let mut slots = Vec::with_capacity(sealed.len());
    for k in &sealed {
        let plain = open_sealed(kek, KeyKind::Oidc, &k.sealed)?;
        let text = String::from_utf8(plain)
            .map_err(|e| OidcKeyError::BadKey(format!("slot {}: {e}", k.number)))?;
        slots.push((k.number, SigningSlot::from_stored(&text)?));
    }
    Ok((sealed, slots))
}

fn seal_slots(kek: &Kek, slots: &[(u64, SigningSlot)]) -> Result<Vec<SealedKey>, KeysError> {
    slots
        .iter()
        .map(|(n, slot)| {
            Ok(SealedKey {
                number: *n,
                sealed: seal(kek, KeyKind::Oidc, &slot.to_stored())?,
            })
        })
        .collect()
}

/// The OpenID Provider's keys in the store; `None` before `limen keys oidc setup`.
pub async fn load_oidc_keys(store: &SqlStore, kek: &Kek) -> Result<Option<OidcKeys>, KeysError> {
    Ok(OidcKeys::from_slots(stored_oidc_slots(store, kek).await?.1))
}

/// Creates a staged and a primary slot in the store if it holds none; false when it did.
pub async fn setup_oidc_keys(store: &SqlStore, kek: &Kek) -> Result<bool, KeysError> {
    if !stored_oidc_slots(store, kek).await?.1.is_empty() {
        return Ok(false);
    }
    let staged = seal(kek, KeyKind::Oidc, &SigningSlot::generate()?.to_stored())?;
    let primary = seal(kek, KeyKind::Oidc, &SigningSlot::generate()?.to_stored())?;
    Ok(store.setup_keys(KeyKind::Oidc, &staged, &primary).await?)
}

/// Rotates the slots in the store (see `limen_crypto::oidc_keys::rotate_slots`); returns
/// the new primary's number. A rotation by another node meanwhile is not overwritten:
/// this one starts again from what that one left.
pub async fn rotate_oidc_keys(
    store: &SqlStore,
    kek: &Kek,
    now: OffsetDateTime,
    retention: time::Duration,
) -> Result<u64, KeysError> {
    for _ in 0..3 {
        let (before, slots) = stored_oidc_slots(store, kek).await?;
        let after = rotate_slots(
            slots,
            SigningSlot::generate()?,
            now,
            retention,
            "the database",
        )?;
        if store
            .replace_keys(KeyKind::Oidc, &before, &seal_slots(kek, &after)?)
            .await?
        {
            return Ok(after.first().map_or(0, |(n, _)| *n));
        }
    }
    Err(KeysError::Refused(
        "the OIDC keys kept changing while rotating them; try again".into(),
    ))
}

/// Every slot in the store with its role and key ids, primary first.
pub async fn list_oidc_keys(store: &SqlStore, kek: &Kek) -> Result<Vec<SlotInfo>, KeysError> {
    Ok(slot_infos(&stored_oidc_slots(store, kek).await?.1))
}

/// Keystone's rotation of the `kind` keys in the store, in one transaction.
pub async fn rotate_keys(
    store: &SqlStore,
    kek: &Kek,
    kind: KeyKind,
    max_active_keys: usize,
) -> Result<Rotation, KeysError> {
    if max_active_keys < 1 {
        return Err(KeyRepositoryError::BadMaxActiveKeys.into());
    }
    // Check the KEK first: rotating in keys another KEK cannot open would split the set.
    load_keys(store, kek, kind).await?;
    let staged = seal(kek, kind, &generate_key())?;
    Ok(store.rotate_keys(kind, &staged, max_active_keys).await?)
}

/// Moves a Keystone key repository (files named by number) into the store. Refuses to
/// replace keys the store already holds unless `replace` is set. Returns the numbers.
pub async fn import_keys(
    store: &SqlStore,
    kek: &Kek,
    kind: KeyKind,
    dir: &std::path::Path,
    replace: bool,
) -> Result<Vec<u64>, KeysError> {
    let keys = KeyRepository::new(dir).load()?;
    let sealed = keys
        .iter()
        .map(|(number, key)| {
            Ok(SealedKey {
                number: *number,
                sealed: seal(kek, kind, key)?,
            })
        })
        .collect::<Result<Vec<_>, KeysError>>()?;
    if !store.import_keys(kind, &sealed, replace).await? {
        return Err(KeysError::Refused(format!(
            "the database already holds {} keys; importing would invalidate the tokens they \
             issued. Pass --replace to do it anyway",
            kind.as_str()
        )));
    }
    let mut numbers: Vec<u64> = keys.iter().map(|(n, _)| *n).collect();
    numbers.sort_unstable();
    Ok(numbers)
}

/// The cloud-wide token formats as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredFormats {
    pub issue: TokenFormat,
    pub accept: Vec<TokenFormat>,
}

impl StoredFormats {
    pub fn selection(&self) -> Selection {
        Selection::new(self.issue, &self.accept)
    }
}

/// The stored token-format override and when it was written, if any.
pub async fn stored_formats(
    store: &SqlStore,
) -> Result<Option<(StoredFormats, OffsetDateTime)>, KeysError> {
    let Some(setting) = store.cluster_setting(TOKEN_FORMATS_SETTING).await? else {
        return Ok(None);
    };
    let formats: StoredFormats = serde_json::from_str(&setting.value).map_err(|e| {
        KeysError::Refused(format!(
            "the stored token-format setting is unreadable: {e}"
        ))
    })?;
    Ok(Some((formats, setting.updated_at)))
}

/// How `limen token-format set` may change the formats in force (`current`, accepted
/// since `since`) to `next`: the new issued format must already be accepted everywhere
/// (accepted by the current setting for at least [`PROPAGATION`]) and the new setting must
/// keep accepting the format issued until now, or some node would hand out or receive a
/// token another node rejects. Returns how long to wait first.
pub fn check_format_change(
    current: &Selection,
    since: Option<OffsetDateTime>,
    next: &Selection,
    now: OffsetDateTime,
) -> Result<Duration, String> {
    let name = |f: TokenFormat| format!("{f:?}").to_lowercase();
    if next.issue != current.issue {
        if !current.accepts(next.issue) {
            return Err(format!(
                "refusing to issue {0} tokens: not every node accepts them yet. First run \
                 `limen token-format set --issue {1} --accept {1},{0}`, wait a few seconds, \
                 then switch the issued format",
                name(next.issue),
                name(current.issue)
            ));
        }
        if !next.accepts(current.issue) {
            return Err(format!(
                "refusing to stop accepting {0} tokens while switching the issued format: \
                 tokens issued as {0} until now would fail at once. Keep --accept {0} until \
                 they have expired",
                name(current.issue)
            ));
        }
        if let Some(since) = since {
            let age = now - since;
            let need = time::Duration::try_from(PROPAGATION).unwrap_or(time::Duration::ZERO);
            if age < need {
                return Ok((need - age).try_into().unwrap_or(PROPAGATION));
            }
        }
    }
    Ok(Duration::ZERO)
}

/// Writes (`Some`) or clears (`None`) the cloud-wide token-format setting.
pub async fn store_formats(
    store: &SqlStore,
    formats: Option<&StoredFormats>,
) -> Result<(), KeysError> {
    let value = formats
        .map(serde_json::to_string)
        .transpose()
        .map_err(|e| KeysError::Refused(e.to_string()))?;
    store
        .set_cluster_setting(TOKEN_FORMATS_SETTING, value.as_deref())
        .await?;
    Ok(())
}

/// Publishes the public half of this node's JWS signing key, if it has one.
pub async fn publish_own_jws_key(
    store: &SqlStore,
    codec: &JwsCodec,
    node: &str,
) -> Result<Option<PublishedKey>, KeysError> {
    let Some(info) = codec.repository().signing_public_key()? else {
        return Ok(None);
    };
    Ok(Some(publish_jws_key(store, &info, node).await?))
}

pub async fn publish_jws_key(
    store: &SqlStore,
    info: &PublicKeyInfo,
    node: &str,
) -> Result<PublishedKey, KeysError> {
    Ok(store
        .publish_jws_key(&info.fingerprint, node, &info.pem)
        .await?)
}

/// Everything a node keeps in step with the store while it runs.
pub struct KeySync {
    pub store: SqlStore,
    pub kek: Arc<Kek>,
    pub node: String,
    pub fernet: Arc<SharedFernetKeys>,
    pub credential: Option<Arc<SharedFernetKeys>>,
    pub formats: Arc<TokenFormats>,
    /// The OpenID Provider's keys, kept in the database.
    pub oidc: Arc<LiveOidcKeys>,
}

impl KeySync {
    /// Reads everything once (at start), failing on what a node cannot run without.
    pub async fn refresh_all(&self) -> Result<(), KeysError> {
        self.refresh_jws().await?;
        self.refresh_formats().await?;
        Ok(())
    }

    /// Reloads a Fernet key set (token or credential keys).
    async fn refresh_keys(&self, kind: KeyKind) -> Result<(), KeysError> {
        let set = match kind {
            KeyKind::Fernet => &self.fernet,
            KeyKind::Credential => match &self.credential {
                Some(c) => c,
                None => return Ok(()),
            },
            // Slots, not a Fernet set: see `refresh_oidc`.
            KeyKind::Oidc => return self.refresh_oidc().await,
        };
        let keys = load_keys(&self.store, &self.kek, kind).await?;
        set.replace(keys)?;
        Ok(())
    }

    async fn refresh_oidc(&self) -> Result<(), KeysError> {
        self.oidc
            .replace(load_oidc_keys(&self.store, &self.kek).await?);
        Ok(())
    }

    async fn refresh_jws(&self) -> Result<(), KeysError> {
        if let Some(codec) = self.formats.jws_codec() {
            let published: Vec<String> = self
                .store
                .jws_public_keys()
                .await?
                .into_iter()
                .map(|k| k.public_pem)
                .collect();
            codec.set_published(&published);
        }
        Ok(())
    }

    async fn refresh_formats(&self) -> Result<(), KeysError> {
        let over = stored_formats(&self.store)
            .await?
            .map(|(f, _)| f.selection());
        if let Some(sel) = &over {
            if sel.accepts(TokenFormat::Jws) && self.formats.jws_codec().is_none() {
                return Err(KeysError::Refused(
                    "the stored token formats name jws but this node has no JWS keys".into(),
                ));
            }
        }
        self.formats.set_override(over);
        Ok(())
    }

    /// Publishes this node's signing key if it changed since `last` (a rotation by
    /// `limen keys jws rotate` has published it already; this covers keys replaced by
    /// hand and the start).
    async fn publish_if_changed(&self, last: &mut Option<String>) {
        let Some(codec) = self.formats.jws_codec() else {
            return;
        };
        match codec.repository().signing_public_key() {
            Ok(Some(info)) if last.as_deref() != Some(info.fingerprint.as_str()) => {
                match publish_jws_key(&self.store, &info, &self.node).await {
                    Ok(_) => {
                        tracing::info!(fingerprint = %info.fingerprint, "published this node's JWS public key");
                        *last = Some(info.fingerprint);
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot publish this node's JWS public key")
                    }
                }
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "cannot read this node's JWS key"),
        }
    }
}

/// Follows the change feed for [`KeySync`]: reloads the material each round names (all of
/// it after the first read or a gap in the feed) and publishes this node's JWS key when
/// its file changed. A failed reload keeps the material in use and is retried next round;
/// each distinct failure is logged once (without key material: errors never carry it).
#[derive(Default)]
pub struct KeyFollower {
    /// Material to reload, and whether the feed named it (a reload worth logging).
    pending: BTreeMap<String, bool>,
    published: Option<String>,
    last_error: Option<String>,
}

/// Everything [`KeyFollower`] can reload.
const MATERIAL: [&str; 5] = [
    "fernet",
    "credential",
    "oidc",
    COUNTER_JWS,
    COUNTER_SETTINGS,
];

impl KeyFollower {
    /// One round, with what the change feed read (empty when it could not be read).
    pub async fn round(&mut self, sync: &KeySync, changed: &[Dependency]) {
        sync.publish_if_changed(&mut self.published).await;
        for d in changed {
            match d {
                Dependency::All => {
                    for name in MATERIAL {
                        self.pending.entry(name.to_string()).or_insert(false);
                    }
                }
                Dependency::KeyMaterial(name) => {
                    self.pending.insert(name.clone(), true);
                }
                _ => {}
            }
        }
        let mut failed = false;
        for (name, named) in std::mem::take(&mut self.pending) {
            let result = match name.as_str() {
                "fernet" => sync.refresh_keys(KeyKind::Fernet).await,
                "credential" => sync.refresh_keys(KeyKind::Credential).await,
                "oidc" => sync.refresh_oidc().await,
                COUNTER_JWS => sync.refresh_jws().await,
                COUNTER_SETTINGS => sync.refresh_formats().await,
                _ => Ok(()),
            };
            match result {
                Ok(()) if named => tracing::info!(material = %name, "reloaded from the store"),
                Ok(()) => {}
                Err(e) => {
                    failed = true;
                    self.report(e);
                    self.pending.insert(name, named);
                }
            }
        }
        if !failed {
            self.last_error = None;
        }
    }

    fn report(&mut self, e: KeysError) {
        let text = e.to_string();
        if self.last_error.as_deref() != Some(text.as_str()) {
            tracing::warn!(error = %text, "cannot reload key material from the store; keeping what is in use");
            self.last_error = Some(text);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn sel(issue: TokenFormat, accept: &[TokenFormat]) -> Selection {
        Selection::new(issue, accept)
    }

    #[test]
    fn format_changes_are_guarded() {
        use TokenFormat::{Fernet, Jws};
        let now = datetime!(2030-01-01 00:00:10 UTC);
        let long_ago = Some(datetime!(2030-01-01 00:00:00 UTC));
        let just_now = Some(datetime!(2030-01-01 00:00:09 UTC));
        // Issue JWS while only Fernet is accepted: refused.
        let e = check_format_change(&sel(Fernet, &[]), None, &sel(Jws, &[Fernet]), now);
        assert!(e.unwrap_err().contains("accept"));
        // Accepting first is always fine.
        assert_eq!(
            check_format_change(&sel(Fernet, &[]), None, &sel(Fernet, &[Jws]), now).unwrap(),
            Duration::ZERO
        );
        // Then switching, once the acceptance had time to spread.
        assert_eq!(
            check_format_change(&sel(Fernet, &[Jws]), long_ago, &sel(Jws, &[Fernet]), now).unwrap(),
            Duration::ZERO
        );
        let wait =
            check_format_change(&sel(Fernet, &[Jws]), just_now, &sel(Jws, &[Fernet]), now).unwrap();
        assert!(wait > Duration::ZERO && wait <= PROPAGATION);
        // Switching and dropping the old format at once: refused.
        assert!(check_format_change(&sel(Fernet, &[Jws]), long_ago, &sel(Jws, &[]), now).is_err());
        // Dropping a format no longer issued: fine.
        assert!(check_format_change(&sel(Jws, &[Fernet]), just_now, &sel(Jws, &[]), now).is_ok());
    }
}
