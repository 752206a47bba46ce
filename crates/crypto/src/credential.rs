//! Encryption of stored credentials (Keystone's `[credential]` Fernet provider): blobs are
//! Fernet tokens under the primary key of a credential key repository, stored with the
//! SHA-1 of that key so a rotation can tell which blobs to re-encrypt.

use crate::fernet::keys::{KeyRepository, KeyRepositoryError};
use crate::shared::SharedFernetKeys;
use limen_core::delegation::credential::{CredentialCipher, SealedBlob};
use sha1::{Digest, Sha1};
use std::sync::Arc;

pub struct FernetCredentialCipher {
    source: Source,
}

enum Source {
    Files(KeyRepository),
    /// Kept up to date from the store by the server (`[keys] source = "database"`).
    Shared(Arc<SharedFernetKeys>),
}

impl FernetCredentialCipher {
    pub fn new(repo: KeyRepository) -> Self {
        FernetCredentialCipher {
            source: Source::Files(repo),
        }
    }

    pub fn shared(keys: Arc<SharedFernetKeys>) -> Self {
        FernetCredentialCipher {
            source: Source::Shared(keys),
        }
    }

    /// Keys, primary first, read fresh so `limen keys credential rotate` applies at once.
    fn keys(&self) -> Result<Vec<(String, fernet::Fernet)>, KeyRepositoryError> {
        match &self.source {
            Source::Files(repo) => Ok(repo
                .load()?
                .into_iter()
                .filter_map(|(_, k)| fernet::Fernet::new(&k).map(|f| (k, f)))
                .collect()),
            Source::Shared(shared) => {
                let set = shared.snapshot();
                Ok(set
                    .texts
                    .iter()
                    .filter_map(|k| fernet::Fernet::new(k).map(|f| (k.clone(), f)))
                    .collect())
            }
        }
    }
}

fn key_hash(key: &str) -> String {
    hex(&Sha1::digest(key.as_bytes()))
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

impl CredentialCipher for FernetCredentialCipher {
    fn seal(&self, plain: &[u8]) -> Result<SealedBlob, String> {
        let keys = self.keys().map_err(|e| e.to_string())?;
        let (raw, primary) = keys
            .first()
            .ok_or_else(|| "the credential key repository holds no keys".to_string())?;
        Ok(SealedBlob {
            ciphertext: primary.encrypt(plain),
            key_hash: key_hash(raw),
        })
    }

    fn primary_key_hash(&self) -> Result<String, String> {
        let keys = self.keys().map_err(|e| e.to_string())?;
        keys.first()
            .map(|(raw, _)| key_hash(raw))
            .ok_or_else(|| "the credential key repository holds no keys".to_string())
    }

    fn open(&self, sealed: &SealedBlob) -> Result<Vec<u8>, String> {
        let keys = self.keys().map_err(|e| e.to_string())?;
        keys.iter()
            .find_map(|(_, f)| f.decrypt(&sealed.ciphertext).ok())
            .ok_or_else(|| "no credential key decrypts this credential".to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_open_and_rotate() {
        let dir = tempfile::tempdir().unwrap();
        let repo = KeyRepository::new(dir.path());
        repo.setup(3).unwrap();
        let c = FernetCredentialCipher::new(repo.clone());
        let sealed = c.seal(b"{\"access\": \"a\", \"secret\": \"s\"}").unwrap();
        assert_eq!(sealed.key_hash.len(), 40);
        assert_ne!(
            sealed.ciphertext.as_bytes(),
            b"{\"access\": \"a\", \"secret\": \"s\"}"
        );
        repo.rotate(3).unwrap();
        assert_eq!(
            c.open(&sealed).unwrap(),
            b"{\"access\": \"a\", \"secret\": \"s\"}"
        );
        let resealed = c.seal(b"x").unwrap();
        assert_ne!(resealed.key_hash, sealed.key_hash, "a new primary key");
        repo.rotate(3).unwrap();
        repo.rotate(3).unwrap();
        assert!(c.open(&sealed).is_err(), "its key rotated out");
    }
}
