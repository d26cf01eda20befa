//! The reverse proxy in front of `home.<suffix>` and the service subdomains: a pure plan from config
//! and certificates, rendered as a Caddyfile, and a small supervisor that runs Caddy (Debian's
//! package) or reloads an existing one through its admin API. Every service site asks Mistborn's
//! `/auth/forward` first; the proxy binds only the tunnel addresses, has a catch-all site that denies,
//! keeps its admin API on a unix socket, and never touches the system trust store.

mod caddy;
mod caddyfile;
mod plan;

pub use caddy::{CADDY_ENV, Caddy};
pub use caddyfile::render_caddyfile;
pub use plan::{NOT_AUTHORIZED, ProxyConfig, ProxyMode, ProxyPlan, ServiceRoute, Site, plan};
