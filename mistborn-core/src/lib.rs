//! # mistborn-core
//!
//! Every rule of Mistborn, the self-hosted private-cloud gateway. Open a [`Mistborn`] from a
//! [`Config`] and use its per-domain APIs; every call takes an [`Actor`] and authorization is decided
//! here, so the HTTP server, the Python module and the mobile bindings stay thin.
//!
//! ```no_run
//! # async fn demo() -> mistborn_core::Result<()> {
//! use mistborn_core::{Actor, Config, Mistborn, peers::NewPeer};
//! let m = Mistborn::open(Config::default()).await?;
//! let peer = m.peers().create(&Actor::System, NewPeer {
//!     user: Some("admin".into()), name: "laptop".into(), ..Default::default()
//! }).await?;
//! println!("{}", m.peers().client_config(&Actor::System, peer.id.as_str()).await?.render());
//! # Ok(()) }
//! ```
#![warn(missing_docs)]

pub mod actor;
pub mod auth;
pub mod config;
pub mod crypto;
pub mod daemon;
pub mod dns;
pub mod download;
pub mod error;
pub mod firewall;
mod mistborn;
pub mod peers;
pub mod proxy;
pub mod status;
pub mod store;
pub mod tls;
pub mod users;
pub mod wireguard;

pub use actor::Actor;
pub use config::Config;
pub use error::{Error, ErrorKind, Result};
pub use mistborn::{
    ADMIN_USERNAME, Change, DEFAULT_PROFILE, FirstStart, Mistborn, PeerChange, files,
};
