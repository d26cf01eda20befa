//! The second factor and who is asking on the web: TOTP enrollment and checks, recovery codes, login
//! sessions bound to a tunnel address, brute-force regulation, and the forward-auth decision the
//! reverse proxy asks for. WireGuard is the first factor: a request's tunnel source address names the
//! profile, and so the user.

mod forward;
mod service;
mod store;
mod throttle;
mod totp;
mod types;

pub use forward::{DenyReason, ForwardDecision};
pub use service::Auth;
pub use throttle::{Throttle, ThrottlePolicy};
pub use totp::TotpSecret;
pub use types::{AuthConfig, Enrollment, Session, SessionId, TotpStatus, TunnelIdentity};
