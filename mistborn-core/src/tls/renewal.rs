//! When to renew: a pure decision on the certificate's expiry and the time now.

/// Lifetime of a service certificate. Browsers refuse leaf certificates valid for longer than 398
/// days; one day less leaves room for clock skew.
pub const LEAF_VALIDITY_DAYS: i64 = 397;
/// Renew once fewer than this many days remain.
pub const RENEW_BEFORE_DAYS: i64 = 30;

/// Whether a certificate that expires at `not_after` (Unix seconds) must be renewed at `now`.
pub fn needs_renewal(not_after: i64, now: i64) -> bool {
    not_after - now < RENEW_BEFORE_DAYS * 86_400
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renews_inside_the_last_thirty_days() {
        let now = 1_800_000_000;
        let day = 86_400;
        assert!(!needs_renewal(now + 31 * day, now), "31 days left: keep");
        assert!(
            !needs_renewal(now + 30 * day, now),
            "exactly 30 days left: keep"
        );
        assert!(needs_renewal(now + 29 * day, now), "29 days left: renew");
        assert!(needs_renewal(now - 1, now), "expired: renew");
        assert!(!needs_renewal(now + LEAF_VALIDITY_DAYS * day, now), "fresh");
    }
}
