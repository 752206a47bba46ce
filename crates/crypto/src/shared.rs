//! Key sets handed to the codecs by their owner instead of read from files: with
//! `[keys] source = "database"` the server polls the store and replaces the keys here, and
//! every token encoded or decoded after that uses the new set.

use crate::fernet::keys::{is_valid_key, KeyRepositoryError};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

/// Fernet keys (token or credential), primary first, staged last: each with its text
/// (credential blobs record a hash of it) and the ready cipher.
pub struct SharedFernetKeys {
    what: &'static str,
    keys: RwLock<Arc<FernetKeySet>>,
    /// Counts the replacements (see [`limen_core::token::TokenCodec::key_generation`]).
    generation: AtomicU64,
}

/// One key set: the keys' texts and their ciphers, in the same order (primary first).
pub struct FernetKeySet {
    pub texts: Vec<String>,
    pub ciphers: Vec<fernet::Fernet>,
}

fn parse(what: &str, texts: Vec<String>) -> Result<FernetKeySet, KeyRepositoryError> {
    if texts.is_empty() {
        return Err(KeyRepositoryError::Empty(format!(
            "the database's {what} keys"
        )));
    }
    let ciphers = texts
        .iter()
        .map(|k| {
            fernet::Fernet::new(k)
                .filter(|_| is_valid_key(k))
                .ok_or_else(|| KeyRepositoryError::BadKey(format!("a stored {what} key")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(FernetKeySet { texts, ciphers })
}

impl SharedFernetKeys {
    /// `what` names the set in errors (`fernet`, `credential`); never the keys themselves.
    pub fn new(what: &'static str, keys: Vec<String>) -> Result<Self, KeyRepositoryError> {
        Ok(SharedFernetKeys {
            what,
            keys: RwLock::new(Arc::new(parse(what, keys)?)),
            generation: AtomicU64::new(0),
        })
    }

    /// Replaces the set; an unusable set leaves the current one in place.
    pub fn replace(&self, keys: Vec<String>) -> Result<(), KeyRepositoryError> {
        let parsed = Arc::new(parse(self.what, keys)?);
        match self.keys.write() {
            Ok(mut slot) => *slot = parsed,
            Err(poisoned) => *poisoned.into_inner() = parsed,
        }
        self.generation.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }

    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    pub fn snapshot(&self) -> Arc<FernetKeySet> {
        match self.keys.read() {
            Ok(k) => k.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    pub fn what(&self) -> &'static str {
        self.what
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fernet::codec::FernetCodec;
    use crate::fernet::keys::generate_key;
    use limen_core::clock::ManualClock;
    use limen_core::config::default_auth_methods;
    use limen_core::token::{TokenCodec, TokenPayload, TokenScope};
    use time::macros::datetime;

    #[test]
    fn replaced_keys_apply_at_once_and_staged_keys_decrypt() {
        let t0 = datetime!(2026-01-01 12:00:00 UTC);
        let clock = Arc::new(ManualClock::at(t0));
        let (staged, primary) = (generate_key(), generate_key());
        let set = Arc::new(
            SharedFernetKeys::new("fernet", vec![primary.clone(), staged.clone()]).unwrap(),
        );
        let codec = FernetCodec::shared(set.clone(), default_auth_methods(), clock.clone());
        let p = TokenPayload {
            user_id: "0123456789abcdef0123456789abcdef".into(),
            methods: vec!["password".into()],
            scope: TokenScope::System,
            expires_at: t0 + time::Duration::hours(1),
            audit_ids: vec!["cGFzc3dvcmRwYXNzd29yZA".into()],
            issued_at: t0,
        };
        let before = codec.encode(&p).unwrap();
        // A node that rotated issues with the old staged key; this one, not yet
        // reloaded, still decrypts it.
        let rotated = Arc::new(
            SharedFernetKeys::new(
                "fernet",
                vec![staged.clone(), primary.clone(), generate_key()],
            )
            .unwrap(),
        );
        let other = FernetCodec::shared(rotated, default_auth_methods(), clock);
        let after = other.encode(&p).unwrap();
        assert_eq!(codec.decode(&after).unwrap(), p);
        set.replace(vec![generate_key()]).unwrap();
        assert!(
            codec.decode(&before).is_err(),
            "the new set applies at once"
        );
        assert!(set.replace(Vec::new()).is_err());
        assert!(set.replace(vec!["short".into()]).is_err());
    }
}
