//! What the device holds, and the minimal change from that to the desired state.

use std::collections::HashMap;
use std::net::SocketAddr;

use ipnet::IpNet;

use super::desired::{DesiredInterface, PeerSpec};
use crate::crypto::WgKey;

/// One peer as read from the device.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ObservedPeer {
    /// Preshared key (`None` when unset).
    pub preshared_key: Option<WgKey>,
    /// Allowed IPs, sorted.
    pub allowed_ips: Vec<IpNet>,
    /// Last source address of the device's packets.
    pub endpoint: Option<SocketAddr>,
    /// Unix seconds of the latest handshake.
    pub latest_handshake: Option<i64>,
    /// Bytes received.
    pub rx_bytes: u64,
    /// Bytes sent.
    pub tx_bytes: u64,
}

/// The device as read.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ObservedInterface {
    /// Private key, if set.
    pub private_key: Option<WgKey>,
    /// Listen port, if set.
    pub listen_port: Option<u16>,
    /// Peers by public key.
    pub peers: HashMap<WgKey, ObservedPeer>,
}

/// The change that brings a device to the desired state.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Diff {
    /// New private key.
    pub private_key: Option<WgKey>,
    /// New listen port.
    pub listen_port: Option<u16>,
    /// Peers to add.
    pub add: Vec<PeerSpec>,
    /// Peers whose preshared key or allowed IPs change.
    pub update: Vec<PeerSpec>,
    /// Peers to remove (not in the store).
    pub remove: Vec<WgKey>,
}

impl Diff {
    /// Nothing to do.
    pub fn is_empty(&self) -> bool {
        self.private_key.is_none()
            && self.listen_port.is_none()
            && self.add.is_empty()
            && self.update.is_empty()
            && self.remove.is_empty()
    }

    /// A one-line account, for logs.
    pub fn summary(&self) -> String {
        let mut parts = Vec::new();
        if self.private_key.is_some() {
            parts.push("set private key".to_string());
        }
        if let Some(p) = self.listen_port {
            parts.push(format!("listen port {p}"));
        }
        for (n, what) in [
            (self.add.len(), "add"),
            (self.update.len(), "update"),
            (self.remove.len(), "remove"),
        ] {
            if n > 0 {
                parts.push(format!("{what} {n} peer{}", if n == 1 { "" } else { "s" }));
            }
        }
        if parts.is_empty() {
            "no change".into()
        } else {
            parts.join(", ")
        }
    }
}

fn by_key(a: &PeerSpec, b: &PeerSpec) -> std::cmp::Ordering {
    a.public_key.as_bytes().cmp(b.public_key.as_bytes())
}

fn plan_server(desired: &DesiredInterface, observed: &ObservedInterface) -> Diff {
    let mut diff = Diff::default();
    if observed.private_key.as_ref() != Some(&desired.server.private_key) {
        diff.private_key = Some(desired.server.private_key.clone());
    }
    if observed.listen_port != Some(desired.server.listen_port) {
        diff.listen_port = Some(desired.server.listen_port);
    }
    diff
}

impl Diff {
    /// Adds what peer `key` needs: added, updated, removed or nothing.
    fn plan_peer(&mut self, key: &WgKey, desired: &DesiredInterface, observed: &ObservedInterface) {
        match (desired.peers.get(key), observed.peers.get(key)) {
            (Some(want), None) => self.add.push(want.spec.clone()),
            (Some(want), Some(have)) => {
                if have.preshared_key != want.spec.preshared_key
                    || have.allowed_ips != want.spec.allowed_ips
                {
                    self.update.push(want.spec.clone());
                }
            }
            (None, Some(_)) => self.remove.push(key.clone()),
            (None, None) => {}
        }
    }

    fn sorted(mut self) -> Self {
        self.add.sort_by(by_key);
        self.update.sort_by(by_key);
        self.remove.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
        self
    }
}

/// The minimal change from `observed` to `desired`. Pure: no IO, deterministic order.
pub fn plan(desired: &DesiredInterface, observed: &ObservedInterface) -> Diff {
    let mut diff = plan_server(desired, observed);
    for key in desired.peers.keys() {
        diff.plan_peer(key, desired, observed);
    }
    for key in observed.peers.keys() {
        if !desired.peers.contains_key(key) {
            diff.remove.push(key.clone());
        }
    }
    diff.sorted()
}

/// Like [`plan`], looking only at the peers `keys` (the ones a profile change touched): the cost
/// of one change does not grow with the number of peers. Equal to `plan` whenever the other
/// peers are in sync.
pub fn plan_peers(
    desired: &DesiredInterface,
    observed: &ObservedInterface,
    keys: &[WgKey],
) -> Diff {
    let mut diff = plan_server(desired, observed);
    for key in keys {
        diff.plan_peer(key, desired, observed);
    }
    diff.sorted()
}

impl ObservedInterface {
    /// What the device holds after `diff` was applied (statistics of kept peers stay).
    pub fn apply_diff(&mut self, diff: &Diff) {
        if let Some(k) = &diff.private_key {
            self.private_key = Some(k.clone());
        }
        if let Some(p) = diff.listen_port {
            self.listen_port = Some(p);
        }
        for k in &diff.remove {
            self.peers.remove(k);
        }
        for spec in diff.add.iter().chain(&diff.update) {
            let peer = self.peers.entry(spec.public_key.clone()).or_default();
            peer.preshared_key = spec.preshared_key.clone();
            peer.allowed_ips = spec.allowed_ips.clone();
        }
    }
}
