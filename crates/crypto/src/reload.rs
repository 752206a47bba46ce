//! Key material read from files and re-read when the files change, so a key rotation takes
//! effect on a running server without a restart. The files are looked at at most once a
//! second; if they changed but cannot be read, the keys in use stay (with one warning per
//! change).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::RwLock;
use std::time::{Duration, Instant};

/// Names, sizes and modification times of the files in `dir`: what tells a key
/// directory changed. `None` when it cannot be read.
pub(crate) fn dir_fingerprint(
    dir: &std::path::Path,
) -> Option<Vec<(String, u64, std::time::SystemTime)>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).ok()? {
        let entry = entry.ok()?;
        let md = entry.metadata().ok()?;
        out.push((
            entry.file_name().to_string_lossy().into_owned(),
            md.len(),
            md.modified().ok()?,
        ));
    }
    out.sort();
    Some(out)
}

/// How often the files are checked for changes.
pub(crate) const RELOAD_CHECK: Duration = Duration::from_secs(1);

struct Snapshot<T, F> {
    keys: T,
    fingerprint: F,
    checked: Instant,
}

/// Keys `T`, loaded together with a fingerprint `F` of the files they came from.
pub(crate) struct Reloading<T, F> {
    what: &'static str,
    state: RwLock<Snapshot<T, F>>,
    /// Counts the reloads, so caches of what the keys validated can tell they changed.
    generation: AtomicU64,
}

impl<T, F: PartialEq> Reloading<T, F> {
    pub(crate) fn new(what: &'static str, keys: T, fingerprint: F) -> Self {
        Reloading {
            what,
            state: RwLock::new(Snapshot {
                keys,
                fingerprint,
                checked: Instant::now(),
            }),
            generation: AtomicU64::new(0),
        }
    }

    /// How many times the keys were replaced, after checking the files if that is due.
    pub(crate) fn generation<E: std::fmt::Display>(
        &self,
        fingerprint: impl FnOnce() -> F,
        load: impl FnOnce() -> Result<(T, F), E>,
    ) -> u64 {
        self.refresh(fingerprint, load);
        self.generation.load(Ordering::SeqCst)
    }

    /// Runs `f` on the current keys, first reloading them with `load` if `fingerprint`
    /// says the files changed since they were read.
    pub(crate) fn with<R, E: std::fmt::Display>(
        &self,
        fingerprint: impl FnOnce() -> F,
        load: impl FnOnce() -> Result<(T, F), E>,
        f: impl FnOnce(&T) -> R,
    ) -> R {
        self.refresh(fingerprint, load);
        match self.state.read() {
            Ok(s) => f(&s.keys),
            Err(poisoned) => f(&poisoned.into_inner().keys),
        }
    }

    fn refresh<E: std::fmt::Display>(
        &self,
        fingerprint: impl FnOnce() -> F,
        load: impl FnOnce() -> Result<(T, F), E>,
    ) {
        let due = self
            .state
            .read()
            .map(|s| s.checked.elapsed() >= RELOAD_CHECK)
            .unwrap_or(true);
        if !due {
            return;
        }
        let fp = fingerprint();
        let Ok(mut s) = self.state.write() else {
            return;
        };
        s.checked = Instant::now();
        if fp == s.fingerprint {
            return;
        }
        match load() {
            Ok((keys, fingerprint)) => {
                s.keys = keys;
                s.fingerprint = fingerprint;
                self.generation.fetch_add(1, Ordering::SeqCst);
            }
            Err(e) => {
                tracing::warn!(keys = self.what, error = %e, "key files changed but could not be read; keeping the keys in use");
                s.fingerprint = fp;
            }
        }
    }
}
