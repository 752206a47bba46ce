//! Password hashing compatible with Keystone: new hashes are bcrypt; verification accepts
//! every format Keystone writes (bcrypt variants, passlib's bcrypt-sha256, scrypt and
//! pbkdf2-sha512). Hashing runs on the blocking pool, never on the async runtime, and at
//! most one hash per core but one runs at a time: a flood of logins then queues for its
//! CPU instead of starving the cheap requests (token validation) of theirs.

use async_trait::async_trait;
use base64::Engine;
use hmac::{Hmac, Mac};
use limen_core::identity::password::PasswordHasher;
use sha2::{Digest, Sha256, Sha512};
use std::sync::Arc;
use subtle::ConstantTimeEq;
use tokio::sync::Semaphore;

#[derive(Debug, Clone)]
pub struct KeystoneHasher {
    cost: u32,
    /// Hashes allowed to run at once.
    slots: Arc<Semaphore>,
}

/// One core is left to everything else; a single-core machine still hashes.
fn hashing_slots() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get().saturating_sub(1))
        .unwrap_or(1)
        .max(1)
}

impl KeystoneHasher {
    /// `cost` is bcrypt's log2 rounds (Keystone's default 12; 4..=31).
    pub fn new(cost: u32) -> Result<Self, String> {
        if !(4..=31).contains(&cost) {
            return Err(format!("bcrypt cost must be between 4 and 31, got {cost}"));
        }
        Ok(KeystoneHasher {
            cost,
            slots: Arc::new(Semaphore::new(hashing_slots())),
        })
    }

    /// Runs `f` on the blocking pool once a hashing slot is free.
    async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, String> {
        let _slot = self
            .slots
            .acquire()
            .await
            .map_err(|e| format!("hashing closed: {e}"))?;
        tokio::task::spawn_blocking(f)
            .await
            .map_err(|e| format!("hashing task failed: {e}"))
    }
}

#[async_trait]
impl PasswordHasher for KeystoneHasher {
    async fn hash(&self, password: &str) -> Result<String, String> {
        let pw = password.to_string();
        let cost = self.cost;
        self.run(move || hash_sync(&pw, cost)).await?
    }

    async fn verify(&self, password: &str, hash: &str) -> bool {
        let pw = password.to_string();
        let h = hash.to_string();
        self.run(move || verify_sync(&pw, &h))
            .await
            .unwrap_or(false)
    }
}

pub fn hash_sync(password: &str, cost: u32) -> Result<String, String> {
    bcrypt::hash(password, cost).map_err(|e| e.to_string())
}

/// Checks `password` against a stored hash of any supported format.
pub fn verify_sync(password: &str, hash: &str) -> bool {
    if let Some(rest) = hash.strip_prefix("$bcrypt-sha256$") {
        return verify_bcrypt_sha256(password, rest);
    }
    if let Some(rest) = hash.strip_prefix("$scrypt$") {
        return verify_scrypt(password, rest);
    }
    if let Some(rest) = hash.strip_prefix("$pbkdf2-sha512$") {
        return verify_pbkdf2_sha512(password, rest);
    }
    if let Some(rest) = hash.strip_prefix("$2$") {
        // The original bcrypt prefix; for the passwords it can hold it is $2a$.
        return bcrypt::verify(password, &format!("$2a${rest}")).unwrap_or(false);
    }
    if ["$2a$", "$2b$", "$2x$", "$2y$"]
        .iter()
        .any(|p| hash.starts_with(p))
    {
        return bcrypt::verify(password, hash).unwrap_or(false);
    }
    false
}

/// passlib's "adapted base64": standard alphabet with `.` for `+`, no padding.
fn ab64_decode(s: &str) -> Option<Vec<u8>> {
    base64::engine::general_purpose::STANDARD_NO_PAD
        .decode(s.replace('.', "+").trim_end_matches('='))
        .ok()
}

fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

/// `v=2,t=2b,r=12$<salt22>$<digest31>` (HMAC keyed by the salt) or the older
/// `2a,12$<salt22>$<digest31>` (plain SHA-256).
fn verify_bcrypt_sha256(password: &str, rest: &str) -> bool {
    let parts: Vec<&str> = rest.split('$').collect();
    let [params, salt, digest] = parts[..] else {
        return false;
    };
    let (ident, rounds, keyed) = if let Some(p) = params.strip_prefix("v=2,") {
        let mut ident = "2b";
        let mut rounds = "";
        for kv in p.split(',') {
            match kv.split_once('=') {
                Some(("t", v)) => ident = v,
                Some(("r", v)) => rounds = v,
                _ => return false,
            }
        }
        (ident, rounds, true)
    } else {
        match params.split_once(',') {
            Some((ident, rounds)) => (ident, rounds, false),
            None => return false,
        }
    };
    let Ok(rounds) = rounds.parse::<u32>() else {
        return false;
    };
    if salt.len() != 22 || digest.len() != 31 || !matches!(ident, "2a" | "2b") {
        return false;
    }
    let key = if keyed {
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(salt.as_bytes()) else {
            return false;
        };
        mac.update(password.as_bytes());
        mac.finalize().into_bytes().to_vec()
    } else {
        Sha256::digest(password.as_bytes()).to_vec()
    };
    let b64 = base64::engine::general_purpose::STANDARD.encode(key);
    bcrypt::verify(&b64, &format!("${ident}${rounds:02}${salt}{digest}")).unwrap_or(false)
}

/// `ln=16,r=8,p=1$<salt>$<digest>` in adapted base64.
fn verify_scrypt(password: &str, rest: &str) -> bool {
    let parts: Vec<&str> = rest.split('$').collect();
    let [params, salt, digest] = parts[..] else {
        return false;
    };
    let (mut ln, mut r, mut p) = (None, None, None);
    for kv in params.split(',') {
        match kv.split_once('=') {
            Some(("ln", v)) => ln = v.parse::<u8>().ok(),
            Some(("r", v)) => r = v.parse::<u32>().ok(),
            Some(("p", v)) => p = v.parse::<u32>().ok(),
            _ => return false,
        }
    }
    let (Some(ln), Some(r), Some(p), Some(salt), Some(want)) =
        (ln, r, p, ab64_decode(salt), ab64_decode(digest))
    else {
        return false;
    };
    // Refuse parameters that would take unbounded memory or time.
    if ln > 22 || r > 32 || p > 16 || want.is_empty() || want.len() > 128 {
        return false;
    }
    let Ok(params) = scrypt::Params::new(ln, r, p, want.len()) else {
        return false;
    };
    let mut out = vec![0u8; want.len()];
    if scrypt::scrypt(password.as_bytes(), &salt, &params, &mut out).is_err() {
        return false;
    }
    ct_eq(&out, &want)
}

/// `<rounds>$<salt>$<digest>` in adapted base64.
fn verify_pbkdf2_sha512(password: &str, rest: &str) -> bool {
    let parts: Vec<&str> = rest.split('$').collect();
    let [rounds, salt, digest] = parts[..] else {
        return false;
    };
    let (Ok(rounds), Some(salt), Some(want)) = (
        rounds.parse::<u32>(),
        ab64_decode(salt),
        ab64_decode(digest),
    ) else {
        return false;
    };
    if rounds == 0 || rounds > 10_000_000 || want.is_empty() || want.len() > 128 {
        return false;
    }
    let mut out = vec![0u8; want.len()];
    pbkdf2::pbkdf2_hmac::<Sha512>(password.as_bytes(), &salt, rounds, &mut out);
    ct_eq(&out, &want)
}

#[cfg(test)]
mod tests {
    use super::*;

    // Vectors for "secret" written by Keystone 30.0.0's own hashers
    // (keystone.common.password_hashers).
    const KS_BCRYPT: &str = "$2b$04$DJ4NZ..m0at7RRVwnvvxkeRNnsjDkvQy.t.DC8GLvvl3ZprRNenQa";
    const KS_BCRYPT_SHA256: &str =
        "$bcrypt-sha256$v=2,t=2b,r=4$w39UZULJfsh4tpDd3yOukO$wq8WBndQNsszPn5MSxkfg7wMb5mO5/W";
    const KS_SCRYPT: &str =
        "$scrypt$ln=4,r=8,p=1$pTUUqNIMlBJnmcvODOE0Eg$g6jrnFaQFer2RbLNYCea5e7OWlRgHb0NgTnwHCGnuK0";
    const KS_PBKDF2: &str = "$pbkdf2-sha512$1000$xtYk+kQ1xVOPDKQwNFL4tg$41i47r1+LT7eUW+ubp3RQedMVmRD8J4NXxVDSNi9PPOWqHlszhLJBd18w+is5eQ0ZuHYnArCYadMY4WtgQmINQ";

    #[test]
    fn bcrypt_round_trip_and_prefixes() {
        let h = hash_sync("secret", 4).unwrap();
        assert!(h.starts_with("$2b$04$") && h.len() == 60);
        assert!(verify_sync("secret", &h));
        assert!(!verify_sync("Secret", &h));
        for p in ["$2a$", "$2y$", "$2$"] {
            let alt = h.replacen("$2b$", p, 1);
            assert!(verify_sync("secret", &alt), "{p}");
        }
    }

    #[test]
    fn bcrypt_truncates_at_72_bytes() {
        let long = "a".repeat(80);
        let h = hash_sync(&long, 4).unwrap();
        assert!(verify_sync(&"a".repeat(72), &h));
    }

    #[test]
    fn rejects_unknown_or_corrupt_hashes() {
        for h in [
            "",
            "plain",
            "$2b$04$short",
            "$scrypt$ln=99,r=8,p=1$AAAA$AAAA",
            "$pbkdf2-sha512$0$AA$AA",
            "$bcrypt-sha256$v=2,t=2b,r=12$x$y",
        ] {
            assert!(!verify_sync("secret", h), "{h}");
        }
    }

    #[test]
    fn keystone_written_hashes_verify() {
        for h in [KS_BCRYPT, KS_BCRYPT_SHA256, KS_SCRYPT, KS_PBKDF2] {
            assert!(verify_sync("secret", h), "{h}");
            assert!(!verify_sync("secreT", h), "{h}");
        }
        // passlib's adapted base64 writes '.' for '+'.
        assert!(verify_sync("secret", &KS_PBKDF2.replace('+', ".")));
    }
}
