//! Time and randomness, injected so tests control them.

use rand::RngCore;
use std::sync::atomic::{AtomicI64, Ordering};
use time::OffsetDateTime;

pub trait Clock: Send + Sync {
    fn now(&self) -> OffsetDateTime;
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

impl Clock for SystemClock {
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
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

impl Clock for ManualClock {
    fn now(&self) -> OffsetDateTime {
        let us = self.micros.load(Ordering::SeqCst);
        OffsetDateTime::from_unix_timestamp_nanos(us as i128 * 1000)
            .unwrap_or(OffsetDateTime::UNIX_EPOCH)
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
