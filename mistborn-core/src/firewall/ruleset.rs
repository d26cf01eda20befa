//! Renders a [`Policy`] as one nft script that replaces the `inet mistborn` table in a single
//! transaction: `table` (create if absent), `delete table`, then the full table. `nft -f` runs a
//! file as one transaction, so a script that fails anywhere leaves the previous table in force.
//! Text rather than JSON: measured faster to load for 100k-element interval sets.
//!
//! Replacing the table recreates its counters. So that a replace (a new Coppercloud list, a
//! restart) does not reset the probe and hit metrics, the values read just before it ride along
//! in the script as [`Carry`]: `counter cc_x { packets N bytes M }` and probe elements with
//! `counter packets N bytes M` (the [`MAX_CARRIED_PROBES`] most counted per family). Packets
//! counted between that read and the commit, and the least counted probes of a fuller set,
//! start again from zero; metrics history, stored as deltas, covers those.
//!
//! Unsolicited packets are counted so that no scan can blind the metrics: a named counter of
//! them all (`probes`), a set per protocol and port (`probe_ports`, sized for every possible
//! key, so it cannot fill), and sets per source network (/24, /48), per source address and per
//! (source, protocol, port). Those three expire idle elements ([`PROBE_TIMEOUT`], `update`
//! refreshes it on every hit) and are bounded ([`PROBE_SET_SIZE`]); what a full one could not
//! keep is counted in `probes_unkept_networks`, `probes_unkept_sources` and
//! `probes_unkept_pairs` (a dynset that cannot add breaks its rule, so the next rule counts).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::net::IpAddr;

use super::coppercloud::ListMode;
use super::policy::{AddressSet, DNS_PORTS, Policy, Structure, TABLE};

/// Size of the dynamic sets that count unsolicited packets per source network, per source and
/// per (source, protocol, port).
pub const PROBE_SET_SIZE: u32 = 65_535;
/// Size of `probe_ports`: every (tcp or udp, port) pair fits.
pub const PROBE_PORT_SET_SIZE: u32 = 2 * 65_536;
/// How long an element of a per-source set stays without a hit (longer than the metrics
/// sampling interval, so its counts are in the history before it goes).
pub const PROBE_TIMEOUT: &str = "10m";
/// The named counters of the probe chains: all probes, then what each full set could not keep.
pub const PROBE_COUNTERS: [&str; 4] = [
    "probes",
    "probes_unkept_networks",
    "probes_unkept_sources",
    "probes_unkept_pairs",
];
/// Probe elements (per family) a full replace carries over, the most counted first.
pub const MAX_CARRIED_PROBES: usize = 4096;

fn port_list(ports: &[u16]) -> String {
    match ports {
        [p] => p.to_string(),
        _ => format!(
            "{{ {} }}",
            ports
                .iter()
                .map(u16::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

fn elements(addrs: &BTreeSet<IpAddr>, v6: bool) -> String {
    addrs
        .iter()
        .filter(|a| a.is_ipv6() == v6)
        .map(IpAddr::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

fn addr_set(out: &mut String, name: &str, v6: bool, elems: &str) {
    let ty = if v6 { "ipv6_addr" } else { "ipv4_addr" };
    if elems.is_empty() {
        let _ = writeln!(out, "  set {name} {{ type {ty}; }}");
    } else {
        let _ = writeln!(
            out,
            "  set {name} {{ type {ty}; elements = {{ {elems} }}; }}"
        );
    }
}

/// One element of a probe set with its counter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CarriedProbe {
    /// Source address.
    pub source: IpAddr,
    /// IP protocol number (6 tcp, 17 udp).
    pub protocol: u8,
    /// Destination port.
    pub port: u16,
    /// Packets counted.
    pub packets: u64,
    /// Bytes counted.
    pub bytes: u64,
}

/// One element of an aggregate probe set with its counter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Counted<K> {
    /// The key: (protocol, port) or an address (a source, or a network's first address).
    pub key: K,
    /// Packets counted.
    pub packets: u64,
    /// Bytes counted.
    pub bytes: u64,
}

/// Counter values of the live table, carried into the next full replace.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Carry {
    /// Named counters (`cc_<list id>`, [`PROBE_COUNTERS`]): (packets, bytes).
    pub counters: BTreeMap<String, (u64, u64)>,
    /// Elements of `probes4` and `probes6`.
    pub probes: Vec<CarriedProbe>,
    /// Elements of `probe_ports`: (protocol number, port).
    pub ports: Vec<Counted<(u8, u16)>>,
    /// Elements of `probe_sources4` and `probe_sources6`.
    pub sources: Vec<Counted<IpAddr>>,
    /// Elements of `probe_nets4` and `probe_nets6` (the network's first address).
    pub networks: Vec<Counted<IpAddr>>,
}

/// The [`MAX_CARRIED_PROBES`] most counted of `items`, rendered as set elements.
fn carried<K: Ord + Clone>(items: &[&Counted<K>], show: impl Fn(&K) -> String) -> String {
    let mut v: Vec<&Counted<K>> = items.to_vec();
    v.sort_by(|a, b| (b.packets, &a.key).cmp(&(a.packets, &b.key)));
    let mut seen = BTreeSet::new();
    v.retain(|c| seen.insert(c.key.clone()));
    v.truncate(MAX_CARRIED_PROBES);
    v.sort_by(|a, b| a.key.cmp(&b.key));
    v.iter()
        .map(|c| {
            format!(
                "{} counter packets {} bytes {}",
                show(&c.key),
                c.packets,
                c.bytes
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// A dynamic counting set, with its carried elements.
fn counting_set(o: &mut String, name: &str, ty: &str, size: u32, timeout: bool, elems: &str) {
    let flags = if timeout {
        format!("flags dynamic,timeout; timeout {PROBE_TIMEOUT};")
    } else {
        "flags dynamic;".to_string()
    };
    let elems = if elems.is_empty() {
        String::new()
    } else {
        format!(" elements = {{ {elems} }};")
    };
    let _ = writeln!(
        o,
        "  set {name} {{ type {ty}; size {size}; {flags} counter;{elems} }}"
    );
}

/// The carried elements of one probe set: the [`MAX_CARRIED_PROBES`] most counted, so that
/// carrying them keeps a replace fast (a full set of 65,535 would add about a second).
fn probe_elements(carry: &Carry, v6: bool) -> String {
    let mut probes: Vec<&CarriedProbe> = carry
        .probes
        .iter()
        .filter(|p| p.source.is_ipv6() == v6)
        .collect();
    probes.sort_by(|a, b| {
        (b.packets, a.source, a.protocol, a.port).cmp(&(a.packets, b.source, b.protocol, b.port))
    });
    let mut seen = BTreeSet::new();
    probes.retain(|p| seen.insert((p.source, p.protocol, p.port)));
    probes.truncate(MAX_CARRIED_PROBES);
    probes.sort_by_key(|p| (p.source, p.protocol, p.port));
    probes
        .iter()
        .map(|p| {
            format!(
                "{} . {} . {} counter packets {} bytes {}",
                p.source, p.protocol, p.port, p.packets, p.bytes
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The nft script that replaces the table with `policy` (counters start at zero).
pub fn render(policy: &Policy) -> String {
    render_carrying(policy, &Carry::default())
}

/// The nft script that replaces the table with `policy`, its counters starting from `carry`.
pub fn render_carrying(policy: &Policy, carry: &Carry) -> String {
    let s = &policy.structure;
    let mut o = String::with_capacity(4096);
    let _ = writeln!(o, "table inet {TABLE}\ndelete table inet {TABLE}");
    let _ = writeln!(o, "table inet {TABLE} {{");
    for set in [AddressSet::MfaPending, AddressSet::ClientToClient] {
        for v6 in [false, true] {
            addr_set(&mut o, set.set_name(v6), v6, &elements(policy.set(set), v6));
        }
    }
    for name in PROBE_COUNTERS {
        match carry.counters.get(name) {
            Some((p, b)) if *p > 0 || *b > 0 => {
                let _ = writeln!(o, "  counter {name} {{ packets {p} bytes {b} }}");
            }
            _ => {
                let _ = writeln!(o, "  counter {name} {{ }}");
            }
        }
    }
    let ports: Vec<&Counted<(u8, u16)>> = carry.ports.iter().collect();
    let elems = carried(&ports, |(proto, port)| format!("{proto} . {port}"));
    counting_set(
        &mut o,
        "probe_ports",
        "inet_proto . inet_service",
        PROBE_PORT_SET_SIZE,
        false,
        &elems,
    );
    for (v6, ty) in [(false, "ipv4_addr"), (true, "ipv6_addr")] {
        let fam = if v6 { 6 } else { 4 };
        for (name, items) in [
            ("probe_nets", &carry.networks),
            ("probe_sources", &carry.sources),
        ] {
            let of_family: Vec<&Counted<IpAddr>> =
                items.iter().filter(|c| c.key.is_ipv6() == v6).collect();
            let elems = carried(&of_family, IpAddr::to_string);
            counting_set(
                &mut o,
                &format!("{name}{fam}"),
                ty,
                PROBE_SET_SIZE,
                true,
                &elems,
            );
        }
        counting_set(
            &mut o,
            &format!("probes{fam}"),
            &format!("{ty} . inet_proto . inet_service"),
            PROBE_SET_SIZE,
            true,
            &probe_elements(carry, v6),
        );
    }
    for l in &s.lists {
        match carry.counters.get(&format!("cc_{}", l.id)) {
            Some((p, b)) if *p > 0 || *b > 0 => {
                let _ = writeln!(o, "  counter cc_{} {{ packets {p} bytes {b} }}", l.id);
            }
            _ => {
                let _ = writeln!(o, "  counter cc_{} {{ }}", l.id);
            }
        }
        for (v6, iv) in [(false, &l.parsed.v4), (true, &l.parsed.v6)] {
            let ty = if v6 { "ipv6_addr" } else { "ipv4_addr" };
            let fam = if v6 { 6 } else { 4 };
            if iv.is_empty() {
                let _ = writeln!(
                    o,
                    "  set cc_{}_{fam} {{ type {ty}; flags interval; }}",
                    l.id
                );
            } else {
                let _ = writeln!(
                    o,
                    "  set cc_{}_{fam} {{ type {ty}; flags interval; elements = {{ {} }}; }}",
                    l.id,
                    iv.render(v6)
                );
            }
        }
    }
    nat_chains(&mut o, s);
    coppercloud_chain(&mut o, s);
    input_chain(&mut o, s);
    forward_chain(&mut o, s);
    output_chain(&mut o, s);
    o.push_str("}\n");
    o
}

fn nat_chains(o: &mut String, s: &Structure) {
    let _ = writeln!(
        o,
        "  chain prerouting {{\n    type nat hook prerouting priority dstnat; policy accept;"
    );
    if !s.redirect_ports.is_empty() {
        let ports: Vec<u16> = s.redirect_ports.iter().copied().collect();
        let redirect = format!(
            "fib daddr type local udp dport {} redirect to :{}",
            port_list(&ports),
            s.wireguard_port
        );
        if s.redirect_interfaces.is_empty() {
            // Every way in but the tunnel (its udp/53 is the resolver), loopback (the host's own
            // queries) and container bridges; and only what is addressed to this host, so DNS
            // and QUIC forwarded for containers pass untouched.
            let _ = writeln!(
                o,
                "    iifname {{ \"{}\", \"lo\" }} return",
                s.tunnel_interface
            );
            for b in &s.container_bridges {
                let _ = writeln!(o, "    iifname \"{b}\" return");
            }
            let _ = writeln!(o, "    {redirect}");
        } else {
            for i in &s.redirect_interfaces {
                let _ = writeln!(o, "    iifname \"{i}\" {redirect}");
            }
        }
    }
    o.push_str("  }\n");
    let _ = writeln!(
        o,
        "  chain postrouting {{\n    type nat hook postrouting priority srcnat; policy accept;"
    );
    if let Some(ext) = &s.external_interface {
        let _ = writeln!(
            o,
            "    oifname \"{ext}\" ip saddr {} masquerade",
            s.subnet_v4
        );
        let _ = writeln!(
            o,
            "    oifname \"{ext}\" ip6 saddr {} masquerade",
            s.subnet_v6
        );
    }
    o.push_str("  }\n");
}

fn coppercloud_chain(o: &mut String, s: &Structure) {
    o.push_str("  chain coppercloud {\n");
    for l in &s.lists {
        let verdict = match l.mode {
            ListMode::Allow => "return",
            ListMode::Block => "drop",
        };
        for (fam, ip) in [(4, "ip"), (6, "ip6")] {
            let empty = if fam == 4 {
                l.parsed.v4.is_empty()
            } else {
                l.parsed.v6.is_empty()
            };
            if empty {
                continue;
            }
            for dir in ["daddr", "saddr"] {
                let _ = writeln!(
                    o,
                    "    {ip} {dir} @cc_{id}_{fam} counter name \"cc_{id}\" {verdict}",
                    id = l.id
                );
            }
        }
    }
    o.push_str("  }\n");
}

fn input_chain(o: &mut String, s: &Structure) {
    let wg = &s.tunnel_interface;
    let _ = writeln!(
        o,
        "  chain input {{\n    type filter hook input priority filter; policy drop;"
    );
    o.push_str("    ct state invalid drop\n");
    // Devices waiting for their MFA login go through their own short chain before anything
    // is accepted as established: a sign-out cuts the flows already open (SSH, say) at once.
    let _ = writeln!(
        o,
        "    iifname \"{wg}\" ip saddr @mfa_pending4 jump mfa_pending_in"
    );
    let _ = writeln!(
        o,
        "    iifname \"{wg}\" ip6 saddr @mfa_pending6 jump mfa_pending_in"
    );
    o.push_str("    ct state established,related accept\n");
    o.push_str("    iifname \"lo\" accept\n    jump coppercloud\n");
    o.push_str("    icmpv6 type { nd-neighbor-solicit, nd-neighbor-advert, nd-router-solicit, nd-router-advert, packet-too-big, destination-unreachable, time-exceeded, parameter-problem } accept\n");
    o.push_str(
        "    icmp type { destination-unreachable, time-exceeded, parameter-problem } accept\n",
    );
    // After the prerouting redirect the alternate ports arrive as the WireGuard port.
    let _ = writeln!(o, "    udp dport {} accept", s.wireguard_port);
    let dns = port_list(&DNS_PORTS);
    let _ = writeln!(o, "    iifname \"{wg}\" udp dport {dns} accept");
    let _ = writeln!(o, "    iifname \"{wg}\" tcp dport {dns} accept");
    if !s.web_ports.is_empty() {
        let _ = writeln!(
            o,
            "    iifname \"{wg}\" tcp dport {} accept",
            port_list(&s.web_ports)
        );
    }
    let _ = writeln!(o, "    iifname \"{wg}\" icmp type echo-request accept");
    let _ = writeln!(o, "    iifname \"{wg}\" icmpv6 type echo-request accept");
    let _ = writeln!(o, "    iifname \"{wg}\" tcp dport {} accept", s.ssh_port);
    if let Some(src) = s.admin_source {
        let ip = if src.addr().is_ipv6() { "ip6" } else { "ip" };
        let _ = writeln!(o, "    {ip} saddr {src} tcp dport {} accept", s.ssh_port);
    }
    for b in &s.container_bridges {
        let _ = writeln!(o, "    iifname \"{b}\" accept");
    }
    // Everything else is unsolicited: counted (chain probe), then dropped by the policy.
    o.push_str("    meta l4proto { tcp, udp } jump probe\n");
    o.push_str("  }\n");
    mfa_pending_chain(o, s);
    probe_chains(o);
}

/// Counts one unsolicited packet: in total, per port, per source network, per source and per
/// (source, port). `update` adds the element or refreshes its timeout; when a set is full it
/// cannot add, its rule stops there and the next one counts the packet as not kept.
fn probe_chains(o: &mut String) {
    o.push_str("  chain probe {\n    counter name \"probes\"\n");
    o.push_str("    update @probe_ports { meta l4proto . th dport }\n");
    o.push_str("    jump probe_net\n    jump probe_src\n");
    o.push_str(
        "    meta nfproto ipv4 update @probes4 { ip saddr . meta l4proto . th dport } return\n",
    );
    o.push_str(
        "    meta nfproto ipv6 update @probes6 { ip6 saddr . meta l4proto . th dport } return\n",
    );
    o.push_str("    counter name \"probes_unkept_pairs\"\n  }\n");
    o.push_str("  chain probe_net {\n");
    o.push_str("    meta nfproto ipv4 update @probe_nets4 { ip saddr & 255.255.255.0 } return\n");
    o.push_str(
        "    meta nfproto ipv6 update @probe_nets6 { ip6 saddr & ffff:ffff:ffff:: } return\n",
    );
    o.push_str("    counter name \"probes_unkept_networks\"\n  }\n");
    o.push_str("  chain probe_src {\n");
    o.push_str("    meta nfproto ipv4 update @probe_sources4 { ip saddr } return\n");
    o.push_str("    meta nfproto ipv6 update @probe_sources6 { ip6 saddr } return\n");
    o.push_str("    counter name \"probes_unkept_sources\"\n  }\n");
}

/// What a device waiting for its MFA login may reach on the host: Mistborn's web and DNS,
/// ping, and the replies of flows the host itself opened; nothing else, established or not.
fn mfa_pending_chain(o: &mut String, s: &Structure) {
    o.push_str("  chain mfa_pending_in {\n");
    o.push_str("    ct direction reply accept\n");
    let dns = port_list(&DNS_PORTS);
    let _ = writeln!(o, "    udp dport {dns} accept");
    let _ = writeln!(o, "    tcp dport {dns} accept");
    if !s.web_ports.is_empty() {
        let _ = writeln!(o, "    tcp dport {} accept", port_list(&s.web_ports));
    }
    o.push_str("    icmp type { echo-request, destination-unreachable, time-exceeded, parameter-problem } accept\n");
    o.push_str("    icmpv6 type { echo-request, packet-too-big, destination-unreachable, time-exceeded, parameter-problem } accept\n");
    o.push_str("    drop\n  }\n");
}

fn forward_chain(o: &mut String, s: &Structure) {
    let wg = &s.tunnel_interface;
    let _ = writeln!(
        o,
        "  chain forward {{\n    type filter hook forward priority filter; policy drop;"
    );
    o.push_str("    ct state invalid drop\n");
    // The MFA gate comes before `established`: when a device is gated again (sign-out, expiry,
    // a revoked session) its open connections stop at the next packet, both ways.
    let _ = writeln!(o, "    iifname \"{wg}\" ip saddr @mfa_pending4 drop");
    let _ = writeln!(o, "    iifname \"{wg}\" ip6 saddr @mfa_pending6 drop");
    let _ = writeln!(o, "    oifname \"{wg}\" ip daddr @mfa_pending4 drop");
    let _ = writeln!(o, "    oifname \"{wg}\" ip6 daddr @mfa_pending6 drop");
    o.push_str("    ct state established,related accept\n");
    o.push_str("    jump coppercloud\n");
    // DNS egress lock: clients use Mistborn's resolver, never an outside one.
    let dns = port_list(&DNS_PORTS);
    let _ = writeln!(o, "    iifname \"{wg}\" udp dport {dns} drop");
    let _ = writeln!(o, "    iifname \"{wg}\" tcp dport {dns} drop");
    // Client to client only between two devices that both opted in.
    for (ip, fam) in [("ip", 4), ("ip6", 6)] {
        let _ = writeln!(
            o,
            "    iifname \"{wg}\" oifname \"{wg}\" {ip} saddr @c2c{fam} {ip} daddr @c2c{fam} accept"
        );
    }
    let _ = writeln!(o, "    iifname \"{wg}\" oifname \"{wg}\" drop");
    let _ = writeln!(o, "    iifname \"{wg}\" accept");
    // Containers may go out; nothing new reaches a published container port from outside the
    // tunnel (the engine's DNAT turns such packets into forwarded ones).
    for b in &s.container_bridges {
        let _ = writeln!(o, "    iifname \"{b}\" accept");
    }
    for b in &s.container_bridges {
        let _ = writeln!(o, "    oifname \"{b}\" drop");
    }
    o.push_str("  }\n");
}

fn output_chain(o: &mut String, s: &Structure) {
    let _ = writeln!(
        o,
        "  chain output {{\n    type filter hook output priority filter; policy accept;"
    );
    if let Some(uid) = s.resolver_uid {
        let dns = port_list(&DNS_PORTS);
        for proto in ["udp", "tcp"] {
            let _ = writeln!(
                o,
                "    oifname != \"lo\" {proto} dport {dns} meta skuid != {uid} drop"
            );
        }
    }
    o.push_str("  }\n");
}
