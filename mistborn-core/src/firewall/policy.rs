//! The policy: a pure function from configuration and stored state to the desired firewall.
//!
//! Per-device state (which addresses wait for their MFA login, which may talk to other clients)
//! sits in plain address sets, so a login or a profile edit changes one element; everything
//! else (ports, interfaces, Coppercloud lists) is the table's [`Structure`], which only a full,
//! atomic replace changes.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use serde::Serialize;

use super::coppercloud::{ListMode, ParsedList};
use crate::peers::{ListenPort, PeerKind};

/// The nftables table Mistborn owns (family `inet`). Nothing else is ever touched.
pub const TABLE: &str = "mistborn";
/// DNS ports the resolver serves and the egress lock covers (plain and DNS over TLS).
pub const DNS_PORTS: [u16; 2] = [53, 853];

/// One profile as the firewall sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProfileRule {
    /// Tunnel IPv4 address.
    pub address_v4: Ipv4Addr,
    /// Tunnel IPv6 address.
    pub address_v6: Ipv6Addr,
    /// WireGuard-only or MFA-gated.
    pub kind: PeerKind,
    /// May talk to other clients.
    pub client_to_client: bool,
    /// The UDP port its device dials.
    pub listen_port: ListenPort,
}

impl From<&crate::peers::Peer> for ProfileRule {
    fn from(p: &crate::peers::Peer) -> Self {
        Self {
            address_v4: p.address_v4,
            address_v6: p.address_v6,
            kind: p.kind,
            client_to_client: p.client_to_client,
            listen_port: p.listen_port,
        }
    }
}

/// One Coppercloud list as the firewall sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListRule {
    /// The list's id (letters and digits: it names the nft sets and counter).
    pub id: String,
    /// Block or allow.
    pub mode: ListMode,
    /// Its merged intervals.
    pub parsed: Arc<ParsedList>,
}

/// Everything the policy depends on.
#[derive(Debug, Clone, PartialEq)]
pub struct PolicyInput {
    /// The WireGuard interface (the tunnel).
    pub tunnel_interface: String,
    /// The WireGuard UDP port.
    pub wireguard_port: u16,
    /// Tunnel subnets.
    pub subnet_v4: Ipv4Net,
    /// Tunnel subnet (IPv6).
    pub subnet_v6: Ipv6Net,
    /// The interface of the default route (or the configured one); `None` when there is none.
    pub external_interface: Option<String>,
    /// SSH allowed from here too.
    pub admin_source: Option<IpNet>,
    /// SSH port.
    pub ssh_port: u16,
    /// Where the alternate ports are redirected (empty: every interface but the tunnel,
    /// loopback and container bridges).
    pub redirect_interfaces: Vec<String>,
    /// Web ports of Mistborn itself.
    pub web_ports: Vec<u16>,
    /// Container bridge name patterns.
    pub container_bridges: Vec<String>,
    /// The resolver's uid, for the host's DNS egress lock.
    pub resolver_uid: Option<u32>,
    /// Every profile.
    pub profiles: Vec<ProfileRule>,
    /// Tunnel addresses with a live MFA session.
    pub open_addresses: BTreeSet<IpAddr>,
    /// Enabled Coppercloud lists.
    pub lists: Vec<ListRule>,
}

/// One Coppercloud list's sets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListSets {
    /// List id (names `cc_<id>_4`, `cc_<id>_6` and the counter `cc_<id>`).
    pub id: String,
    /// Block or allow.
    pub mode: ListMode,
    /// Its merged intervals (shared, lists can be large).
    pub parsed: Arc<ParsedList>,
}

/// The part of the table only a full replace changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Structure {
    /// Tunnel interface.
    pub tunnel_interface: String,
    /// WireGuard port.
    pub wireguard_port: u16,
    /// Tunnel subnet v4.
    pub subnet_v4: Ipv4Net,
    /// Tunnel subnet v6.
    pub subnet_v6: Ipv6Net,
    /// External interface, when known.
    pub external_interface: Option<String>,
    /// Admin source for SSH.
    pub admin_source: Option<IpNet>,
    /// SSH port.
    pub ssh_port: u16,
    /// Web ports.
    pub web_ports: Vec<u16>,
    /// Container bridges.
    pub container_bridges: Vec<String>,
    /// Resolver uid.
    pub resolver_uid: Option<u32>,
    /// Alternate UDP ports redirected to the WireGuard port.
    pub redirect_ports: BTreeSet<u16>,
    /// Where they are redirected (empty: every interface but the tunnel, loopback and
    /// container bridges).
    pub redirect_interfaces: Vec<String>,
    /// Coppercloud lists: allow lists first, then block lists, each by id.
    pub lists: Vec<ListSets>,
}

/// The address sets holding per-device state (each has a v4 and a v6 nft set).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AddressSet {
    /// MFA profiles without a live session: they reach only Mistborn's web and DNS.
    MfaPending,
    /// Profiles allowed to talk to other clients.
    ClientToClient,
}

impl AddressSet {
    /// The nft set name for one family.
    pub fn set_name(self, v6: bool) -> &'static str {
        match (self, v6) {
            (AddressSet::MfaPending, false) => "mfa_pending4",
            (AddressSet::MfaPending, true) => "mfa_pending6",
            (AddressSet::ClientToClient, false) => "c2c4",
            (AddressSet::ClientToClient, true) => "c2c6",
        }
    }
}

/// The desired firewall.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// What a full replace sets.
    pub structure: Structure,
    /// Addresses waiting for an MFA login.
    pub mfa_pending: BTreeSet<IpAddr>,
    /// Addresses allowed client-to-client.
    pub client_to_client: BTreeSet<IpAddr>,
}

impl Policy {
    /// The addresses of one set.
    pub fn set(&self, s: AddressSet) -> &BTreeSet<IpAddr> {
        match s {
            AddressSet::MfaPending => &self.mfa_pending,
            AddressSet::ClientToClient => &self.client_to_client,
        }
    }

    /// Mutable access to one set (the reconciler keeps its cached copy in step).
    pub fn set_mut(&mut self, s: AddressSet) -> &mut BTreeSet<IpAddr> {
        match s {
            AddressSet::MfaPending => &mut self.mfa_pending,
            AddressSet::ClientToClient => &mut self.client_to_client,
        }
    }
}

/// Works out the policy. Pure: same input, same policy.
pub fn policy(input: &PolicyInput) -> Policy {
    let mut mfa_pending = BTreeSet::new();
    let mut client_to_client = BTreeSet::new();
    let mut redirect_ports = BTreeSet::new();
    for p in &input.profiles {
        let addrs = [IpAddr::V4(p.address_v4), IpAddr::V6(p.address_v6)];
        if p.kind == PeerKind::Mfa {
            mfa_pending.extend(
                addrs
                    .iter()
                    .filter(|a| !input.open_addresses.contains(a))
                    .copied(),
            );
        }
        if p.client_to_client {
            client_to_client.extend(addrs);
        }
        let port = p.listen_port.port(input.wireguard_port);
        if port != input.wireguard_port {
            redirect_ports.insert(port);
        }
    }
    let mut lists: Vec<ListSets> = input
        .lists
        .iter()
        .map(|l| ListSets {
            id: l.id.clone(),
            mode: l.mode,
            parsed: l.parsed.clone(),
        })
        .collect();
    // Allow lists are evaluated first (they exempt from block lists); stable order by id.
    lists.sort_by(|a, b| {
        (a.mode != ListMode::Allow, &a.id).cmp(&(b.mode != ListMode::Allow, &b.id))
    });
    let mut web_ports = input.web_ports.clone();
    web_ports.sort_unstable();
    web_ports.dedup();
    Policy {
        structure: Structure {
            tunnel_interface: input.tunnel_interface.clone(),
            wireguard_port: input.wireguard_port,
            subnet_v4: input.subnet_v4.trunc(),
            subnet_v6: input.subnet_v6.trunc(),
            external_interface: input.external_interface.clone(),
            admin_source: input.admin_source.map(|n| n.trunc()),
            ssh_port: input.ssh_port,
            web_ports,
            container_bridges: input.container_bridges.clone(),
            resolver_uid: input.resolver_uid,
            redirect_ports,
            redirect_interfaces: input.redirect_interfaces.clone(),
            lists,
        },
        mfa_pending,
        client_to_client,
    }
}
