//! Brute-force regulation: after `max_failures` failed codes for one key (a user, an address) within
//! `window`, refuse that key for `ban`. Pure bookkeeping with time passed in; it lives in memory
//! because a restart only gives an attacker one more window, while a database write per failure
//! would make failed attempts an amplification vector.
//!
//! An attempt is *reserved* before its code is checked and *settled* after, under one lock: a
//! reservation counts against the limit while it is in flight, so a burst of concurrent wrong codes
//! cannot all be checked before the first failure is recorded (check-then-act).

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

/// The limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ThrottlePolicy {
    /// Failures allowed within the window.
    pub max_failures: u32,
    /// Window length, seconds.
    pub window_secs: u64,
    /// Ban length once the limit is reached, seconds.
    pub ban_secs: u64,
}

impl Default for ThrottlePolicy {
    fn default() -> Self {
        Self {
            max_failures: 5,
            window_secs: 300,
            ban_secs: 900,
        }
    }
}

#[derive(Debug, Default, Clone)]
struct Entry {
    failures: Vec<u64>,
    banned_until: Option<u64>,
    /// Attempts reserved and not settled yet.
    in_flight: u32,
}

/// How long to wait when the limit is reached only by attempts still in flight: they settle within
/// moments, into a ban or (a right code) into a clean slate.
const IN_FLIGHT_RETRY_SECS: u64 = 1;

/// Failure bookkeeping per key.
#[derive(Debug, Default)]
pub struct Throttle {
    policy: ThrottlePolicy,
    entries: HashMap<String, Entry>,
}

impl Throttle {
    /// An empty throttle.
    pub fn new(policy: ThrottlePolicy) -> Self {
        Self {
            policy,
            entries: HashMap::new(),
        }
    }

    /// Seconds until `key` may try again, if it is banned at `now`.
    pub fn banned_for(&self, key: &str, now: u64) -> Option<u64> {
        self.entries
            .get(key)
            .and_then(|e| e.banned_until)
            .filter(|until| *until > now)
            .map(|until| until - now)
    }

    /// Reserves one attempt for every key at once, or says how long to wait: a key is banned, or
    /// its recent failures plus the attempts in flight already reach the limit. A reservation must
    /// be settled with [`Throttle::settle`].
    pub fn reserve(&mut self, keys: &[String], now: u64) -> Result<(), u64> {
        let p = self.policy;
        let mut wait = None;
        for key in keys {
            if let Some(w) = self.banned_for(key, now) {
                wait = wait.max(Some(w));
                continue;
            }
            if let Some(e) = self.entries.get(key) {
                let recent = e
                    .failures
                    .iter()
                    .filter(|t| now.saturating_sub(**t) < p.window_secs)
                    .count();
                let taken = u32::try_from(recent)
                    .unwrap_or(u32::MAX)
                    .saturating_add(e.in_flight);
                if taken >= p.max_failures {
                    wait = wait.max(Some(IN_FLIGHT_RETRY_SECS));
                }
            }
        }
        if let Some(w) = wait {
            return Err(w);
        }
        for key in keys {
            self.entries.entry(key.clone()).or_default().in_flight += 1;
        }
        Ok(())
    }

    /// Settles a reservation made by [`Throttle::reserve`]: `Some(true)` a right code (forgets the
    /// keys' failures), `Some(false)` a wrong one (returns the ban length if it started one), `None`
    /// the attempt could not be judged (an internal error) and counts as nothing.
    pub fn settle(&mut self, keys: &[String], now: u64, outcome: Option<bool>) -> Option<u64> {
        for key in keys {
            if let Some(e) = self.entries.get_mut(key) {
                e.in_flight = e.in_flight.saturating_sub(1);
            }
        }
        match outcome {
            Some(true) => {
                keys.iter().for_each(|k| self.succeed(k));
                None
            }
            Some(false) => keys.iter().filter_map(|k| self.fail(k, now)).max(),
            None => None,
        }
    }

    /// Records a failure; returns the ban length if this failure started one.
    pub fn fail(&mut self, key: &str, now: u64) -> Option<u64> {
        let p = self.policy;
        let e = self.entries.entry(key.to_string()).or_default();
        e.failures
            .retain(|t| now.saturating_sub(*t) < p.window_secs);
        e.failures.push(now);
        if e.failures.len() as u32 >= p.max_failures {
            e.failures.clear();
            e.banned_until = Some(now + p.ban_secs);
            return Some(p.ban_secs);
        }
        None
    }

    /// Forgets the failures of `key` after a success (attempts still in flight stay counted).
    pub fn succeed(&mut self, key: &str) {
        if let Some(e) = self.entries.get_mut(key) {
            e.failures.clear();
            e.banned_until = None;
            if e.in_flight == 0 {
                self.entries.remove(key);
            }
        }
    }

    /// Drops entries with nothing left to remember.
    pub fn sweep(&mut self, now: u64) {
        let window = self.policy.window_secs;
        self.entries.retain(|_, e| {
            e.in_flight > 0
                || e.banned_until.is_some_and(|u| u > now)
                || e.failures.iter().any(|t| now.saturating_sub(*t) < window)
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bans_after_max_failures_and_expires() {
        let mut t = Throttle::new(ThrottlePolicy {
            max_failures: 3,
            window_secs: 60,
            ban_secs: 600,
        });
        let now = 1_000;
        assert_eq!(t.fail("user:bob", now), None);
        assert_eq!(t.fail("user:bob", now + 1), None);
        assert_eq!(t.banned_for("user:bob", now + 1), None);
        assert_eq!(t.fail("user:bob", now + 2), Some(600));
        assert_eq!(t.banned_for("user:bob", now + 2), Some(600));
        assert_eq!(
            t.banned_for("user:alice", now + 2),
            None,
            "keys are separate"
        );
        assert_eq!(t.banned_for("user:bob", now + 601), Some(1));
        assert_eq!(t.banned_for("user:bob", now + 602), None, "ban expires");
    }

    #[test]
    fn failures_outside_the_window_do_not_count() {
        let mut t = Throttle::new(ThrottlePolicy {
            max_failures: 2,
            window_secs: 60,
            ban_secs: 600,
        });
        assert_eq!(t.fail("a", 0), None);
        assert_eq!(t.fail("a", 61), None, "first failure left the window");
        assert_eq!(t.fail("a", 62), Some(600));
        t.succeed("a");
        assert_eq!(t.banned_for("a", 63), None);
        t.fail("b", 0);
        t.sweep(1_000);
        assert!(t.entries.is_empty());
    }

    #[test]
    fn attempts_in_flight_count_against_the_limit() {
        let mut t = Throttle::new(ThrottlePolicy {
            max_failures: 3,
            window_secs: 60,
            ban_secs: 600,
        });
        let keys = ["user:bob".to_string(), "addr:10.0.0.2".to_string()];
        let now = 1_000;
        for _ in 0..3 {
            assert_eq!(t.reserve(&keys, now), Ok(()));
        }
        assert_eq!(
            t.reserve(&keys, now),
            Err(IN_FLIGHT_RETRY_SECS),
            "limit in flight"
        );
        assert_eq!(
            t.reserve(&keys[1..], now),
            Err(IN_FLIGHT_RETRY_SECS),
            "one key at the limit refuses"
        );
        assert_eq!(t.settle(&keys, now, Some(false)), None);
        assert_eq!(
            t.settle(&keys, now, None),
            None,
            "an error counts as nothing"
        );
        assert_eq!(
            t.reserve(&keys, now),
            Ok(()),
            "the errored slot is free again"
        );
        assert_eq!(t.settle(&keys, now, Some(false)), None);
        assert_eq!(
            t.settle(&keys, now, Some(false)),
            Some(600),
            "third failure bans"
        );
        assert_eq!(t.reserve(&keys, now + 1), Err(599));
        t.sweep(now + 1);
        assert_eq!(t.reserve(&keys, now + 601), Ok(()), "ban over");
        assert_eq!(t.settle(&keys, now + 601, Some(true)), None);
        assert!(t.entries.is_empty(), "a success forgets the keys");
    }
}
