//! Login rate limiting: failed authentications cost a client address a token from a
//! bucket that refills over time; an empty bucket answers 429 until it refills. Successful
//! logins cost nothing, so only guessing is slowed down. Complements Keystone's per-user
//! lockout, which is off unless configured.
//!
//! An attempt takes its token *before* the secret is checked and gives it back when it
//! turns out not to be a failure ([`LoginLimiter::reserve`]), so a burst of concurrent
//! guesses gets no more checks than the bucket holds.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Addresses tracked at most; beyond this, full (idle) buckets are dropped first.
const MAX_TRACKED: usize = 50_000;

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

#[derive(Debug)]
pub struct LoginLimiter {
    capacity: f64,
    per_second: f64,
    buckets: Mutex<HashMap<IpAddr, Bucket>>,
}

impl LoginLimiter {
    /// `per_minute` failed logins per address, with a burst of as many. 0 disables.
    pub fn new(per_minute: u32) -> Option<Self> {
        (per_minute > 0).then(|| LoginLimiter {
            capacity: per_minute as f64,
            per_second: per_minute as f64 / 60.0,
            buckets: Mutex::new(HashMap::new()),
        })
    }

    fn refill(&self, b: &mut Bucket, now: Instant) {
        let elapsed = now.saturating_duration_since(b.at).as_secs_f64();
        b.tokens = (b.tokens + elapsed * self.per_second).min(self.capacity);
        b.at = now;
    }

    /// Takes a token for one attempt from `ip`'s bucket, or `Err(wait)` when it is
    /// empty. The token comes back when the [`Attempt`] is dropped, unless it was marked
    /// [`Attempt::failed`].
    pub fn reserve(&self, ip: IpAddr, now: Instant) -> Result<Attempt<'_>, Duration> {
        let Ok(mut map) = self.buckets.lock() else {
            return Ok(Attempt {
                limiter: self,
                ip,
                failed: true,
            });
        };
        if map.len() >= MAX_TRACKED && !map.contains_key(&ip) {
            let (capacity, per_second) = (self.capacity, self.per_second);
            map.retain(|_, b| {
                let elapsed = now.saturating_duration_since(b.at).as_secs_f64();
                b.tokens + elapsed * per_second < capacity
            });
        }
        let capacity = self.capacity;
        let b = map.entry(ip).or_insert(Bucket {
            tokens: capacity,
            at: now,
        });
        self.refill(b, now);
        if b.tokens < 1.0 {
            return Err(Duration::from_secs_f64((1.0 - b.tokens) / self.per_second));
        }
        b.tokens -= 1.0;
        Ok(Attempt {
            limiter: self,
            ip,
            failed: false,
        })
    }

    fn give_back(&self, ip: IpAddr) {
        if let Ok(mut map) = self.buckets.lock() {
            if let Some(b) = map.get_mut(&ip) {
                b.tokens = (b.tokens + 1.0).min(self.capacity);
            }
        }
    }
}

/// One attempt's token: given back on drop unless the attempt failed.
#[must_use = "an attempt gives its token back when dropped"]
pub struct Attempt<'a> {
    limiter: &'a LoginLimiter,
    ip: IpAddr,
    failed: bool,
}

impl Attempt<'_> {
    /// The attempt failed: its token stays spent.
    pub fn failed(mut self) {
        self.failed = true;
    }
}

impl Drop for Attempt<'_> {
    fn drop(&mut self) {
        if !self.failed {
            self.limiter.give_back(self.ip);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_drain_then_refill() {
        let l = LoginLimiter::new(3).unwrap();
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        let other: IpAddr = "10.0.0.2".parse().unwrap();
        let t0 = Instant::now();
        for _ in 0..3 {
            l.reserve(ip, t0).unwrap().failed();
        }
        let wait = l.reserve(ip, t0).err().unwrap();
        assert!(
            wait > Duration::from_secs(19) && wait <= Duration::from_secs(20),
            "{wait:?}"
        );
        assert!(
            l.reserve(other, t0).is_ok(),
            "other addresses are unaffected"
        );
        assert!(
            l.reserve(ip, t0 + Duration::from_secs(21)).is_ok(),
            "refilled"
        );
        assert!(LoginLimiter::new(0).is_none());
    }

    #[test]
    fn concurrent_attempts_are_bounded_and_successes_cost_nothing() {
        let l = LoginLimiter::new(3).unwrap();
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        let t0 = Instant::now();
        // Three attempts in flight at once: a fourth is refused before any has ended.
        let held: Vec<_> = (0..3).map(|_| l.reserve(ip, t0).unwrap()).collect();
        assert!(l.reserve(ip, t0).is_err());
        // They succeed: their tokens come back.
        drop(held);
        for _ in 0..10 {
            assert!(l.reserve(ip, t0).is_ok());
        }
    }
}
