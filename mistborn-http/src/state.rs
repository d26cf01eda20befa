//! What every handler shares.

use mistborn_core::Mistborn;

/// The router's state: the open [`Mistborn`] handle (cheap to clone).
#[derive(Debug, Clone)]
pub struct AppState {
    /// The core.
    pub mistborn: Mistborn,
}

impl AppState {
    /// State over an open core.
    pub fn new(mistborn: Mistborn) -> Self {
        Self { mistborn }
    }
}

/// Unix seconds now: the core takes time as an argument, the HTTP frontend reads the clock.
pub fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}
