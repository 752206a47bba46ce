//! The on-disk cache of `limen login`: per (issuer, account) a directory holding the
//! account's login (access and refresh token) and one cluster token per (audience,
//! project). Directories are 0700, files 0600, written whole and renamed into place, so a
//! reader sees the old file or the new one. A lock file per account makes parallel
//! kubectl runs wait for one login instead of each starting its own.

use crate::ClientError;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// How large the record of the kubectl processes a cluster token went to may grow
/// before it starts over (some thousands of them).
const SERVED_RECORD_MAX: u64 = 32 * 1024;

/// How an account logged in.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum LoginKind {
    /// A person, through the device flow; renewed with the refresh token.
    Device,
    /// An application credential (its id; the secret is never cached).
    ApplicationCredential { id: String },
}

/// An account's login at an issuer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoginRecord {
    pub issuer: String,
    pub account: String,
    pub client_id: String,
    #[serde(flatten)]
    pub kind: LoginKind,
    pub access_token: String,
    /// Unix seconds, by this machine's clock.
    #[serde(default)]
    pub access_issued_at: i64,
    pub access_expires_at: i64,
    #[serde(default)]
    pub refresh_token: Option<String>,
    /// Who logged in, for messages (the ID token's `preferred_username`).
    #[serde(default)]
    pub username: Option<String>,
}

/// A cluster token of an account.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClusterEntry {
    pub audience: String,
    #[serde(default)]
    pub project: Option<String>,
    pub token: String,
    /// Unix seconds, by this machine's clock.
    pub issued_at: i64,
    pub expires_at: i64,
}

impl ClusterEntry {
    /// How long before `expires_at` it is renewed (and kubectl told it expires): the
    /// leeway asked for, but at most a third of its life, so a short-lived token is not
    /// renewed on every call.
    pub fn leeway(&self, leeway: i64) -> i64 {
        leeway.clamp(0, (self.expires_at - self.issued_at).max(0) / 3)
    }

    /// When kubectl should come back for a new one.
    pub fn renew_at(&self, leeway: i64) -> i64 {
        self.expires_at - self.leeway(leeway)
    }

    /// Whether it may still be handed out at `now`.
    pub fn fresh(&self, now: i64, leeway: i64) -> bool {
        now < self.renew_at(leeway)
    }
}

fn digest(parts: &[&str]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update([0]);
    }
    hex::encode(&h.finalize()[..16])
}

fn private_dir(dir: &Path) -> Result<(), ClientError> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| ClientError::cache(dir, e))?;
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
        .map_err(|e| ClientError::cache(dir, e))
}

/// Writes `bytes` to `path` as a 0600 file, atomically; `sync`ed to disk before it
/// replaces the old one, or not: the cache is not (a crash that empties it costs a
/// login, an fsync on every kubectl call costs milliseconds), a kubeconfig is.
pub fn write_private(path: &Path, bytes: &[u8], sync: bool) -> Result<(), ClientError> {
    let tmp = path.with_extension(format!("tmp.{}", std::process::id()));
    let written = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .and_then(|mut f| {
            f.write_all(bytes)?;
            if sync {
                f.sync_all()?;
            }
            Ok(())
        })
        .and_then(|()| fs::rename(&tmp, path));
    if let Err(e) = written {
        let _ = fs::remove_file(&tmp);
        return Err(ClientError::cache(path, e));
    }
    Ok(())
}

/// A JSON file, if it is there and readable as `T` (a damaged one counts as absent and
/// is replaced on the next write).
fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Option<T> {
    let bytes = fs::read(path).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// The cache's root directory.
#[derive(Debug, Clone)]
pub struct CacheRoot(PathBuf);

impl CacheRoot {
    pub fn new(dir: PathBuf) -> CacheRoot {
        CacheRoot(dir)
    }

    /// `$XDG_CACHE_HOME/limen`, else `~/.cache/limen`.
    pub fn default_dir() -> Result<PathBuf, ClientError> {
        let base = std::env::var_os("XDG_CACHE_HOME")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
            .ok_or_else(|| {
                ClientError::Usage(
                    "neither XDG_CACHE_HOME nor HOME is set: pass --cache-dir".into(),
                )
            })?;
        Ok(base.join("limen"))
    }

    pub fn account(&self, issuer: &str, account: &str) -> AccountCache {
        AccountCache {
            dir: self
                .0
                .join(format!("account-{}", digest(&[issuer, account]))),
        }
    }

    /// Every account directory there is.
    pub fn accounts(&self) -> Vec<AccountCache> {
        let Ok(entries) = fs::read_dir(&self.0) else {
            return Vec::new();
        };
        let mut found: Vec<AccountCache> = entries
            .filter_map(Result::ok)
            .filter(|e| e.file_name().to_string_lossy().starts_with("account-"))
            .map(|e| AccountCache { dir: e.path() })
            .collect();
        found.sort_by(|a, b| a.dir.cmp(&b.dir));
        found
    }
}

/// One account's directory.
#[derive(Debug, Clone)]
pub struct AccountCache {
    dir: PathBuf,
}

impl AccountCache {
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn cluster_path(&self, audience: &str, project: Option<&str>) -> PathBuf {
        self.dir.join(format!(
            "cluster-{}.json",
            digest(&[audience, project.unwrap_or("")])
        ))
    }

    /// The kubectl processes (ids, a line each) the cluster token went to: a kubectl that
    /// asks again before the expiry it was told got a 401 with it. Appended to, not
    /// rewritten, so that a cached answer writes no new file (on a journalling disk a
    /// new file and a rename cost milliseconds now and then).
    fn served_path(&self, audience: &str, project: Option<&str>) -> PathBuf {
        self.cluster_path(audience, project)
            .with_extension("served")
    }

    /// A cluster token, read without the lock (files are replaced whole, and the
    /// served-to record is only appended to, so a cached answer needs no lock).
    pub fn peek_cluster(&self, audience: &str, project: Option<&str>) -> Option<ClusterEntry> {
        read_json::<ClusterEntry>(&self.cluster_path(audience, project))
            .filter(|e| e.audience == audience && e.project.as_deref() == project)
    }

    /// Whether the cluster token for (`audience`, `project`) went to process `kubectl`.
    pub fn served(&self, audience: &str, project: Option<&str>, kubectl: u32) -> bool {
        let path = self.served_path(audience, project);
        fs::read_to_string(path).is_ok_and(|t| t.lines().any(|l| l.parse() == Ok(kubectl)))
    }

    /// Notes that the cluster token for (`audience`, `project`) went to `kubectl`.
    pub fn remember_served(
        &self,
        audience: &str,
        project: Option<&str>,
        kubectl: u32,
    ) -> Result<(), ClientError> {
        let path = self.served_path(audience, project);
        let mut f = OpenOptions::new()
            .append(true)
            .create(true)
            .mode(0o600)
            .open(&path)
            .map_err(|e| ClientError::cache(&path, e))?;
        if f.metadata().is_ok_and(|m| m.len() > SERVED_RECORD_MAX) {
            f.set_len(0).map_err(|e| ClientError::cache(&path, e))?;
        }
        f.write_all(format!("{kubectl}\n").as_bytes())
            .map_err(|e| ClientError::cache(&path, e))
    }

    /// Takes the account's lock, waiting while another process holds it.
    pub fn lock(&self) -> Result<AccountLock, ClientError> {
        private_dir(&self.dir)?;
        let path = self.dir.join("lock");
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&path)
            .map_err(|e| ClientError::cache(&path, e))?;
        file.lock().map_err(|e| ClientError::cache(&path, e))?;
        Ok(AccountLock {
            _file: file,
            account: self.clone(),
        })
    }
}

/// An account's cache while this process holds its lock (released on drop).
pub struct AccountLock {
    _file: File,
    account: AccountCache,
}

impl AccountLock {
    pub fn account(&self) -> &AccountCache {
        &self.account
    }

    fn login_path(&self) -> PathBuf {
        self.account.dir.join("login.json")
    }

    pub fn login(&self) -> Option<LoginRecord> {
        read_json(&self.login_path())
    }

    pub fn save_login(&self, r: &LoginRecord) -> Result<(), ClientError> {
        let bytes =
            serde_json::to_vec_pretty(r).map_err(|e| ClientError::Internal(e.to_string()))?;
        write_private(&self.login_path(), &bytes, false)
    }

    /// Saves a new cluster token; it has gone to no one yet.
    pub fn save_cluster(&self, e: &ClusterEntry) -> Result<(), ClientError> {
        let served = self.account.served_path(&e.audience, e.project.as_deref());
        match fs::remove_file(&served) {
            Err(err) if err.kind() != std::io::ErrorKind::NotFound => {
                return Err(ClientError::cache(&served, err))
            }
            _ => {}
        }
        let bytes =
            serde_json::to_vec_pretty(e).map_err(|e| ClientError::Internal(e.to_string()))?;
        write_private(
            &self.account.cluster_path(&e.audience, e.project.as_deref()),
            &bytes,
            false,
        )
    }

    /// Drops the login and every cluster token, keeping the (held) lock file.
    pub fn forget_all(&self) -> Result<(), ClientError> {
        let entries = fs::read_dir(&self.account.dir)
            .map_err(|e| ClientError::cache(&self.account.dir, e))?;
        for e in entries.filter_map(Result::ok) {
            if e.file_name() != "lock" {
                fs::remove_file(e.path()).map_err(|err| ClientError::cache(&e.path(), err))?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(issued_at: i64, expires_at: i64) -> ClusterEntry {
        ClusterEntry {
            audience: "prod".into(),
            project: None,
            token: "t".into(),
            issued_at,
            expires_at,
        }
    }

    #[test]
    fn renewal_comes_a_leeway_before_expiry_but_never_early_in_a_short_life() {
        let e = entry(1000, 1300);
        assert_eq!(e.renew_at(30), 1270);
        assert!(e.fresh(1269, 30));
        assert!(!e.fresh(1270, 30));
        // A 60 s token is renewed 20 s before it ends, not 30.
        assert_eq!(entry(1000, 1060).renew_at(30), 1040);
        assert_eq!(entry(1000, 1000).renew_at(30), 1000);
    }

    #[test]
    fn a_new_token_has_gone_to_no_kubectl_yet() {
        let tmp = tempfile::tempdir().unwrap();
        let lock = CacheRoot::new(tmp.path().to_path_buf())
            .account("i", "a")
            .lock()
            .unwrap();
        lock.save_cluster(&entry(0, 100)).unwrap();
        for pid in [7, 70, 700] {
            lock.account().remember_served("prod", None, pid).unwrap();
        }
        assert!(
            lock.account().served("prod", None, 70) && !lock.account().served("prod", None, 7000)
        );
        assert!(
            !lock.account().served("prod", Some("p"), 70),
            "another project's token"
        );
        lock.save_cluster(&entry(50, 150)).unwrap();
        assert!(!lock.account().served("prod", None, 70));
    }

    #[test]
    fn files_are_private_and_damage_reads_as_absent() {
        let tmp = tempfile::tempdir().unwrap();
        let root = CacheRoot::new(tmp.path().join("limen"));
        let acct = root.account("https://id.example.com", "alice");
        let lock = acct.lock().unwrap();
        let e = entry(1, 2);
        lock.save_cluster(&e).unwrap();
        assert_eq!(acct.peek_cluster("prod", None), Some(e.clone()));
        assert_eq!(acct.peek_cluster("prod", Some("p1")), None);
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(acct.dir()), 0o700);
        let file = acct.cluster_path("prod", None);
        assert_eq!(mode(&file), 0o600);
        fs::write(&file, b"{not json").unwrap();
        assert_eq!(acct.peek_cluster("prod", None), None);
        lock.forget_all().unwrap();
        assert!(!file.exists());
        assert_eq!(root.accounts().len(), 1);
        // Another account has another directory.
        assert_ne!(
            root.account("https://id.example.com", "bob").dir(),
            acct.dir()
        );
    }

    #[test]
    fn the_lock_excludes_a_second_holder() {
        let tmp = tempfile::tempdir().unwrap();
        let acct = CacheRoot::new(tmp.path().to_path_buf()).account("i", "a");
        let held = acct.lock().unwrap();
        let other = File::options()
            .write(true)
            .open(acct.dir().join("lock"))
            .unwrap();
        assert!(other.try_lock().is_err());
        drop(held);
        assert!(other.try_lock().is_ok());
    }
}
