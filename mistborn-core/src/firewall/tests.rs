//! Plan and parsing tests: no root, no nft.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::sync::Arc;

use super::coppercloud::{ListMode, check_list, parse_list};
use super::intervals::Intervals;
use super::metrics::summarize;
use super::plan::{ElementChange, FirewallPlan, apply_changes, plan};
use super::policy::{AddressSet, ListRule, PolicyInput, ProfileRule, policy};
use super::ruleset::render;
use crate::peers::{ListenPort, PeerKind};

fn profile(n: u8, kind: PeerKind, c2c: bool, port: ListenPort) -> ProfileRule {
    ProfileRule {
        address_v4: format!("10.15.91.{n}").parse().unwrap(),
        address_v6: format!("fd15:91::{n:x}").parse().unwrap(),
        kind,
        client_to_client: c2c,
        listen_port: port,
    }
}

fn input() -> PolicyInput {
    PolicyInput {
        tunnel_interface: "mistborn0".into(),
        wireguard_port: 51820,
        subnet_v4: "10.15.91.0/24".parse().unwrap(),
        subnet_v6: "fd15:91::/64".parse().unwrap(),
        external_interface: Some("eth0".into()),
        admin_source: Some("198.51.100.7/32".parse().unwrap()),
        ssh_port: 22,
        redirect_interfaces: vec![],
        web_ports: vec![443, 80],
        container_bridges: vec!["docker0".into(), "br-*".into()],
        resolver_uid: None,
        profiles: vec![
            profile(2, PeerKind::Wireguard, false, ListenPort::Default),
            profile(3, PeerKind::Mfa, false, ListenPort::Udp443),
            profile(4, PeerKind::Mfa, true, ListenPort::Default),
        ],
        open_addresses: BTreeSet::new(),
        lists: vec![],
    }
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

#[test]
fn mfa_profiles_without_session_are_pending_both_families() {
    let mut i = input();
    let p = policy(&i);
    let want: BTreeSet<IpAddr> = ["10.15.91.3", "fd15:91::3", "10.15.91.4", "fd15:91::4"]
        .map(ip)
        .into();
    assert_eq!(p.mfa_pending, want);
    i.open_addresses = ["10.15.91.3", "fd15:91::3"].map(ip).into();
    let p = policy(&i);
    assert_eq!(p.mfa_pending, ["10.15.91.4", "fd15:91::4"].map(ip).into());
    assert_eq!(
        p.client_to_client,
        ["10.15.91.4", "fd15:91::4"].map(ip).into()
    );
    assert_eq!(p.structure.redirect_ports, [443].into());
}

#[test]
fn rendered_table_replaces_only_its_own_table_and_is_deterministic() {
    let i = input();
    let text = render(&policy(&i));
    assert_eq!(text, render(&policy(&i)));
    assert!(
        text.starts_with(
            "table inet mistborn\ndelete table inet mistborn\ntable inet mistborn {\n"
        )
    );
    assert!(!text.contains("flush ruleset"));
    let tables: BTreeSet<&str> = text
        .lines()
        .filter(|l| l.starts_with("table") || l.starts_with("delete"))
        .collect();
    assert_eq!(tables.len(), 3, "{tables:?}");
    for needle in [
        "type filter hook input priority filter; policy drop;",
        "type filter hook forward priority filter; policy drop;",
        "ct state established,related accept",
        "iifname \"lo\" accept",
        "udp dport 51820 accept",
        "iifname \"mistborn0\" udp dport { 53, 853 } accept",
        "iifname \"mistborn0\" tcp dport { 80, 443 } accept",
        "iifname \"mistborn0\" tcp dport 22 accept",
        "ip saddr 198.51.100.7/32 tcp dport 22 accept",
        "iifname { \"mistborn0\", \"lo\" } return",
        "iifname \"br-*\" return",
        "fib daddr type local udp dport 443 redirect to :51820",
        "oifname \"eth0\" ip saddr 10.15.91.0/24 masquerade",
        "oifname \"eth0\" ip6 saddr fd15:91::/64 masquerade",
        "iifname \"mistborn0\" ip saddr @mfa_pending4 drop",
        "iifname \"mistborn0\" oifname \"mistborn0\" ip saddr @c2c4 ip daddr @c2c4 accept",
        "iifname \"mistborn0\" oifname \"mistborn0\" drop",
        "iifname \"mistborn0\" udp dport { 53, 853 } drop",
        "oifname \"br-*\" drop",
        "meta l4proto { tcp, udp } jump probe",
        "counter name \"probes\"",
        "update @probe_ports { meta l4proto . th dport }",
        "update @probes4 { ip saddr . meta l4proto . th dport } return",
        "update @probe_nets4 { ip saddr & 255.255.255.0 } return",
        "update @probe_nets6 { ip6 saddr & ffff:ffff:ffff:: } return",
        "update @probe_sources6 { ip6 saddr } return",
        "counter name \"probes_unkept_sources\"",
        "set probe_ports { type inet_proto . inet_service; size 131072; flags dynamic; counter; }",
        "set probe_sources4 { type ipv4_addr; size 65535; flags dynamic,timeout; timeout 10m; counter; }",
        "set mfa_pending4 { type ipv4_addr; elements = { 10.15.91.3, 10.15.91.4 }; }",
        "set mfa_pending6 { type ipv6_addr; elements = { fd15:91::3, fd15:91::4 }; }",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in\n{text}");
    }
    // A device waiting for its MFA login gets DNS and web only, and its flows already open
    // (input and forward) stop when it is gated again: the gate comes before `established`.
    let chain = |name: &str| {
        let start = text.find(&format!("chain {name} {{")).unwrap();
        let end = start + text[start..].find("\n  }\n").unwrap();
        text[start..end].to_string()
    };
    let (input, forward, pending) = (chain("input"), chain("forward"), chain("mfa_pending_in"));
    let before = |c: &str, a: &str, b: &str| {
        c.find(a).unwrap_or_else(|| panic!("no {a:?} in {c}"))
            < c.find(b).unwrap_or_else(|| panic!("no {b:?} in {c}"))
    };
    assert!(before(
        &input,
        "ip saddr @mfa_pending4 jump mfa_pending_in",
        "ct state established"
    ));
    assert!(before(
        &input,
        "ip6 saddr @mfa_pending6 jump mfa_pending_in",
        "ct state established"
    ));
    for gate in [
        "iifname \"mistborn0\" ip saddr @mfa_pending4 drop",
        "iifname \"mistborn0\" ip6 saddr @mfa_pending6 drop",
        "oifname \"mistborn0\" ip daddr @mfa_pending4 drop",
        "oifname \"mistborn0\" ip6 daddr @mfa_pending6 drop",
    ] {
        assert!(before(&forward, gate, "ct state established"), "{forward}");
    }
    for allowed in [
        "udp dport { 53, 853 } accept",
        "tcp dport { 80, 443 } accept",
    ] {
        assert!(pending.contains(allowed), "{pending}");
    }
    assert!(!pending.contains("dport 22"), "{pending}");
    assert!(pending.trim_end().ends_with("drop"), "{pending}");
    // Client to client needs both ends in the set; nothing else passes between clients.
    for l in forward.lines().filter(|l| l.contains("@c2c")) {
        assert!(
            l.contains("saddr @c2c") && l.contains("daddr @c2c"),
            "one-sided: {l}"
        );
    }
    assert!(before(
        &forward,
        "ip daddr @c2c4 accept",
        "oifname \"mistborn0\" drop"
    ));
}

#[test]
fn no_external_interface_means_no_masquerade_but_still_the_alternate_ports() {
    let mut i = input();
    i.external_interface = None;
    let text = render(&policy(&i));
    assert!(!text.contains("masquerade"));
    assert!(text.contains("fib daddr type local udp dport 443 redirect to :51820"));
    // Without a profile on an alternate port nothing is redirected.
    i.profiles.retain(|p| p.listen_port == ListenPort::Default);
    assert!(!render(&policy(&i)).contains("redirect"));
}

#[test]
fn alternate_ports_on_every_outside_interface_or_the_configured_ones() {
    let mut i = input();
    let prerouting = |text: &str| {
        let start = text.find("chain prerouting {").unwrap();
        text[start..start + text[start..].find("\n  }\n").unwrap()].to_string()
    };
    // Default: not on the tunnel, loopback or container bridges; everything else that is
    // addressed to this host (the rule names no interface).
    let p = prerouting(&render(&policy(&i)));
    let lines: Vec<&str> = p.lines().skip(2).map(str::trim).collect();
    assert_eq!(
        lines,
        [
            "iifname { \"mistborn0\", \"lo\" } return",
            "iifname \"docker0\" return",
            "iifname \"br-*\" return",
            "fib daddr type local udp dport 443 redirect to :51820",
        ],
        "{p}"
    );
    i.redirect_interfaces = vec!["eth0".into(), "lan*".into()];
    let p = prerouting(&render(&policy(&i)));
    let lines: Vec<&str> = p.lines().skip(2).map(str::trim).collect();
    assert_eq!(
        lines,
        [
            "iifname \"eth0\" fib daddr type local udp dport 443 redirect to :51820",
            "iifname \"lan*\" fib daddr type local udp dport 443 redirect to :51820",
        ],
        "{p}"
    );
}

#[test]
fn resolver_uid_locks_host_dns_egress() {
    let mut i = input();
    i.resolver_uid = Some(107);
    let text = render(&policy(&i));
    assert!(text.contains("oifname != \"lo\" udp dport { 53, 853 } meta skuid != 107 drop"));
}

#[test]
fn plan_uses_elements_for_device_state_and_replace_for_structure() {
    let i = input();
    let applied = policy(&i);
    assert_eq!(plan(&applied, None), FirewallPlan::Replace);
    assert_eq!(plan(&applied, Some(&applied)), FirewallPlan::Nothing);

    let mut login = i.clone();
    login.open_addresses = ["10.15.91.3", "fd15:91::3"].map(ip).into();
    let FirewallPlan::Elements(ch) = plan(&policy(&login), Some(&applied)) else {
        panic!("expected elements");
    };
    assert_eq!(
        ch,
        vec![
            ElementChange {
                set: AddressSet::MfaPending,
                address: ip("10.15.91.3"),
                add: false
            },
            ElementChange {
                set: AddressSet::MfaPending,
                address: ip("fd15:91::3"),
                add: false
            },
        ]
    );
    let mut after = applied.clone();
    apply_changes(&mut after, &ch);
    assert_eq!(after, policy(&login));

    let mut c2c = i.clone();
    c2c.profiles[0].client_to_client = true;
    let FirewallPlan::Elements(ch) = plan(&policy(&c2c), Some(&applied)) else {
        panic!("expected elements");
    };
    assert_eq!(ch.len(), 2);
    assert!(
        ch.iter()
            .all(|c| c.add && c.set == AddressSet::ClientToClient)
    );

    let mut port = i.clone();
    port.profiles[0].listen_port = ListenPort::Udp53;
    assert_eq!(plan(&policy(&port), Some(&applied)), FirewallPlan::Replace);

    let mut ext = i.clone();
    ext.external_interface = Some("ens3".into());
    assert_eq!(plan(&policy(&ext), Some(&applied)), FirewallPlan::Replace);

    let mut list = i;
    list.lists.push(ListRule {
        id: "ab12".into(),
        mode: ListMode::Block,
        parsed: Arc::new(parse_list("192.0.2.0/24").unwrap()),
    });
    assert_eq!(plan(&policy(&list), Some(&applied)), FirewallPlan::Replace);
}

#[test]
fn coppercloud_lines_comments_ranges_and_families() {
    let text = "# header\n\
                192.0.2.0/24 ; SBL1\n\
                192.0.2.77\n\
                10.0.0.5/8\n\
                198.51.100.10 - 198.51.100.20  # range\n\
                \n\
                2001:db8::/48\n\
                2001:db8:1::1-2001:db8:1::ff\n";
    let p = parse_list(text).unwrap();
    assert_eq!(p.entries, 6);
    assert_eq!(
        p.v4.render(false),
        "10.0.0.0/8, 192.0.2.0/24, 198.51.100.10-198.51.100.20"
    );
    assert_eq!(
        p.v6.render(true),
        "2001:db8::/48, 2001:db8:1::1-2001:db8:1::ff"
    );
    assert!(p.v4.contains(u128::from(u32::from(std::net::Ipv4Addr::new(
        192, 0, 2, 77
    )))));
    assert!(
        !p.v4
            .contains(u128::from(u32::from(std::net::Ipv4Addr::new(192, 0, 3, 1))))
    );
}

#[test]
fn malformed_lines_are_reported_with_their_numbers() {
    let bad = parse_list("192.0.2.1\n<html>\n10.0.0.0/33\n10.0.0.9-10.0.0.1\n").unwrap_err();
    assert_eq!(
        bad.iter().map(|b| b.line).collect::<Vec<_>>(),
        vec![2, 3, 4]
    );
    let e = check_list("192.0.2.1\n\nnot-an-ip\n")
        .unwrap_err()
        .to_string();
    assert!(e.contains("line 3: 'not-an-ip'"), "{e}");
    let e = check_list("# only comments\n").unwrap_err().to_string();
    assert!(e.contains("no address"), "{e}");
}

#[test]
fn intervals_merge_overlaps_and_neighbours() {
    let p =
        parse_list("10.0.0.0/8\n10.1.0.0/16\n11.0.0.1\n11.0.0.2\n11.0.0.0\n11.0.0.3\n0.0.0.0/0\n")
            .unwrap();
    assert_eq!(p.v4.render(false), "0.0.0.0/0");
    let p = parse_list("11.0.0.1\n11.0.0.2\n11.0.0.0\n11.0.0.3\n").unwrap();
    assert_eq!(p.v4.render(false), "11.0.0.0/30");
    let p = parse_list("11.0.0.1\n11.0.0.2\n").unwrap();
    assert_eq!(p.v4.render(false), "11.0.0.1-11.0.0.2");
    let p = parse_list("::/0\n").unwrap();
    assert_eq!(p.v6.render(true), "::/0");
    assert_eq!(
        Intervals::merge(vec![(5, 9), (1, 3), (4, 4)]).ranges(),
        &[(1, 9)]
    );
}

#[test]
fn lists_render_as_interval_sets_with_counters_allow_first() {
    let mut i = input();
    i.lists = vec![
        ListRule {
            id: "b1".into(),
            mode: ListMode::Block,
            parsed: Arc::new(parse_list("203.0.113.80\n2001:db8::/32").unwrap()),
        },
        ListRule {
            id: "a9".into(),
            mode: ListMode::Allow,
            parsed: Arc::new(parse_list("203.0.113.0/24").unwrap()),
        },
    ];
    let text = render(&policy(&i));
    assert!(
        text.contains(
            "set cc_b1_4 { type ipv4_addr; flags interval; elements = { 203.0.113.80 }; }"
        )
    );
    assert!(
        text.contains(
            "set cc_b1_6 { type ipv6_addr; flags interval; elements = { 2001:db8::/32 }; }"
        )
    );
    assert!(text.contains("set cc_a9_6 { type ipv6_addr; flags interval; }"));
    assert!(text.contains("counter cc_b1 { }"));
    let pos = |s: &str| text.find(s).unwrap();
    assert!(
        pos("ip daddr @cc_a9_4 counter name \"cc_a9\" return")
            < pos("ip daddr @cc_b1_4 counter name \"cc_b1\" drop")
    );
    assert!(!text.contains("@cc_a9_6"), "an empty family has no rules");
}

#[test]
fn probes_and_list_hits_summarize_into_totals_ports_networks_and_sources() {
    use super::ruleset::{CarriedProbe, Carry, Counted};
    let pair = |source: &str, protocol: u8, port: u16, packets: u64| CarriedProbe {
        source: ip(source),
        protocol,
        port,
        packets,
        bytes: packets * 60,
    };
    fn counted<K>(key: K, packets: u64) -> Counted<K> {
        Counted {
            key,
            packets,
            bytes: packets * 60,
        }
    }
    let mut c = Carry::default();
    c.counters.insert("probes".into(), (9, 540));
    c.counters.insert("probes_unkept_pairs".into(), (1, 60));
    c.counters.insert("cc_ab".into(), (7, 420));
    // The pairs set kept 8 of the 9 packets; the per-port and per-source sets all of them.
    c.probes = vec![
        pair("10.99.0.2", 6, 22, 2),
        pair("10.99.0.2", 6, 25, 1),
        pair("10.99.0.3", 17, 22, 5),
    ];
    c.ports = vec![
        counted((6, 22), 2),
        counted((6, 25), 2),
        counted((17, 22), 5),
    ];
    c.sources = vec![counted(ip("10.99.0.2"), 4), counted(ip("10.99.0.3"), 5)];
    c.networks = vec![counted(ip("10.99.0.0"), 9), counted(ip("fd00:1::"), 0)];
    let m = summarize(&c, 10);
    assert_eq!(m.total, 9);
    assert_eq!(m.unkept.probes, 1);
    assert_eq!((m.unkept.sources, m.unkept.networks), (0, 0));
    assert_eq!(m.top_sources[0].source, ip("10.99.0.3"));
    assert_eq!((m.top_sources[1].packets, m.top_sources[1].ports), (4, 2));
    assert_eq!(
        (m.top_ports[0].protocol.as_str(), m.top_ports[0].port),
        ("udp", 22)
    );
    assert_eq!(m.top_ports[1].sources, 1);
    assert_eq!(m.top_networks[0].network.to_string(), "10.99.0.0/24");
    assert_eq!(m.top_networks[1].network.to_string(), "fd00:1::/48");
    assert_eq!(m.probes[0].packets, 5);
    assert_eq!(m.lists[0].id, "ab");
    assert_eq!(m.lists[0].packets, 7);
    // Top n of every list.
    let m = summarize(&c, 1);
    assert_eq!(
        (
            m.top_ports.len(),
            m.top_sources.len(),
            m.top_networks.len(),
            m.probes.len()
        ),
        (1, 1, 1, 1)
    );
}

#[test]
fn nft_errors_are_short_with_line_and_the_part_pointed_at() {
    let stderr = "/dev/stdin:2:72-77: Error: Could not process rule: Too many links\n  chain input { type filter hook input priority filter; policy accept; jump b; }\n                                                                       ^^^^^^\n/dev/stdin:9:81-87: Error: No such file or directory\n  chain input { ip saddr @nosuch drop; }\n                         ^^^^^^^\n";
    assert_eq!(
        super::nft::explain(stderr),
        "line 2: Could not process rule: Too many links (at `jump b`); line 9: No such file or directory (at `@nosuch`)"
    );
    assert_eq!(super::nft::explain("segfault\n"), "segfault");
}

#[test]
fn counters_and_probes_ride_along_a_replace() {
    use super::ruleset::{CarriedProbe, Carry, MAX_CARRIED_PROBES, render_carrying};
    let mut i = input();
    i.lists = vec![ListRule {
        id: "b1".into(),
        mode: ListMode::Block,
        parsed: Arc::new(parse_list("203.0.113.80").unwrap()),
    }];
    let probe = |source: &str, protocol: u8, port: u16, packets: u64| CarriedProbe {
        source: ip(source),
        protocol,
        port,
        packets,
        bytes: packets * 60,
    };
    let mut carry = Carry::default();
    carry.counters.insert("cc_b1".into(), (7, 420));
    carry.counters.insert("cc_gone".into(), (1, 60));
    carry.probes = vec![probe("10.99.0.2", 6, 22, 2), probe("fd00::9", 17, 53, 4)];
    let text = render_carrying(&policy(&i), &carry);
    assert!(
        text.contains("counter cc_b1 { packets 7 bytes 420 }"),
        "{text}"
    );
    assert!(
        !text.contains("cc_gone"),
        "a removed list's counter is not revived"
    );
    assert!(
        text.contains("flags dynamic,timeout; timeout 10m; counter; elements = { 10.99.0.2 . 6 . 22 counter packets 2 bytes 120 }; }"),
        "{text}"
    );
    assert!(
        text.contains("elements = { fd00::9 . 17 . 53 counter packets 4 bytes 240 }; }"),
        "{text}"
    );
    assert_eq!(
        render(&policy(&i)),
        render_carrying(&policy(&i), &Carry::default())
    );
    assert!(render(&policy(&i)).contains("counter cc_b1 { }"));

    // A fuller set: only the most counted ride along.
    carry.probes = (0..MAX_CARRIED_PROBES as u16 + 10)
        .map(|n| probe("10.99.0.3", 6, n + 1, if n < 5 { 1 } else { 2 }))
        .collect();
    let text = render_carrying(&policy(&i), &carry);
    assert_eq!(text.matches("counter packets").count(), MAX_CARRIED_PROBES);
    assert!(
        !text.contains("10.99.0.3 . 6 . 1 counter"),
        "a least counted probe was kept"
    );
}
