//! How many wrong secrets one credential may take: a token bucket per credential id, in
//! this node's memory.
//!
//! Whoever can present an application credential (`POST /v3/auth/tokens`, the OAuth
//! client_credentials grant, or a cluster's TokenReview, where every request comes from
//! the API server's one address) can guess its secret; per-address limits do not hold
//! there. So every credential has an allowance of wrong secrets: `per_minute` at once,
//! refilling steadily at `per_minute` a minute. A check takes one unit of allowance
//! before the secret is compared (so concurrent guesses cannot all slip in before the
//! first failure counts) and gives it back when the secret was right. Without allowance
//! left the secret is not compared at all: the answer says so ("not checked"), not that
//! the secret is wrong. The right secret is refused too while that lasts: anything else
//! would answer the guesses that the limit is there to stop. The owner's way out is to
//! wait (the attacker has to keep guessing to keep the credential blocked) or to use
//! another credential.
//!
//! Checks beyond the allowance that is not yet spent but held by checks in flight wait
//! for those to finish instead of being refused, so many right secrets presented at once
//! (a CI fan-out) all get through.

use std::collections::HashMap;
use std::sync::Mutex;
use time::{Duration, OffsetDateTime};

/// Past this many tracked credentials, those whose allowance is whole again are dropped.
const PRUNE_ABOVE: usize = 10_000;

#[derive(Debug, Clone, Copy)]
struct Bucket {
    /// Allowance left (fractions refill over time).
    allowance: f64,
    /// When `allowance` was last brought up to date.
    at: OffsetDateTime,
    /// Checks under way, each holding one unit.
    checking: u32,
}

/// What a check of a presented secret may do now.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Admission {
    /// Compare the secret (the unit is held until [`GuessLimiter::finish`]).
    Check,
    /// The allowance left is held by checks under way: ask again shortly.
    Wait,
    /// No allowance left: do not compare; it comes back in this many seconds.
    Refuse { retry_after_secs: u64 },
}

/// Wrong-secret allowances per credential id.
#[derive(Debug)]
pub struct GuessLimiter {
    per_minute: f64,
    buckets: Mutex<HashMap<String, Bucket>>,
}

impl GuessLimiter {
    /// A limiter allowing `per_minute` wrong secrets a minute per credential (also the
    /// burst); `None` for 0, which disables the limit.
    pub fn new(per_minute: u32) -> Option<Self> {
        (per_minute > 0).then(|| GuessLimiter {
            per_minute: f64::from(per_minute),
            buckets: Mutex::new(HashMap::new()),
        })
    }

    fn refilled(&self, b: &mut Bucket, now: OffsetDateTime) {
        let elapsed = (now - b.at).as_seconds_f64().max(0.0);
        b.allowance = (b.allowance + elapsed * self.per_minute / 60.0).min(self.per_minute);
        b.at = now;
    }

    /// Whether a secret presented for credential `id` may be compared now.
    pub fn admit(&self, id: &str, now: OffsetDateTime) -> Admission {
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if buckets.len() > PRUNE_ABOVE {
            buckets.retain(|_, b| {
                self.refilled(b, now);
                b.checking > 0 || b.allowance < self.per_minute
            });
        }
        let b = buckets.entry(id.to_string()).or_insert(Bucket {
            allowance: self.per_minute,
            at: now,
            checking: 0,
        });
        self.refilled(b, now);
        if b.allowance - f64::from(b.checking) >= 1.0 {
            b.checking += 1;
            Admission::Check
        } else if b.allowance >= 1.0 {
            Admission::Wait
        } else {
            let missing = 1.0 - b.allowance;
            Admission::Refuse {
                retry_after_secs: (missing * 60.0 / self.per_minute).ceil().max(1.0) as u64,
            }
        }
    }

    /// Ends a check [`GuessLimiter::admit`] allowed: a wrong secret spends the unit, a
    /// right one (or a check given up before its answer) gives it back. Returns whether
    /// this wrong secret used the allowance up.
    pub fn finish(&self, id: &str, now: OffsetDateTime, wrong: bool) -> bool {
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        let Some(b) = buckets.get_mut(id) else {
            return false;
        };
        self.refilled(b, now);
        b.checking = b.checking.saturating_sub(1);
        let had = b.allowance >= 1.0;
        if wrong {
            b.allowance = (b.allowance - 1.0).max(0.0);
        }
        let used_up = wrong && had && b.allowance < 1.0;
        if b.checking == 0 && b.allowance >= self.per_minute {
            buckets.remove(id);
        }
        used_up
    }

    /// Gives back the unit of a check that ended without an answer.
    fn release(&self, id: &str) {
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(b) = buckets.get_mut(id) {
            b.checking = b.checking.saturating_sub(1);
        }
    }
}

/// A unit of allowance held for one secret check: [`SecretCheck::finish`] settles it;
/// dropped unsettled (the request went away mid-check, nobody saw an answer), it is given
/// back.
pub struct SecretCheck<'a> {
    limiter: &'a GuessLimiter,
    id: String,
    settled: bool,
}

impl<'a> SecretCheck<'a> {
    /// The unit [`GuessLimiter::admit`] granted for credential `id`.
    pub fn held(limiter: &'a GuessLimiter, id: &str) -> Self {
        SecretCheck {
            limiter,
            id: id.to_string(),
            settled: false,
        }
    }

    /// Settles the check (see [`GuessLimiter::finish`]).
    pub fn finish(mut self, now: OffsetDateTime, wrong: bool) -> bool {
        self.settled = true;
        self.limiter.finish(&self.id, now, wrong)
    }
}

impl Drop for SecretCheck<'_> {
    fn drop(&mut self) {
        if !self.settled {
            self.limiter.release(&self.id);
        }
    }
}

/// How long a check waits between asks while the allowance is held by checks in flight,
/// and at most in all (a secret check takes a fraction of a second).
pub const WAIT_STEP: Duration = Duration::milliseconds(25);
pub const WAIT_AT_MOST: Duration = Duration::seconds(10);

#[cfg(test)]
mod tests {
    use super::*;

    fn t(secs: f64) -> OffsetDateTime {
        OffsetDateTime::UNIX_EPOCH + Duration::seconds_f64(secs)
    }

    #[test]
    fn wrong_secrets_spend_the_allowance_and_it_refills() {
        let l = GuessLimiter::new(3).unwrap();
        for _ in 0..3 {
            assert_eq!(l.admit("c", t(0.0)), Admission::Check);
            l.finish("c", t(0.0), true);
        }
        assert_eq!(
            l.admit("c", t(0.0)),
            Admission::Refuse {
                retry_after_secs: 20
            }
        );
        // Another credential is not affected.
        assert_eq!(l.admit("d", t(0.0)), Admission::Check);
        // One unit back after a third of a minute.
        assert_eq!(l.admit("c", t(20.0)), Admission::Check);
        l.finish("c", t(20.0), true);
        assert!(matches!(l.admit("c", t(21.0)), Admission::Refuse { .. }));
    }

    #[test]
    fn right_secrets_cost_nothing() {
        let l = GuessLimiter::new(2).unwrap();
        for _ in 0..100 {
            assert_eq!(l.admit("c", t(0.0)), Admission::Check);
            l.finish("c", t(0.0), false);
        }
        assert!(
            l.buckets.lock().unwrap().is_empty(),
            "a whole bucket is dropped"
        );
    }

    #[test]
    fn concurrent_checks_cannot_outrun_the_allowance() {
        let l = GuessLimiter::new(2).unwrap();
        assert_eq!(l.admit("c", t(0.0)), Admission::Check);
        assert_eq!(l.admit("c", t(0.0)), Admission::Check);
        // Both units are held: the third waits rather than being compared.
        assert_eq!(l.admit("c", t(0.0)), Admission::Wait);
        l.finish("c", t(0.1), true);
        l.finish("c", t(0.1), true);
        assert!(matches!(l.admit("c", t(0.1)), Admission::Refuse { .. }));
    }

    #[test]
    fn waiting_checks_go_on_when_the_secrets_were_right() {
        let l = GuessLimiter::new(1).unwrap();
        assert_eq!(l.admit("c", t(0.0)), Admission::Check);
        assert_eq!(l.admit("c", t(0.0)), Admission::Wait);
        l.finish("c", t(0.2), false);
        assert_eq!(l.admit("c", t(0.2)), Admission::Check);
    }

    #[test]
    fn a_check_given_up_gives_its_unit_back() {
        let l = GuessLimiter::new(1).unwrap();
        assert_eq!(l.admit("c", t(0.0)), Admission::Check);
        drop(SecretCheck::held(&l, "c"));
        assert_eq!(l.admit("c", t(0.0)), Admission::Check);
        assert!(SecretCheck::held(&l, "c").finish(t(0.0), true), "used up");
        assert!(matches!(l.admit("c", t(0.0)), Admission::Refuse { .. }));
    }

    #[test]
    fn zero_disables() {
        assert!(GuessLimiter::new(0).is_none());
    }
}
