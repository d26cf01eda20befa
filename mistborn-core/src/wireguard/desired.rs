//! The interface as the store wants it: a pure function of the stored profiles.

use std::collections::HashMap;

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

use crate::crypto::WgKey;
use crate::mistborn::Mistborn;
use crate::peers::{Peer, PeerId, SkippedProfile, StoredProfile};

/// The server side of the interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerSide {
    /// Interface name.
    pub interface: String,
    /// The server's private key.
    pub private_key: WgKey,
    /// UDP listen port.
    pub listen_port: u16,
    /// The server's tunnel IPv4 address with the subnet's prefix.
    pub address_v4: Ipv4Net,
    /// The server's tunnel IPv6 address with the subnet's prefix.
    pub address_v6: Ipv6Net,
}

impl ServerSide {
    /// The server side as configured for `m`.
    pub fn of(m: &Mistborn) -> Self {
        let wg = &m.config().wireguard;
        let pool = m.address_pool();
        let (v4, v6) = pool.server_addresses();
        Self {
            interface: wg.interface.clone(),
            private_key: m.server_keys().private.clone(),
            listen_port: wg.listen_port,
            // The prefix lengths come from validated subnets, so these cannot fail.
            address_v4: Ipv4Net::new(v4, pool.v4().prefix_len()).unwrap_or(pool.v4()),
            address_v6: Ipv6Net::new(v6, pool.v6().prefix_len()).unwrap_or(pool.v6()),
        }
    }
}

/// What one peer entry on the interface holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerSpec {
    /// The device's public key.
    pub public_key: WgKey,
    /// The profile's preshared key.
    pub preshared_key: Option<WgKey>,
    /// The device's tunnel addresses (/32 and /128), sorted.
    pub allowed_ips: Vec<IpNet>,
}

/// A stored profile as a peer.
#[derive(Debug, Clone)]
pub struct DesiredPeer {
    /// The profile it comes from (for status).
    pub profile: Peer,
    /// The peer entry.
    pub spec: PeerSpec,
}

/// The whole interface as the store wants it.
#[derive(Debug, Clone)]
pub struct DesiredInterface {
    /// Key, port, addresses.
    pub server: ServerSide,
    /// Peers by public key.
    pub peers: HashMap<WgKey, DesiredPeer>,
    /// Stored profiles left off the interface, and why.
    pub skipped: Vec<SkippedProfile>,
}

impl DesiredInterface {
    /// The profiles in display order (owner, then name).
    pub fn profiles_sorted(&self) -> Vec<&DesiredPeer> {
        let mut v: Vec<_> = self.peers.values().collect();
        v.sort_by(|a, b| display_key(a).cmp(&display_key(b)));
        v
    }
}

fn display_key(p: &DesiredPeer) -> (&str, &str) {
    (p.profile.username.as_str(), p.profile.name.as_str())
}

/// The peers of a desired interface in display order, kept up to date one change at a time so
/// publishing the status after a change does not sort every profile again (at 10k profiles the
/// sort is most of the publish).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DisplayOrder(Vec<WgKey>);

impl DisplayOrder {
    /// The order of every peer of `d`.
    pub fn of(d: &DesiredInterface) -> Self {
        Self(
            d.profiles_sorted()
                .into_iter()
                .map(|p| p.spec.public_key.clone())
                .collect(),
        )
    }

    /// Re-places the peers `keys` (as returned by [`DesiredInterface::replace_profile`]) after
    /// `d` changed.
    pub fn update(&mut self, d: &DesiredInterface, keys: &[WgKey]) {
        self.0.retain(|k| !keys.contains(k));
        for k in keys {
            let Some(p) = d.peers.get(k) else {
                continue;
            };
            let key = display_key(p);
            let at = self
                .0
                .partition_point(|x| d.peers.get(x).is_none_or(|other| display_key(other) < key));
            self.0.insert(at, k.clone());
        }
    }

    /// The peers of `d` in this order.
    pub fn peers<'a>(&'a self, d: &'a DesiredInterface) -> impl Iterator<Item = &'a DesiredPeer> {
        self.0.iter().filter_map(|k| d.peers.get(k))
    }
}

/// Why a profile whose key profile `other` already uses is skipped.
fn duplicate_of(other: &PeerId) -> String {
    format!("its public key is also used by profile {other}")
}

/// The desired interface for `server` and the stored profiles (as read by the store: rows that
/// could not be read arrive as [`SkippedProfile`]s and stay reported).
pub fn desired(
    server: ServerSide,
    stored: Vec<Result<StoredProfile, SkippedProfile>>,
) -> DesiredInterface {
    let mut d = DesiredInterface {
        server,
        peers: HashMap::with_capacity(stored.len()),
        skipped: Vec::new(),
    };
    let server_public = d.server.private_key.public();
    for s in stored {
        d.insert(&server_public, s);
    }
    d
}

impl DesiredInterface {
    /// Adds one stored profile under the interface's rules: a profile with the server's own key,
    /// or with a key another profile already uses, is skipped with the reason.
    fn insert(&mut self, server_public: &WgKey, stored: Result<StoredProfile, SkippedProfile>) {
        let s = match stored {
            Ok(s) => s,
            Err(e) => return self.skipped.push(e),
        };
        let p = &s.peer;
        let skip = |reason: String| SkippedProfile {
            id: p.id.to_string(),
            user_id: Some(p.user_id.clone()),
            reason,
        };
        if p.public_key == *server_public {
            return self
                .skipped
                .push(skip("its public key is the server's own key".into()));
        }
        if let Some(other) = self.peers.get(&p.public_key) {
            return self.skipped.push(skip(duplicate_of(&other.profile.id)));
        }
        let mut allowed_ips = vec![
            IpNet::V4(Ipv4Net::from(p.address_v4)),
            IpNet::V6(Ipv6Net::from(p.address_v6)),
        ];
        allowed_ips.sort();
        self.peers.insert(
            p.public_key.clone(),
            DesiredPeer {
                spec: PeerSpec {
                    public_key: p.public_key.clone(),
                    preshared_key: s.preshared_key.clone(),
                    allowed_ips,
                },
                profile: s.peer,
            },
        );
    }

    /// Replaces what the store says about profile `id` (`None`: it is gone) and returns the peer
    /// keys whose entry may have changed, for [`plan_peers`](super::plan_peers). Returns `None`
    /// when one profile's change can affect others (a key it freed may unblock a skipped
    /// duplicate): then reload everything.
    pub fn replace_profile(
        &mut self,
        id: &PeerId,
        stored: Option<Result<StoredProfile, SkippedProfile>>,
    ) -> Option<Vec<WgKey>> {
        self.skipped.retain(|s| s.id != id.as_str());
        let old = self
            .peers
            .iter()
            .find(|(_, d)| d.profile.id == *id)
            .map(|(k, _)| k.clone());
        let mut touched = Vec::with_capacity(2);
        if let Some(k) = old {
            self.peers.remove(&k);
            touched.push(k);
        }
        if let Some(s) = stored {
            let server_public = self.server.private_key.public();
            let key = s.as_ref().ok().map(|s| s.peer.public_key.clone());
            self.insert(&server_public, s);
            if let Some(k) = key.filter(|k| !touched.contains(k)) {
                touched.push(k);
            }
        }
        // A profile skipped as a duplicate of this one may take the key it held.
        let blocked = duplicate_of(id);
        if self.skipped.iter().any(|s| s.reason == blocked) {
            return None;
        }
        Some(touched)
    }
}
