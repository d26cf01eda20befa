//! Status value types (serializable for the REST and WebSocket frontends).

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};

use serde::Serialize;

use crate::actor::Actor;
use crate::crypto::WgKey;
use crate::peers::{PeerId, ProfileName, SkippedProfile};
use crate::users::{UserId, Username};

/// A peer counts as connected while its latest handshake is younger than this (WireGuard's
/// REJECT_AFTER_TIME: after 180 s without a new handshake the session is dead).
pub const CONNECTED_WITHIN_SECS: i64 = 180;

/// Which implementation carries the tunnel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ActiveBackend {
    /// The Linux kernel module (netlink).
    Kernel,
    /// A userspace implementation (wireguard-go) over its UAPI socket.
    Userspace,
    /// An in-memory backend (tests only).
    Memory,
}

impl ActiveBackend {
    /// The printed name.
    pub fn as_str(self) -> &'static str {
        match self {
            ActiveBackend::Kernel => "kernel",
            ActiveBackend::Userspace => "userspace",
            ActiveBackend::Memory => "memory",
        }
    }
}

/// Whether the data plane is on, and if not, why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DataPlaneStatus {
    /// The interface carries the stored profiles.
    pub on: bool,
    /// The backend in use when on.
    pub backend: Option<ActiveBackend>,
    /// The server interface name.
    pub interface: String,
    /// The UDP port it listens on.
    pub listen_port: u16,
    /// Why it is off (no root, no module, no wireguard-go, backend none, not started...).
    pub reason: Option<String>,
    /// Stored profiles that could not be put on the interface, and why.
    pub skipped: Vec<SkippedProfile>,
}

impl DataPlaneStatus {
    /// An off data plane with its reason.
    pub fn off(interface: &str, listen_port: u16, reason: impl Into<String>) -> Self {
        Self {
            on: false,
            backend: None,
            interface: interface.to_string(),
            listen_port,
            reason: Some(reason.into()),
            skipped: Vec::new(),
        }
    }
}

/// One profile's tunnel state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PeerStatus {
    /// The profile.
    pub peer_id: PeerId,
    /// Its owner.
    pub user_id: UserId,
    /// Its owner's name.
    pub username: Username,
    /// The profile's name.
    pub name: ProfileName,
    /// Tunnel IPv4 address.
    pub address_v4: Ipv4Addr,
    /// Tunnel IPv6 address.
    pub address_v6: Ipv6Addr,
    /// The device's public key.
    pub public_key: WgKey,
    /// Where the device's packets last came from.
    pub endpoint: Option<SocketAddr>,
    /// Unix seconds of the latest handshake; `None` if never.
    pub latest_handshake: Option<i64>,
    /// Bytes received from the device.
    pub rx_bytes: u64,
    /// Bytes sent to the device.
    pub tx_bytes: u64,
    /// Whether the latest handshake is recent enough for a live session.
    pub connected: bool,
}

/// Everything a status viewer sees at one moment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StatusSnapshot {
    /// The data plane.
    pub dataplane: DataPlaneStatus,
    /// Profiles with their statistics (the ones the viewer may see).
    pub peers: Vec<PeerStatus>,
    /// When the statistics were read, Unix seconds.
    pub updated_at: i64,
}

impl StatusSnapshot {
    /// The part of the snapshot `actor` may see: others' profiles and their skip reports are
    /// left out for regular users.
    pub fn visible_to(&self, actor: &Actor) -> StatusSnapshot {
        if actor.is_superuser() {
            return self.clone();
        }
        let mut dataplane = self.dataplane.clone();
        dataplane
            .skipped
            .retain(|s| s.user_id.as_ref().is_some_and(|u| actor.may_access(u)));
        StatusSnapshot {
            dataplane,
            peers: self
                .peers
                .iter()
                .filter(|p| actor.may_access(&p.user_id))
                .cloned()
                .collect(),
            updated_at: self.updated_at,
        }
    }

    /// Equal apart from the read time: a viewer is only woken for real changes.
    pub fn same_content(&self, other: &StatusSnapshot) -> bool {
        self.dataplane == other.dataplane && self.peers == other.peers
    }
}
