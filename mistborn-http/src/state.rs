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
