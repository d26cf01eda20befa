//! What every handler shares.

use mistborn_core::Mistborn;
use mistborn_core::firewall::FirewallHandle;

/// The router's state: the open [`Mistborn`] handle (cheap to clone) and handles on the data
/// planes the server runs.
#[derive(Debug, Clone)]
pub struct AppState {
    /// The core.
    pub mistborn: Mistborn,
    /// The running firewall, if this server runs one (`mistborn serve` does; tests may not).
    pub firewall: Option<FirewallHandle>,
}

impl AppState {
    /// State over an open core, with no data plane attached.
    pub fn new(mistborn: Mistborn) -> Self {
        Self {
            mistborn,
            firewall: None,
        }
    }

    /// Attaches the running firewall (metrics and the policy in force come from it).
    pub fn with_firewall(mut self, firewall: FirewallHandle) -> Self {
        self.firewall = Some(firewall);
        self
    }
}

/// Unix seconds now: the core takes time as an argument, the HTTP frontend reads the clock.
pub fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}
