//! The forward-auth decision: may this tunnel address open this host? Deny by default.

use crate::users::Username;

/// Why a request was denied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DenyReason {
    /// The Host header names no Mistborn site.
    UnknownHost,
    /// The request did not come through the tunnel (or from an unknown address).
    NotTunnel,
    /// The profile needs a second factor and has no live session.
    SignInRequired,
}

/// The answer for the reverse proxy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ForwardDecision {
    /// Let it through, naming the user for the upstream.
    Allow {
        /// The user's name (`Remote-User`).
        username: Username,
        /// The profile's name.
        profile: String,
    },
    /// Refuse.
    Deny(DenyReason),
}
