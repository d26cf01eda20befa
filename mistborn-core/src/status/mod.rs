//! Live status: the data plane's state and every profile's tunnel statistics (latest handshake,
//! transfer, endpoint), published as snapshots on a watch channel. Viewers read it through
//! [`StatusHub::current`] and [`StatusHub::subscribe`], which filter by [`Actor`]: a superuser sees
//! every profile, a regular user only their own.

mod hub;
mod types;

pub use hub::{StatusHub, StatusStream};
pub use types::{
    ActiveBackend, CONNECTED_WITHIN_SECS, DataPlaneStatus, PeerStatus, StatusSnapshot,
};

#[cfg(test)]
mod tests;
