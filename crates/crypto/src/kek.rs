//! The key-encryption key (KEK) that seals key material kept in the database: AES-256-GCM
//! with a random 96-bit nonce per ciphertext, and the KEK's id in every ciphertext so a
//! KEK can be replaced later (old ciphertexts name the KEK that opens them).
//!
//! Sealed text: `kek1.<kek id>.<base64url(nonce ‖ ciphertext ‖ tag)>`. The purpose of the
//! sealed material (e.g. `fernet`) is bound in as associated data, so a ciphertext cannot
//! be moved from one purpose to another.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;
use rand::RngCore;
use sha2::Digest;
use std::path::Path;
use thiserror::Error;

const PREFIX: &str = "kek1";
const NONCE_LEN: usize = 12;

#[derive(Debug, Error)]
pub enum KekError {
    #[error(
        "the key-encryption key must be 32 bytes in base64 (`limen keys kek generate` makes one)"
    )]
    BadKek,
    #[error("key-encryption key file {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("sealed key material is malformed")]
    Malformed,
    #[error("the key material was sealed with key-encryption key {sealed_with}, but the configured key-encryption key is {configured}")]
    WrongKek {
        sealed_with: String,
        configured: String,
    },
    #[error("the key-encryption key {0} does not open the sealed key material (wrong key or tampered data)")]
    Unopenable(String),
    #[error("cannot seal key material")]
    Seal,
}

/// A key-encryption key. Its bytes never leave this type (no `Debug` of them, no getter).
/// While a KEK is being replaced it also holds the previous KEKs: they still open what
/// they sealed, but only the current one seals.
pub struct Kek {
    id: String,
    cipher: Aes256Gcm,
    previous: Vec<Kek>,
}

impl std::fmt::Debug for Kek {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Kek")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

fn b64() -> base64::engine::GeneralPurpose {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
}

/// Accepts standard or url-safe base64, padded or not, around whitespace.
fn decode_any(text: &str) -> Option<Vec<u8>> {
    let t = text.trim().trim_end_matches('=');
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(t)
        .or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(t))
        .ok()
}

impl Kek {
    pub fn from_bytes(raw: &[u8; 32]) -> Kek {
        // The id is a hash of the key under a label: it names the key without revealing it.
        let mut h = sha2::Sha256::new();
        h.update(b"limen key-encryption key id\0");
        h.update(raw);
        let id = hex::encode(&h.finalize()[..8]);
        Kek {
            id,
            cipher: Aes256Gcm::new(raw.into()),
            previous: Vec::new(),
        }
    }

    /// This KEK, also opening what `previous` KEKs sealed.
    pub fn with_previous(mut self, previous: Vec<Kek>) -> Kek {
        self.previous = previous.into_iter().filter(|k| k.id != self.id).collect();
        self
    }

    /// Whether `sealed` was sealed with this (the current) KEK.
    pub fn is_current(&self, sealed: &str) -> bool {
        sealed
            .strip_prefix(PREFIX)
            .and_then(|r| r.strip_prefix('.'))
            .and_then(|r| r.strip_prefix(self.id.as_str()))
            .is_some_and(|r| r.starts_with('.'))
    }

    /// A KEK from its base64 text (32 bytes).
    pub fn from_base64(text: &str) -> Result<Kek, KekError> {
        let raw = decode_any(text).ok_or(KekError::BadKek)?;
        let raw: [u8; 32] = raw.as_slice().try_into().map_err(|_| KekError::BadKek)?;
        Ok(Kek::from_bytes(&raw))
    }

    /// A KEK from a file holding its base64 text.
    pub fn from_file(path: &Path) -> Result<Kek, KekError> {
        let text = std::fs::read_to_string(path).map_err(|source| KekError::Io {
            path: path.display().to_string(),
            source,
        })?;
        Kek::from_base64(&text)
    }

    /// A new random KEK's base64 text.
    pub fn generate() -> String {
        let mut raw = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut raw);
        base64::engine::general_purpose::STANDARD.encode(raw)
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    /// Seals `plain` for `purpose` under a fresh random nonce.
    pub fn seal(&self, purpose: &str, plain: &[u8]) -> Result<String, KekError> {
        let mut nonce = [0u8; NONCE_LEN];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let ct = self
            .cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: plain,
                    aad: purpose.as_bytes(),
                },
            )
            .map_err(|_| KekError::Seal)?;
        let mut blob = nonce.to_vec();
        blob.extend_from_slice(&ct);
        Ok(format!("{PREFIX}.{}.{}", self.id, b64().encode(blob)))
    }

    /// Opens what [`Kek::seal`] sealed for the same `purpose`.
    pub fn open(&self, purpose: &str, sealed: &str) -> Result<Vec<u8>, KekError> {
        let mut parts = sealed.splitn(3, '.');
        let (Some(PREFIX), Some(id), Some(body)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(KekError::Malformed);
        };
        if id != self.id {
            if let Some(previous) = self.previous.iter().find(|k| k.id == id) {
                return previous.open(purpose, sealed);
            }
            let mut configured = vec![self.id.clone()];
            configured.extend(self.previous.iter().map(|k| k.id.clone()));
            return Err(KekError::WrongKek {
                sealed_with: id.to_string(),
                configured: configured.join(", "),
            });
        }
        let blob = b64().decode(body).map_err(|_| KekError::Malformed)?;
        if blob.len() < NONCE_LEN + 16 {
            return Err(KekError::Malformed);
        }
        let (nonce, ct) = blob.split_at(NONCE_LEN);
        self.cipher
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: ct,
                    aad: purpose.as_bytes(),
                },
            )
            .map_err(|_| KekError::Unopenable(self.id.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_open_round_trip_and_failures() {
        let kek = Kek::from_base64(&Kek::generate()).unwrap();
        let a = kek.seal("fernet", b"key material").unwrap();
        let b = kek.seal("fernet", b"key material").unwrap();
        assert_ne!(a, b, "a fresh nonce each time");
        assert!(a.starts_with(&format!("kek1.{}.", kek.id())));
        assert!(!a.contains("key material"));
        assert_eq!(kek.open("fernet", &a).unwrap(), b"key material");
        assert!(matches!(
            kek.open("credential", &a),
            Err(KekError::Unopenable(_))
        ));
        let other = Kek::from_base64(&Kek::generate()).unwrap();
        assert!(matches!(
            other.open("fernet", &a),
            Err(KekError::WrongKek { .. })
        ));
        // A forged id does not help: the tag still fails.
        let forged = a.replace(kek.id(), other.id());
        assert!(matches!(
            other.open("fernet", &forged),
            Err(KekError::Unopenable(_))
        ));
        let mut tampered = a.clone();
        tampered.pop();
        tampered.push(if a.ends_with('A') { 'B' } else { 'A' });
        assert!(kek.open("fernet", &tampered).is_err());
        assert!(matches!(
            kek.open("fernet", "nope"),
            Err(KekError::Malformed)
        ));
    }

    #[test]
    fn previous_keks_open_but_never_seal() {
        let old = Kek::from_base64(&Kek::generate()).unwrap();
        let sealed_old = old.seal("fernet", b"k").unwrap();
        let old_id = old.id().to_string();
        let new = Kek::from_base64(&Kek::generate())
            .unwrap()
            .with_previous(vec![old]);
        assert!(!new.is_current(&sealed_old));
        assert_eq!(new.open("fernet", &sealed_old).unwrap(), b"k");
        let sealed_new = new.seal("fernet", b"k").unwrap();
        assert!(new.is_current(&sealed_new));
        assert!(!sealed_new.contains(&old_id));
        let alone = Kek::from_base64(&Kek::generate()).unwrap();
        let e = alone.open("fernet", &sealed_old).unwrap_err().to_string();
        assert!(e.contains(&old_id), "{e}");
    }

    #[test]
    fn kek_text_forms() {
        let text = Kek::generate();
        let k1 = Kek::from_base64(&format!("{text}\n")).unwrap();
        let url = text.replace('+', "-").replace('/', "_");
        let k2 = Kek::from_base64(&url).unwrap();
        assert_eq!(k1.id(), k2.id());
        assert!(Kek::from_base64("c2hvcnQ=").is_err());
        assert!(Kek::from_base64("not base64 at all!").is_err());
        assert!(!format!("{k1:?}").contains(&text));
    }
}
