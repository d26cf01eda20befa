//! The interface as the store wants it: a pure function of the stored profiles.

use std::collections::HashMap;

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

use crate::crypto::WgKey;
use crate::mistborn::Mistborn;
use crate::peers::{Peer, SkippedProfile, StoredProfile};

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
        v.sort_by(|a, b| {
            (a.profile.username.as_str(), a.profile.name.as_str())
                .cmp(&(b.profile.username.as_str(), b.profile.name.as_str()))
        });
        v
    }
}

/// The desired interface for `server` and the stored profiles (as read by the store: rows that
/// could not be read arrive as [`SkippedProfile`]s and stay reported).
pub fn desired(
    server: ServerSide,
    stored: Vec<Result<StoredProfile, SkippedProfile>>,
) -> DesiredInterface {
    let server_public = server.private_key.public();
    let mut peers: HashMap<WgKey, DesiredPeer> = HashMap::with_capacity(stored.len());
    let mut skipped = Vec::new();
    let skip = |p: &Peer, reason: String| SkippedProfile {
        id: p.id.to_string(),
        user_id: Some(p.user_id.clone()),
        reason,
    };
    for s in stored {
        let s = match s {
            Ok(s) => s,
            Err(e) => {
                skipped.push(e);
                continue;
            }
        };
        let p = &s.peer;
        if p.public_key == server_public {
            skipped.push(skip(p, "its public key is the server's own key".into()));
            continue;
        }
        if let Some(other) = peers.get(&p.public_key) {
            let reason = format!(
                "its public key is also used by profile {}",
                other.profile.id
            );
            skipped.push(skip(p, reason));
            continue;
        }
        let mut allowed_ips = vec![
            IpNet::V4(Ipv4Net::from(p.address_v4)),
            IpNet::V6(Ipv6Net::from(p.address_v6)),
        ];
        allowed_ips.sort();
        peers.insert(
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
    DesiredInterface {
        server,
        peers,
        skipped,
    }
}
