//! Probe and hit metrics read back from the live table: unsolicited packets per source,
//! protocol and destination port (the dynamic sets `probes4`/`probes6`) and each Coppercloud
//! list's hit counter. [`read_metrics`] reads them over netlink where the table lives.

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use super::netlink;
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
    /// Packets counted.
    pub packets: u64,
    /// Distinct sources.
    pub sources: u64,
}

/// Packets from one source, over all ports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceCount {
    /// Source address.
    pub source: IpAddr,
    /// Packets counted.
    pub packets: u64,
    /// Distinct ports probed.
    pub ports: u64,
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

/// What the firewall counted since the table was last replaced.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Metrics {
    /// Most probed ports, most packets first.
    pub top_ports: Vec<PortCount>,
    /// Most active sources, most packets first.
    pub top_sources: Vec<SourceCount>,
    /// Every (source, port) pair, most packets first.
    pub probes: Vec<Probe>,
    /// Coppercloud hits per list.
    pub lists: Vec<ListHits>,
}

/// Reads the live counters of `inet mistborn` in the calling thread's network namespace (the
/// reconciler's worker thread, or a CLI run as root beside the daemon); top `n` ports and sources.
/// Over netlink dumps: `nft list counters` first loads every set element of the table (seconds
/// with a 100k-CIDR list) and `nft -j list set` of a full probe set takes seconds too.
pub(crate) fn read_metrics(n: usize) -> Result<Metrics> {
    let mut probes = Vec::new();
    for (set, v6) in [("probes4", false), ("probes6", true)] {
        probes.extend(netlink::read_probes(set, v6)?.into_iter().map(|p| Probe {
            source: p.source,
            protocol: match p.protocol {
                6 => "tcp".into(),
                17 => "udp".into(),
                other => other.to_string(),
            },
            port: p.port,
            packets: p.packets,
        }));
    }
    let mut lists: Vec<ListHits> = netlink::read_counters()?
        .into_iter()
        .filter_map(|c| {
            Some(ListHits {
                id: c.name.strip_prefix("cc_")?.to_string(),
                packets: c.packets,
                bytes: c.bytes,
            })
        })
        .collect();
    lists.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(summarize(probes, lists, n))
}

/// Aggregates probes into the top-`n` ports and sources.
pub fn summarize(mut probes: Vec<Probe>, lists: Vec<ListHits>, n: usize) -> Metrics {
    probes.sort_by(|a, b| {
        b.packets
            .cmp(&a.packets)
            .then(a.source.cmp(&b.source))
            .then(a.port.cmp(&b.port))
    });
    let mut ports: BTreeMap<(String, u16), (u64, u64)> = BTreeMap::new();
    let mut sources: BTreeMap<IpAddr, (u64, u64)> = BTreeMap::new();
    for p in &probes {
        let e = ports.entry((p.protocol.clone(), p.port)).or_default();
        e.0 += p.packets;
        e.1 += 1;
        let s = sources.entry(p.source).or_default();
        s.0 += p.packets;
        s.1 += 1;
    }
    let mut top_ports: Vec<PortCount> = ports
        .into_iter()
        .map(|((protocol, port), (packets, sources))| PortCount {
            protocol,
            port,
            packets,
            sources,
        })
        .collect();
    top_ports.sort_by(|a, b| b.packets.cmp(&a.packets).then(a.port.cmp(&b.port)));
    top_ports.truncate(n);
    let mut top_sources: Vec<SourceCount> = sources
        .into_iter()
        .map(|(source, (packets, ports))| SourceCount {
            source,
            packets,
            ports,
        })
        .collect();
    top_sources.sort_by(|a, b| b.packets.cmp(&a.packets).then(a.source.cmp(&b.source)));
    top_sources.truncate(n);
    Metrics {
        top_ports,
        top_sources,
        probes,
        lists,
    }
}
