//! Time and randomness, injected so tests control them.

use rand::RngCore;
use std::sync::atomic::{AtomicI64, Ordering};
use time::OffsetDateTime;

#[async_trait::async_trait]
pub trait Clock: Send + Sync {
    fn now(&self) -> OffsetDateTime;

    /// Waits until `now()` has reached `t` (a test clock just moves there).
    async fn wait_until(&self, t: OffsetDateTime);
}

pub trait Random: Send + Sync {
    fn fill(&self, buf: &mut [u8]);

    /// A new entity id: 32 lowercase hex characters, like Keystone's `uuid4().hex`.
    fn new_id(&self) -> String {
        let mut b = [0u8; 16];
        self.fill(&mut b);
        uuid::Builder::from_random_bytes(b)
            .into_uuid()
            .simple()
            .to_string()
    }

    fn bytes<const N: usize>(&self) -> [u8; N]
    where
        Self: Sized,
    {
        let mut b = [0u8; N];
        self.fill(&mut b);
        b
    }
}

/// The wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

#[async_trait::async_trait]
impl Clock for SystemClock {
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }

    async fn wait_until(&self, t: OffsetDateTime) {
        let left = t - self.now();
        if left.is_positive() {
            tokio::time::sleep(left.unsigned_abs()).await;
        }
    }
}

/// The operating system's CSPRNG.
#[derive(Debug, Default, Clone, Copy)]
pub struct OsRandom;

impl Random for OsRandom {
    fn fill(&self, buf: &mut [u8]) {
        rand::rngs::OsRng.fill_bytes(buf);
    }
}

/// A clock tests move by hand (microsecond resolution).
#[derive(Debug)]
pub struct ManualClock {
    micros: AtomicI64,
}

impl ManualClock {
    pub fn at(t: OffsetDateTime) -> Self {
        ManualClock {
            micros: AtomicI64::new((t.unix_timestamp_nanos() / 1000) as i64),
        }
    }

    pub fn advance(&self, d: time::Duration) {
        self.micros
            .fetch_add(d.whole_microseconds() as i64, Ordering::SeqCst);
    }
}

#[async_trait::async_trait]
impl Clock for ManualClock {
    fn now(&self) -> OffsetDateTime {
        let us = self.micros.load(Ordering::SeqCst);
        OffsetDateTime::from_unix_timestamp_nanos(us as i128 * 1000)
            .unwrap_or(OffsetDateTime::UNIX_EPOCH)
    }

    async fn wait_until(&self, t: OffsetDateTime) {
        let target = (t.unix_timestamp_nanos() / 1000) as i64;
        self.micros.fetch_max(target, Ordering::SeqCst);
    }
}

/// Truncates a timestamp to whole seconds (Fernet and Keystone token times are whole seconds).
pub fn whole_seconds(t: OffsetDateTime) -> OffsetDateTime {
    t.replace_nanosecond(0).unwrap_or(t)
}

/// Truncates to microseconds, the resolution Keystone and the store keep.
pub fn whole_micros(t: OffsetDateTime) -> OffsetDateTime {
    let ns = t.nanosecond();
    t.replace_nanosecond(ns - ns % 1000).unwrap_or(t)
}
