//! The Fernet token codec: Keystone's envelope around Keystone's payloads, with keys read
//! from a key repository and re-read when the repository changes (a rotation by
//! `limen keys fernet rotate` takes effect without a restart).

use super::keys::{KeyRepository, KeyRepositoryError};
use super::payload::{self, MethodMap};
use crate::reload::Reloading;
use crate::shared::SharedFernetKeys;
use base64::Engine;
use limen_core::clock::Clock;
use limen_core::token::{ReceiptPayload, TokenCodec, TokenError, TokenPayload};
use std::sync::Arc;
use time::OffsetDateTime;

type Fingerprint = Option<Vec<(String, u64, std::time::SystemTime)>>;

pub struct FernetCodec {
    source: Source,
    methods: MethodMap,
    clock: Arc<dyn Clock>,
}

/// Where the keys come from: a key repository on disk (re-read when it changes), or a set
/// the server keeps up to date from the store.
enum Source {
    Files {
        repo: KeyRepository,
        /// Primary first; decryption tries them in this order.
        keys: Reloading<Vec<fernet::Fernet>, Fingerprint>,
    },
    Shared(Arc<SharedFernetKeys>),
}

impl FernetCodec {
    pub fn new(
        repo: KeyRepository,
        methods: Vec<String>,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, KeyRepositoryError> {
        let (keys, fingerprint) = load(&repo)?;
        Ok(FernetCodec {
            source: Source::Files {
                repo,
                keys: Reloading::new("fernet", keys, fingerprint),
            },
            methods: MethodMap::new(methods),
            clock,
        })
    }

    /// A codec over keys its owner replaces (`[keys] source = "database"`).
    pub fn shared(
        keys: Arc<SharedFernetKeys>,
        methods: Vec<String>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        FernetCodec {
            source: Source::Shared(keys),
            methods: MethodMap::new(methods),
            clock,
        }
    }

    fn with_keys<T>(&self, f: impl FnOnce(&[fernet::Fernet]) -> T) -> T {
        match &self.source {
            Source::Files { repo, keys } => {
                keys.with(|| repo.fingerprint(), || load(repo), |k| f(k))
            }
            Source::Shared(shared) => {
                let snapshot = shared.snapshot();
                f(&snapshot.ciphers)
            }
        }
    }

    /// Changes whenever the key set does.
    pub fn key_generation(&self) -> u64 {
        match &self.source {
            Source::Files { repo, keys } => keys.generation(|| repo.fingerprint(), || load(repo)),
            Source::Shared(shared) => shared.generation(),
        }
    }

    /// Where the keys come from, for errors.
    fn origin(&self) -> String {
        match &self.source {
            Source::Files { repo, .. } => repo.dir().display().to_string(),
            Source::Shared(s) => format!("the database's {} keys", s.what()),
        }
    }
}

fn load(repo: &KeyRepository) -> Result<(Vec<fernet::Fernet>, Fingerprint), KeyRepositoryError> {
    let fingerprint = repo.fingerprint();
    let keys = repo
        .load()?
        .into_iter()
        .filter_map(|(_, k)| fernet::Fernet::new(&k))
        .collect::<Vec<_>>();
    if keys.is_empty() {
        return Err(KeyRepositoryError::Empty(repo.dir().display().to_string()));
    }
    Ok((keys, fingerprint))
}

fn unix_secs(t: OffsetDateTime) -> u64 {
    t.unix_timestamp().max(0) as u64
}

impl FernetCodec {
    /// Seals a payload under the primary key, stamped with `issued_at`.
    fn seal(&self, bytes: &[u8], issued_at: OffsetDateTime) -> Result<String, TokenError> {
        let token = self.with_keys(|keys| {
            keys.first()
                .map(|primary| primary.encrypt_at_time(bytes, unix_secs(issued_at)))
        });
        let token = token.ok_or_else(|| TokenError::NoKeys(self.origin()))?;
        // Keystone strips the padding when issuing.
        Ok(token.trim_end_matches('=').to_string())
    }

    /// Opens an envelope with any key; returns the plaintext and its issue time.
    fn open(&self, token: &str) -> Result<(Vec<u8>, OffsetDateTime), TokenError> {
        let token = token.trim();
        if token.is_empty() || token.len() > 8192 {
            return Err(TokenError::Invalid("bad length".into()));
        }
        let now = unix_secs(self.clock.now());
        let plain = self.with_keys(|keys| {
            keys.iter()
                .find_map(|k| k.decrypt_at_time(token, None, now).ok())
        });
        let plain = plain.ok_or_else(|| TokenError::Invalid("no key decrypts it".into()))?;
        Ok((plain, issue_time(token)?))
    }
}

impl TokenCodec for FernetCodec {
    fn encode(&self, p: &TokenPayload) -> Result<String, TokenError> {
        let bytes = payload::encode(p, &self.methods)
            .map_err(|e| TokenError::Unencodable(e.to_string()))?;
        self.seal(&bytes, p.issued_at)
    }

    fn decode(&self, token: &str) -> Result<TokenPayload, TokenError> {
        let (plain, issued_at) = self.open(token)?;
        let mut p = payload::decode(&plain, &self.methods)
            .map_err(|e| TokenError::Invalid(e.to_string()))?;
        p.issued_at = issued_at;
        Ok(p)
    }

    fn encode_receipt(&self, r: &ReceiptPayload) -> Result<String, TokenError> {
        let bytes = payload::encode_receipt(r, &self.methods)
            .map_err(|e| TokenError::Unencodable(e.to_string()))?;
        self.seal(&bytes, r.issued_at)
    }

    fn decode_receipt(&self, receipt: &str) -> Result<ReceiptPayload, TokenError> {
        let (plain, issued_at) = self.open(receipt)?;
        let mut r = payload::decode_receipt(&plain, &self.methods)
            .map_err(|e| TokenError::Invalid(e.to_string()))?;
        r.issued_at = issued_at;
        Ok(r)
    }
}

/// The Fernet timestamp (bytes 1..9 of the envelope): the token's `issued_at`.
fn issue_time(token: &str) -> Result<OffsetDateTime, TokenError> {
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token.trim_end_matches('='))
        .map_err(|_| TokenError::Invalid("not base64url".into()))?;
    let ts: [u8; 8] = raw
        .get(1..9)
        .and_then(|s| s.try_into().ok())
        .ok_or_else(|| TokenError::Invalid("too short".into()))?;
    OffsetDateTime::from_unix_timestamp(u64::from_be_bytes(ts) as i64)
        .map_err(|_| TokenError::Invalid("bad timestamp".into()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use limen_core::clock::ManualClock;
    use limen_core::config::default_auth_methods;
    use limen_core::token::TokenScope;
    use time::macros::datetime;

    fn codec(dir: &std::path::Path, clock: Arc<ManualClock>) -> FernetCodec {
        FernetCodec::new(KeyRepository::new(dir), default_auth_methods(), clock).unwrap()
    }

    fn sample(issued: OffsetDateTime) -> TokenPayload {
        TokenPayload {
            user_id: "0123456789abcdef0123456789abcdef".into(),
            methods: vec!["password".into()],
            scope: TokenScope::Project {
                project_id: "fedcba9876543210fedcba9876543210".into(),
            },
            expires_at: issued + time::Duration::hours(1),
            audit_ids: vec!["cGFzc3dvcmRwYXNzd29yZA".into()],
            issued_at: issued,
        }
    }

    #[test]
    fn round_trip_has_keystone_length_and_issue_time() {
        let dir = tempfile::tempdir().unwrap();
        KeyRepository::new(dir.path()).setup(3).unwrap();
        let t0 = datetime!(2026-01-01 12:00:00 UTC);
        let clock = Arc::new(ManualClock::at(t0));
        let c = codec(dir.path(), clock);
        let p = sample(t0);
        let tok = c.encode(&p).unwrap();
        assert_eq!(
            tok.len(),
            183,
            "project tokens are 183 chars, like Keystone's"
        );
        assert!(!tok.ends_with('='));
        let back = c.decode(&tok).unwrap();
        assert_eq!(back, p);
    }

    #[test]
    fn survives_rotation_and_rejects_foreign_keys() {
        let dir = tempfile::tempdir().unwrap();
        let repo = KeyRepository::new(dir.path());
        repo.setup(3).unwrap();
        let t0 = datetime!(2026-01-01 12:00:00 UTC);
        let clock = Arc::new(ManualClock::at(t0));
        let before = codec(dir.path(), clock.clone())
            .encode(&sample(t0))
            .unwrap();
        repo.rotate(3).unwrap();
        let c = codec(dir.path(), clock.clone());
        assert!(c.decode(&before).is_ok(), "a secondary key still decrypts");
        repo.rotate(3).unwrap();
        let c = codec(dir.path(), clock.clone());
        assert!(
            c.decode(&before).is_err(),
            "a key rotated out no longer does"
        );

        let other = tempfile::tempdir().unwrap();
        KeyRepository::new(other.path()).setup(3).unwrap();
        let foreign = codec(other.path(), clock).encode(&sample(t0)).unwrap();
        assert!(c.decode(&foreign).is_err());
        assert!(c.decode("not-a-token").is_err());
        assert!(c.decode("").is_err());
    }
}
