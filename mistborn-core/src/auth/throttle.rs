//! Brute-force regulation: after `max_failures` failed codes for one key (a user, an address) within
//! `window`, refuse that key for `ban`. Pure bookkeeping with time passed in; it lives in memory
//! because a restart only gives an attacker one more window, while a database write per failure
//! would make failed attempts an amplification vector.

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
}

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

    /// Forgets the failures of `key` after a success.
    pub fn succeed(&mut self, key: &str) {
        self.entries.remove(key);
    }

    /// Drops entries with nothing left to remember.
    pub fn sweep(&mut self, now: u64) {
        let window = self.policy.window_secs;
        self.entries.retain(|_, e| {
            e.banned_until.is_some_and(|u| u > now)
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
}
