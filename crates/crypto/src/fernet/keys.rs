//! A Keystone-compatible Fernet key repository: files named by integers, `0` staged, the
//! highest primary, the rest secondary.

use base64::Engine;
use rand::RngCore;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use thiserror::Error;

#[derive(Debug, Error)]
pub enum KeyRepositoryError {
    #[error("key repository {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("key repository {0} holds no keys; run `limen keys fernet setup`")]
    Empty(String),
    #[error("key file {0} is not a 32-byte url-safe base64 Fernet key")]
    BadKey(String),
    #[error("max_active_keys must be at least 1")]
    BadMaxActiveKeys,
}

#[derive(Debug, Clone)]
pub struct KeyRepository {
    dir: PathBuf,
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> KeyRepositoryError + '_ {
    move |source| KeyRepositoryError::Io {
        path: path.display().to_string(),
        source,
    }
}

impl KeyRepository {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        KeyRepository { dir: dir.into() }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Key numbers present, ascending. Names that are not integers and empty files are
    /// ignored, as Keystone does.
    pub fn key_numbers(&self) -> Result<Vec<u64>, KeyRepositoryError> {
        let mut out = Vec::new();
        let entries = match fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
            Err(e) => return Err(io_err(&self.dir)(e)),
        };
        for entry in entries {
            let entry = entry.map_err(io_err(&self.dir))?;
            let name = entry.file_name();
            let Some(n) = name.to_str().and_then(|s| s.parse::<u64>().ok()) else {
                continue;
            };
            let len = entry.metadata().map(|m| m.len()).unwrap_or(0);
            if len > 0 {
                out.push(n);
            }
        }
        out.sort_unstable();
        Ok(out)
    }

    /// The keys, primary (highest number) first, then the rest descending, staged (`0`) last.
    pub fn load(&self) -> Result<Vec<(u64, String)>, KeyRepositoryError> {
        let mut nums = self.key_numbers()?;
        if nums.is_empty() {
            return Err(KeyRepositoryError::Empty(self.dir.display().to_string()));
        }
        nums.sort_unstable_by(|a, b| b.cmp(a));
        let mut keys = Vec::with_capacity(nums.len());
        for n in nums {
            let path = self.dir.join(n.to_string());
            let text = fs::read_to_string(&path).map_err(io_err(&path))?;
            let key = text.trim().to_string();
            if !is_valid_key(&key) {
                return Err(KeyRepositoryError::BadKey(path.display().to_string()));
            }
            keys.push((n, key));
        }
        Ok(keys)
    }

    /// Creates the repository if it holds no keys: stages key `0`, then rotates once so
    /// there is a primary (`{0, 1}`). Returns false when keys already existed.
    pub fn setup(&self, max_active_keys: usize) -> Result<bool, KeyRepositoryError> {
        self.ensure_dir()?;
        if !self.key_numbers()?.is_empty() {
            return Ok(false);
        }
        self.write_key(&self.dir.join("0"))?;
        self.rotate(max_active_keys)?;
        Ok(true)
    }

    /// Keystone's rotation: a new staged key; the old staged key becomes primary; the
    /// oldest secondaries go until `max_active_keys` remain.
    pub fn rotate(&self, max_active_keys: usize) -> Result<u64, KeyRepositoryError> {
        if max_active_keys < 1 {
            return Err(KeyRepositoryError::BadMaxActiveKeys);
        }
        self.ensure_dir()?;
        let nums = self.key_numbers()?;
        let staged = self.dir.join("0");
        if !nums.contains(&0) {
            self.write_key(&staged)?;
        }
        let new_primary = nums.iter().max().copied().unwrap_or(0) + 1;
        let tmp = self.dir.join("0.tmp");
        self.write_key(&tmp)?;
        let primary_path = self.dir.join(new_primary.to_string());
        fs::rename(&staged, &primary_path).map_err(io_err(&primary_path))?;
        fs::rename(&tmp, &staged).map_err(io_err(&staged))?;
        let mut nums = self.key_numbers()?;
        // Keep `0` and the newest keys; drop the lowest non-zero ones.
        nums.retain(|n| *n != 0);
        nums.sort_unstable();
        let keep_nonzero = max_active_keys.saturating_sub(1);
        while nums.len() > keep_nonzero {
            let victim = nums.remove(0);
            let path = self.dir.join(victim.to_string());
            fs::remove_file(&path).map_err(io_err(&path))?;
        }
        Ok(new_primary)
    }

    fn ensure_dir(&self) -> Result<(), KeyRepositoryError> {
        fs::create_dir_all(&self.dir).map_err(io_err(&self.dir))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(&self.dir, fs::Permissions::from_mode(0o700))
                .map_err(io_err(&self.dir))?;
        }
        Ok(())
    }

    /// Writes a fresh random key readable by the owner only (Keystone's umask 0177).
    fn write_key(&self, path: &Path) -> Result<(), KeyRepositoryError> {
        let key = generate_key();
        let mut opts = fs::OpenOptions::new();
        opts.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let mut f = opts.open(path).map_err(io_err(path))?;
        f.write_all(key.as_bytes()).map_err(io_err(path))?;
        f.sync_all().map_err(io_err(path))?;
        Ok(())
    }

    /// A fingerprint of the repository's contents (names, sizes, mtimes), so a running
    /// server notices a rotation and reloads.
    pub fn fingerprint(&self) -> Option<Vec<(String, u64, std::time::SystemTime)>> {
        crate::reload::dir_fingerprint(&self.dir)
    }
}

/// A fresh random Fernet key in Keystone's text form (32 bytes, url-safe base64).
pub fn generate_key() -> String {
    let mut raw = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut raw);
    base64::engine::general_purpose::URL_SAFE.encode(raw)
}

pub fn is_valid_key(key: &str) -> bool {
    base64::engine::general_purpose::URL_SAFE
        .decode(key)
        .map(|b| b.len() == 32)
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn setup_then_rotate_follows_keystone() {
        let dir = tempfile::tempdir().unwrap();
        let repo = KeyRepository::new(dir.path().join("keys"));
        assert!(repo.setup(3).unwrap());
        assert_eq!(repo.key_numbers().unwrap(), vec![0, 1]);
        assert!(!repo.setup(3).unwrap(), "setup is idempotent");
        let staged_before = fs::read_to_string(dir.path().join("keys/0")).unwrap();
        assert_eq!(repo.rotate(3).unwrap(), 2);
        // The staged key became the new primary.
        assert_eq!(
            fs::read_to_string(dir.path().join("keys/2")).unwrap(),
            staged_before
        );
        assert_eq!(repo.key_numbers().unwrap(), vec![0, 1, 2]);
        repo.rotate(3).unwrap();
        assert_eq!(repo.key_numbers().unwrap(), vec![0, 2, 3]);
        let keys = repo.load().unwrap();
        assert_eq!(keys.iter().map(|k| k.0).collect::<Vec<_>>(), vec![3, 2, 0]);
    }

    #[test]
    fn ignores_junk_and_empty_files() {
        let dir = tempfile::tempdir().unwrap();
        let repo = KeyRepository::new(dir.path());
        repo.setup(3).unwrap();
        fs::write(dir.path().join("README"), "x").unwrap();
        fs::write(dir.path().join("7"), "").unwrap();
        assert_eq!(repo.key_numbers().unwrap(), vec![0, 1]);
    }

    #[test]
    fn rotate_with_one_key_keeps_only_staged() {
        let dir = tempfile::tempdir().unwrap();
        let repo = KeyRepository::new(dir.path());
        repo.setup(3).unwrap();
        repo.rotate(1).unwrap();
        assert_eq!(repo.key_numbers().unwrap(), vec![0]);
        assert!(matches!(
            repo.rotate(0),
            Err(KeyRepositoryError::BadMaxActiveKeys)
        ));
    }
}
