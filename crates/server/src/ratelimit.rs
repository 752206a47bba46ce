//! Login rate limiting: failed authentications cost a client address a token from a
//! bucket that refills over time; an empty bucket answers 429 until it refills. Successful
//! logins cost nothing, so only guessing is slowed down. Complements Keystone's per-user
//! lockout, which is off unless configured.

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

    /// `Err(wait)` when the address has used up its failures.
    pub fn check(&self, ip: IpAddr, now: Instant) -> Result<(), Duration> {
        let Ok(mut map) = self.buckets.lock() else {
            return Ok(());
        };
        match map.get_mut(&ip) {
            None => Ok(()),
            Some(b) => {
                self.refill(b, now);
                if b.tokens >= 1.0 {
                    Ok(())
                } else {
                    Err(Duration::from_secs_f64((1.0 - b.tokens) / self.per_second))
                }
            }
        }
    }

    pub fn record_failure(&self, ip: IpAddr, now: Instant) {
        let Ok(mut map) = self.buckets.lock() else {
            return;
        };
        if map.len() >= MAX_TRACKED && !map.contains_key(&ip) {
            let capacity = self.capacity;
            let per_second = self.per_second;
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
        b.tokens = (b.tokens - 1.0).max(0.0);
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
            assert!(l.check(ip, t0).is_ok());
            l.record_failure(ip, t0);
        }
        let wait = l.check(ip, t0).unwrap_err();
        assert!(
            wait > Duration::from_secs(19) && wait <= Duration::from_secs(20),
            "{wait:?}"
        );
        assert!(l.check(other, t0).is_ok(), "other addresses are unaffected");
        assert!(
            l.check(ip, t0 + Duration::from_secs(21)).is_ok(),
            "refilled"
        );
        assert!(LoginLimiter::new(0).is_none());
    }
}
