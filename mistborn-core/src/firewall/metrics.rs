//! Probe and hit metrics read back from the live table (see [`ruleset`](super::ruleset) for the
//! sets and counters): every unsolicited packet in total and per port (exact, whatever the
//! scan), per source network, per source and per (source, port) as far as those bounded sets
//! keep them, what they could not keep, and each Coppercloud list's hit counter.
//! [`read_metrics`] reads them over netlink where the table lives.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use super::netlink::{self, key_addr, key_proto_port};
use super::ruleset::{Carry, Counted};
use crate::error::Result;

/// Unsolicited packets from one source to one port.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Probe {
    /// Source address.
    pub source: IpAddr,
    /// `tcp` or `udp`.
    pub protocol: String,
    /// Destination port.
    pub port: u16,
    /// Packets counted.
    pub packets: u64,
}

/// Packets to one port, over all sources.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortCount {
    /// `tcp` or `udp`.
    pub protocol: String,
    /// Destination port.
    pub port: u16,
    /// Packets counted (all of them: the per-port set cannot fill).
    pub packets: u64,
    /// Distinct sources among the (source, port) pairs kept.
    pub sources: u64,
}

/// Packets from one source, over all ports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceCount {
    /// Source address.
    pub source: IpAddr,
    /// Packets counted.
    pub packets: u64,
    /// Distinct ports among the (source, port) pairs kept.
    pub ports: u64,
}

/// Packets from one source network (/24 for IPv4, /48 for IPv6).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkCount {
    /// The network.
    pub network: IpNet,
    /// Packets counted.
    pub packets: u64,
}

/// Probe packets a full set could not keep (counted in the total and per port all the same).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unkept {
    /// Not counted per source network.
    pub networks: u64,
    /// Not counted per source.
    pub sources: u64,
    /// Not counted per (source, port).
    pub probes: u64,
}

/// Hits of one Coppercloud list since the table was last replaced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListHits {
    /// List id.
    pub id: String,
    /// Packets that matched.
    pub packets: u64,
    /// Bytes that matched.
    pub bytes: u64,
}

/// What the firewall counted since the table was last replaced (counts carried over a replace).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Metrics {
    /// Every unsolicited packet.
    pub total: u64,
    /// What the bounded per-source sets could not keep.
    pub unkept: Unkept,
    /// Most probed ports, most packets first.
    pub top_ports: Vec<PortCount>,
    /// Most active source networks, most packets first.
    pub top_networks: Vec<NetworkCount>,
    /// Most active sources, most packets first.
    pub top_sources: Vec<SourceCount>,
    /// The busiest (source, port) pairs, most packets first.
    pub probes: Vec<Probe>,
    /// Coppercloud hits per list.
    pub lists: Vec<ListHits>,
}

/// The aggregate probe sets of the live table.
pub(crate) struct Aggregates {
    pub ports: Vec<Counted<(u8, u16)>>,
    pub sources: Vec<Counted<IpAddr>>,
    pub networks: Vec<Counted<IpAddr>>,
}

/// Reads `probe_ports`, `probe_sources4/6` and `probe_nets4/6` over netlink.
pub(crate) fn read_aggregates() -> Result<Aggregates> {
    let counted = |e: &netlink::CountedKey| (e.packets, e.bytes);
    let mut out = Aggregates {
        ports: netlink::read_counted("probe_ports")?
            .iter()
            .filter_map(|e| {
                let (packets, bytes) = counted(e);
                Some(Counted {
                    key: key_proto_port(&e.key, 0)?,
                    packets,
                    bytes,
                })
            })
            .collect(),
        sources: Vec::new(),
        networks: Vec::new(),
    };
    for (v6, fam) in [(false, 4), (true, 6)] {
        for (set, into) in [
            ("probe_sources", &mut out.sources),
            ("probe_nets", &mut out.networks),
        ] {
            into.extend(
                netlink::read_counted(&format!("{set}{fam}"))?
                    .iter()
                    .filter_map(|e| {
                        let (packets, bytes) = counted(e);
                        Some(Counted {
                            key: key_addr(&e.key, v6)?,
                            packets,
                            bytes,
                        })
                    }),
            );
        }
    }
    Ok(out)
}

/// Reads the live counters of `inet mistborn` in the calling thread's network namespace (the
/// reconciler's worker thread, or a CLI run as root beside the daemon); top `n` of each list.
/// Over netlink dumps: `nft list counters` first loads every set element of the table (seconds
/// with a 100k-CIDR list) and `nft -j list set` of a full probe set takes seconds too.
pub(crate) fn read_metrics(n: usize) -> Result<Metrics> {
    Ok(summarize(&super::nft::read_carry()?, n))
}

fn protocol_name(p: u8) -> String {
    match p {
        6 => "tcp".into(),
        17 => "udp".into(),
        other => other.to_string(),
    }
}

/// The metrics in `c` (the table's counters as read), top `n` of each list.
pub fn summarize(c: &Carry, n: usize) -> Metrics {
    let counter = |name: &str| c.counters.get(name).map_or(0, |v| v.0);
    // Distinct sources per port and ports per source, among the pairs kept.
    let mut port_sources: BTreeMap<(u8, u16), BTreeSet<IpAddr>> = BTreeMap::new();
    let mut source_ports: BTreeMap<IpAddr, u64> = BTreeMap::new();
    for p in &c.probes {
        if port_sources
            .entry((p.protocol, p.port))
            .or_default()
            .insert(p.source)
        {
            *source_ports.entry(p.source).or_default() += 1;
        }
    }
    let mut probes: Vec<Probe> = c
        .probes
        .iter()
        .map(|p| Probe {
            source: p.source,
            protocol: protocol_name(p.protocol),
            port: p.port,
            packets: p.packets,
        })
        .collect();
    probes.sort_by(|a, b| {
        b.packets
            .cmp(&a.packets)
            .then(a.source.cmp(&b.source))
            .then(a.port.cmp(&b.port))
    });
    probes.truncate(n);
    let mut top_ports: Vec<PortCount> = c
        .ports
        .iter()
        .map(|p| PortCount {
            protocol: protocol_name(p.key.0),
            port: p.key.1,
            packets: p.packets,
            sources: port_sources.get(&p.key).map_or(0, |s| s.len() as u64),
        })
        .collect();
    top_ports.sort_by(|a, b| {
        b.packets
            .cmp(&a.packets)
            .then(a.port.cmp(&b.port))
            .then(a.protocol.cmp(&b.protocol))
    });
    top_ports.truncate(n);
    let mut top_sources: Vec<SourceCount> = c
        .sources
        .iter()
        .map(|s| SourceCount {
            source: s.key,
            packets: s.packets,
            ports: source_ports.get(&s.key).copied().unwrap_or(0),
        })
        .collect();
    top_sources.sort_by(|a, b| b.packets.cmp(&a.packets).then(a.source.cmp(&b.source)));
    top_sources.truncate(n);
    let mut top_networks: Vec<NetworkCount> = c
        .networks
        .iter()
        .filter_map(|s| {
            let prefix = if s.key.is_ipv6() { 48 } else { 24 };
            Some(NetworkCount {
                network: IpNet::new(s.key, prefix).ok()?.trunc(),
                packets: s.packets,
            })
        })
        .collect();
    top_networks.sort_by(|a, b| b.packets.cmp(&a.packets).then(a.network.cmp(&b.network)));
    top_networks.truncate(n);
    let lists = c
        .counters
        .iter()
        .filter_map(|(name, (packets, bytes))| {
            Some(ListHits {
                id: name.strip_prefix("cc_")?.to_string(),
                packets: *packets,
                bytes: *bytes,
            })
        })
        .collect();
    Metrics {
        total: counter("probes"),
        unkept: Unkept {
            networks: counter("probes_unkept_networks"),
            sources: counter("probes_unkept_sources"),
            probes: counter("probes_unkept_pairs"),
        },
        top_ports,
        top_networks,
        top_sources,
        probes,
        lists,
    }
}
