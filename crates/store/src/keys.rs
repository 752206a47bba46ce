//! Key material shared through the store (`[keys] source = "database"`): sealed Fernet and
//! credential keys, published JWS public keys and cloud-wide settings. Every change is
//! also an entry in the store's change feed (`Dependency::KeyMaterial`), which nodes
//! follow to reload what changed.
//!
//! The store only ever sees sealed key material: sealing and opening (with the KEK) is
//! the crypto layer's business, so nothing here can leak a key in plain text.

use crate::conn::backend_err;
use crate::conn::Work;
use crate::sql::Arg;
use crate::store_impl::{tx_exec, tx_record_changes, SqlStore};
use limen_core::error::{StoreError, StoreResult};
use limen_core::token::validation_cache::Dependency;
use sqlx::{Any, Row};
use time::OffsetDateTime;

/// Symmetric key sets kept in the store (each also a name in the change feed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyKind {
    Fernet,
    Credential,
    /// The OpenID Provider's signing-key slots (`0` staged, highest primary, others
    /// retired; rotation is the caller's, see `limen_crypto::oidc_keys::rotate_slots`).
    Oidc,
}

impl KeyKind {
    pub fn as_str(self) -> &'static str {
        match self {
            KeyKind::Fernet => "fernet",
            KeyKind::Credential => "credential",
            KeyKind::Oidc => "oidc",
        }
    }
}

/// Names of material in the change feed besides the key kinds.
pub const COUNTER_JWS: &str = "jws";
pub const COUNTER_SETTINGS: &str = "settings";

/// One sealed key: Keystone's number (0 staged, highest primary) and its ciphertext.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedKey {
    pub number: u64,
    pub sealed: String,
}

/// A JWS public key some node published.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishedKey {
    pub fingerprint: String,
    pub node: String,
    pub public_pem: String,
    pub published_at: OffsetDateTime,
}

/// A cloud-wide setting and when it was last written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterSetting {
    pub value: String,
    pub updated_at: OffsetDateTime,
}

/// What a rotation did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rotation {
    pub new_primary: u64,
    pub numbers: Vec<u64>,
}

fn now_micros() -> i64 {
    crate::codec::to_micros(OffsetDateTime::now_utc())
}

/// Records in the change feed that material `name` changed, so every node reloads it.
/// As the first write of a transaction it also serializes concurrent writers (the feed's
/// counter row is locked on PostgreSQL, the write lock taken on SQLite), so two
/// rotations cannot interleave.
async fn bump(tx: &mut Work<'_>, name: &str) -> StoreResult<()> {
    let changed = [Dependency::KeyMaterial(name.to_string())];
    tx_record_changes(tx, &changed, OffsetDateTime::now_utc()).await?;
    Ok(())
}

async fn tx_numbers(tx: &mut Work<'_>, kind: KeyKind) -> StoreResult<Vec<u64>> {
    let rows = sqlx::query("SELECT number FROM key_material WHERE kind = $1 ORDER BY number")
        .bind(kind.as_str())
        .fetch_all(tx.conn()?)
        .await
        .map_err(backend_err)?;
    rows.iter()
        .map(|r| {
            r.try_get::<i64, _>("number")
                .map(|n| n.max(0) as u64)
                .map_err(backend_err)
        })
        .collect()
}

/// Makes `keys` the whole `kind` set.
async fn tx_replace_all(tx: &mut Work<'_>, kind: KeyKind, keys: &[SealedKey]) -> StoreResult<()> {
    tx_exec(
        tx,
        "DELETE FROM key_material WHERE kind = $1",
        vec![kind.as_str().into()],
    )
    .await?;
    for k in keys {
        tx_insert(tx, kind, k.number, &k.sealed).await?;
    }
    Ok(())
}

/// The sealed keys of `kind`, highest number first.
async fn fetch_sealed<'e, E: sqlx::Executor<'e, Database = Any>>(
    executor: E,
    kind: KeyKind,
) -> StoreResult<Vec<SealedKey>> {
    let rows =
        sqlx::query("SELECT number, sealed FROM key_material WHERE kind = $1 ORDER BY number DESC")
            .bind(kind.as_str())
            .fetch_all(executor)
            .await
            .map_err(backend_err)?;
    rows.iter()
        .map(|r| {
            Ok(SealedKey {
                number: r.try_get::<i64, _>("number").map_err(backend_err)?.max(0) as u64,
                sealed: r.try_get("sealed").map_err(backend_err)?,
            })
        })
        .collect()
}

async fn tx_insert(tx: &mut Work<'_>, kind: KeyKind, number: u64, sealed: &str) -> StoreResult<()> {
    tx_exec(
        tx,
        "INSERT INTO key_material (kind, number, sealed, created_at) VALUES ($1, $2, $3, $4)",
        vec![
            kind.as_str().into(),
            Arg::Int(number as i64),
            sealed.into(),
            Arg::Int(now_micros()),
        ],
    )
    .await?;
    Ok(())
}

impl SqlStore {
    /// The sealed keys of `kind`, primary (highest number) first, staged (`0`) last: the
    /// order a key repository loads in.
    pub async fn sealed_keys(&self, kind: KeyKind) -> StoreResult<Vec<SealedKey>> {
        fetch_sealed(&self.pool, kind).await
    }

    /// Creates a key set (`0` staged and `1` primary) if `kind` holds no keys; false when
    /// keys already existed.
    pub async fn setup_keys(
        &self,
        kind: KeyKind,
        staged: &str,
        primary: &str,
    ) -> StoreResult<bool> {
        let mut tx = self.begin().await?;
        bump(&mut tx, kind.as_str()).await?;
        if !tx_numbers(&mut tx, kind).await?.is_empty() {
            // Nothing changed; the bump is undone with the transaction.
            tx.rollback().await?;
            return Ok(false);
        }
        tx_insert(&mut tx, kind, 0, staged).await?;
        tx_insert(&mut tx, kind, 1, primary).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Keystone's rotation in one transaction: the staged key (`0`) becomes the new primary
    /// (highest number + 1), `new_staged` is staged, and the oldest secondaries go until
    /// `max_active_keys` keys remain (staged included).
    pub async fn rotate_keys(
        &self,
        kind: KeyKind,
        new_staged: &str,
        max_active_keys: usize,
    ) -> StoreResult<Rotation> {
        if max_active_keys < 1 {
            return Err(StoreError::backend("max_active_keys must be at least 1"));
        }
        let mut tx = self.begin().await?;
        bump(&mut tx, kind.as_str()).await?;
        let numbers = tx_numbers(&mut tx, kind).await?;
        if !numbers.contains(&0) {
            return Err(StoreError::backend(format!(
                "the database holds no staged {} key: set the keys up first",
                kind.as_str()
            )));
        }
        let new_primary = numbers.iter().max().copied().unwrap_or(0) + 1;
        tx_exec(
            &mut tx,
            "UPDATE key_material SET number = $1 WHERE kind = $2 AND number = 0",
            vec![Arg::Int(new_primary as i64), kind.as_str().into()],
        )
        .await?;
        tx_insert(&mut tx, kind, 0, new_staged).await?;
        let mut nonzero: Vec<u64> = numbers.into_iter().filter(|n| *n != 0).collect();
        nonzero.push(new_primary);
        nonzero.sort_unstable();
        let keep = max_active_keys.saturating_sub(1);
        while nonzero.len() > keep {
            let victim = nonzero.remove(0);
            tx_exec(
                &mut tx,
                "DELETE FROM key_material WHERE kind = $1 AND number = $2",
                vec![kind.as_str().into(), Arg::Int(victim as i64)],
            )
            .await?;
        }
        tx.commit().await?;
        let mut numbers = vec![0];
        numbers.extend(nonzero);
        Ok(Rotation {
            new_primary,
            numbers,
        })
    }

    /// Replaces sealed keys with the same keys sealed anew (under another KEK): each
    /// `(number, old, new)` only if the row still holds `old`, so a rotation meanwhile is
    /// not undone. Returns how many rows changed.
    pub async fn reseal_keys(
        &self,
        kind: KeyKind,
        updates: &[(u64, String, String)],
    ) -> StoreResult<usize> {
        let mut tx = self.begin().await?;
        bump(&mut tx, kind.as_str()).await?;
        let mut n = 0;
        for (number, old, new) in updates {
            n += tx_exec(
                &mut tx,
                "UPDATE key_material SET sealed = $1 WHERE kind = $2 AND number = $3 AND sealed = $4",
                vec![
                    new.into(),
                    kind.as_str().into(),
                    Arg::Int(*number as i64),
                    old.into(),
                ],
            )
            .await?;
        }
        tx.commit().await?;
        Ok(n as usize)
    }

    /// Stores an imported key set (from a Keystone key repository). Refuses when `kind`
    /// already holds keys unless `replace` is set, since replacing them invalidates every
    /// token they issued.
    pub async fn import_keys(
        &self,
        kind: KeyKind,
        keys: &[SealedKey],
        replace: bool,
    ) -> StoreResult<bool> {
        let mut tx = self.begin().await?;
        bump(&mut tx, kind.as_str()).await?;
        if !replace && !tx_numbers(&mut tx, kind).await?.is_empty() {
            tx.rollback().await?;
            return Ok(false);
        }
        tx_replace_all(&mut tx, kind, keys).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Replaces the whole `kind` set with `new` if it still is `expected` (what the caller
    /// read and worked `new` out from); false when another writer changed it meanwhile.
    pub async fn replace_keys(
        &self,
        kind: KeyKind,
        expected: &[SealedKey],
        new: &[SealedKey],
    ) -> StoreResult<bool> {
        let mut tx = self.begin().await?;
        bump(&mut tx, kind.as_str()).await?;
        let current = fetch_sealed(tx.conn()?, kind).await?;
        let sorted = |keys: &[SealedKey]| {
            let mut k = keys.to_vec();
            k.sort_by_key(|k| k.number);
            k
        };
        if sorted(&current) != sorted(expected) {
            tx.rollback().await?;
            return Ok(false);
        }
        tx_replace_all(&mut tx, kind, new).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Publishes (or re-publishes) a JWS public key. The publication time of a key already
    /// present is kept: it tells how long every node has trusted it.
    pub async fn publish_jws_key(
        &self,
        fingerprint: &str,
        node: &str,
        public_pem: &str,
    ) -> StoreResult<PublishedKey> {
        let mut tx = self.begin().await?;
        bump(&mut tx, COUNTER_JWS).await?;
        let existing = sqlx::query(
            "SELECT node, public_pem, published_at FROM jws_public_keys WHERE fingerprint = $1",
        )
        .bind(fingerprint)
        .fetch_optional(tx.conn()?)
        .await
        .map_err(backend_err)?;
        if let Some(row) = existing {
            tx.rollback().await?;
            return Ok(PublishedKey {
                fingerprint: fingerprint.to_string(),
                node: row.try_get("node").map_err(backend_err)?,
                public_pem: row.try_get("public_pem").map_err(backend_err)?,
                published_at: crate::codec::from_micros(
                    row.try_get("published_at").map_err(backend_err)?,
                )?,
            });
        }
        let now = now_micros();
        tx_exec(
            &mut tx,
            "INSERT INTO jws_public_keys (fingerprint, node, public_pem, published_at) \
             VALUES ($1, $2, $3, $4)",
            vec![
                fingerprint.into(),
                node.into(),
                public_pem.into(),
                Arg::Int(now),
            ],
        )
        .await?;
        tx.commit().await?;
        Ok(PublishedKey {
            fingerprint: fingerprint.to_string(),
            node: node.to_string(),
            public_pem: public_pem.to_string(),
            published_at: crate::codec::from_micros(now)?,
        })
    }

    /// Every published JWS public key, oldest first.
    pub async fn jws_public_keys(&self) -> StoreResult<Vec<PublishedKey>> {
        let rows = sqlx::query(
            "SELECT fingerprint, node, public_pem, published_at FROM jws_public_keys \
             ORDER BY published_at, fingerprint",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(backend_err)?;
        rows.iter()
            .map(|r| {
                Ok(PublishedKey {
                    fingerprint: r.try_get("fingerprint").map_err(backend_err)?,
                    node: r.try_get("node").map_err(backend_err)?,
                    public_pem: r.try_get("public_pem").map_err(backend_err)?,
                    published_at: crate::codec::from_micros(
                        r.try_get("published_at").map_err(backend_err)?,
                    )?,
                })
            })
            .collect()
    }

    /// Withdraws a published JWS public key; true when it was there.
    pub async fn retire_jws_key(&self, fingerprint: &str) -> StoreResult<bool> {
        let mut tx = self.begin().await?;
        bump(&mut tx, COUNTER_JWS).await?;
        let n = tx_exec(
            &mut tx,
            "DELETE FROM jws_public_keys WHERE fingerprint = $1",
            vec![fingerprint.into()],
        )
        .await?;
        tx.commit().await?;
        Ok(n > 0)
    }

    pub async fn cluster_setting(&self, name: &str) -> StoreResult<Option<ClusterSetting>> {
        let row = self
            .fetch_one(
                "SELECT value, updated_at FROM cluster_settings WHERE name = $1",
                vec![name.into()],
            )
            .await?;
        row.map(|r| {
            Ok(ClusterSetting {
                value: r.try_get("value").map_err(backend_err)?,
                updated_at: crate::codec::from_micros(
                    r.try_get("updated_at").map_err(backend_err)?,
                )?,
            })
        })
        .transpose()
    }

    /// Writes (`Some`) or removes (`None`) a cloud-wide setting.
    pub async fn set_cluster_setting(&self, name: &str, value: Option<&str>) -> StoreResult<()> {
        let mut tx = self.begin().await?;
        bump(&mut tx, COUNTER_SETTINGS).await?;
        tx_exec(
            &mut tx,
            "DELETE FROM cluster_settings WHERE name = $1",
            vec![name.into()],
        )
        .await?;
        if let Some(v) = value {
            tx_exec(
                &mut tx,
                "INSERT INTO cluster_settings (name, value, updated_at) VALUES ($1, $2, $3)",
                vec![name.into(), v.into(), Arg::Int(now_micros())],
            )
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use limen_core::store::Store;

    async fn store() -> (tempfile::TempDir, SqlStore) {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("t.db").display());
        let s = SqlStore::open(&url).await.unwrap();
        (dir, s)
    }

    fn numbers(keys: &[SealedKey]) -> Vec<u64> {
        keys.iter().map(|k| k.number).collect()
    }

    #[tokio::test]
    async fn setup_and_rotate_follow_keystone() {
        let (_d, s) = store().await;
        let k = KeyKind::Fernet;
        assert!(s.setup_keys(k, "s0", "p1").await.unwrap());
        assert!(!s.setup_keys(k, "x", "y").await.unwrap(), "idempotent");
        assert_eq!(numbers(&s.sealed_keys(k).await.unwrap()), vec![1, 0]);
        let r = s.rotate_keys(k, "s1", 3).await.unwrap();
        assert_eq!(r.new_primary, 2);
        let keys = s.sealed_keys(k).await.unwrap();
        assert_eq!(numbers(&keys), vec![2, 1, 0]);
        assert_eq!(keys[0].sealed, "s0", "the staged key became primary");
        assert_eq!(keys[2].sealed, "s1");
        s.rotate_keys(k, "s2", 3).await.unwrap();
        assert_eq!(numbers(&s.sealed_keys(k).await.unwrap()), vec![3, 2, 0]);
        // Other kinds are separate.
        assert!(s.sealed_keys(KeyKind::Credential).await.unwrap().is_empty());
        let fernet = Dependency::KeyMaterial("fernet".into());
        let recorded = s.token_changes_since(0, 100).await.unwrap();
        let fernet_changes = recorded.iter().filter(|(_, d)| *d == fernet).count();
        assert_eq!(
            fernet_changes, 3,
            "one feed entry per change, none for a no-op setup"
        );
    }

    #[tokio::test]
    async fn import_refuses_to_overwrite_unless_asked() {
        let (_d, s) = store().await;
        let k = KeyKind::Credential;
        let keys = vec![
            SealedKey {
                number: 4,
                sealed: "a".into(),
            },
            SealedKey {
                number: 0,
                sealed: "b".into(),
            },
        ];
        assert!(s.import_keys(k, &keys, false).await.unwrap());
        assert!(!s.import_keys(k, &keys[..1], false).await.unwrap());
        assert_eq!(numbers(&s.sealed_keys(k).await.unwrap()), vec![4, 0]);
        assert!(s.import_keys(k, &keys[..1], true).await.unwrap());
        assert_eq!(numbers(&s.sealed_keys(k).await.unwrap()), vec![4]);
    }

    #[tokio::test]
    async fn published_keys_and_settings() {
        let (_d, s) = store().await;
        let first = s.publish_jws_key("fp1", "n1", "PEM1").await.unwrap();
        let again = s.publish_jws_key("fp1", "n2", "PEM1").await.unwrap();
        assert_eq!(first.published_at, again.published_at);
        assert_eq!(again.node, "n1");
        s.publish_jws_key("fp2", "n2", "PEM2").await.unwrap();
        assert_eq!(s.jws_public_keys().await.unwrap().len(), 2);
        assert!(s.retire_jws_key("fp1").await.unwrap());
        assert!(!s.retire_jws_key("fp1").await.unwrap());
        assert_eq!(s.jws_public_keys().await.unwrap()[0].fingerprint, "fp2");
        assert!(s.cluster_setting("x").await.unwrap().is_none());
        s.set_cluster_setting("x", Some("1")).await.unwrap();
        assert_eq!(s.cluster_setting("x").await.unwrap().unwrap().value, "1");
        s.set_cluster_setting("x", None).await.unwrap();
        assert!(s.cluster_setting("x").await.unwrap().is_none());
    }
}
