//! The full replace and the element path for real, in network namespaces: a script the kernel
//! (or nft) refuses leaves the previous table listed unchanged and says why; a replace keeps
//! the counters' values (list hits, probes); element batches go over the kept netlink socket,
//! large ones included, and removing an element that is already gone is fine.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mistborn_core::firewall::{
    AddressSet, ElementChange, ListMode, ListRule, PolicyInput, ProfileRule, parse_list, policy,
    raw, ruleset,
};
use mistborn_core::peers::{ListenPort, PeerKind};
use mistborn_system_tests::{Netns, require, veth};

fn input(mfa_profiles: u32) -> PolicyInput {
    PolicyInput {
        tunnel_interface: "mbt0".into(),
        wireguard_port: 51820,
        subnet_v4: "10.16.0.0/16".parse().unwrap(),
        subnet_v6: "fd16::/64".parse().unwrap(),
        external_interface: None,
        admin_source: None,
        ssh_port: 22,
        redirect_interfaces: vec![],
        web_ports: vec![80, 443],
        container_bridges: vec![],
        resolver_uid: None,
        profiles: (0..mfa_profiles)
            .map(|n| ProfileRule {
                address_v4: Ipv4Addr::from(0x0a10_0000 + n + 2),
                address_v6: Ipv6Addr::from((0xfd16u128 << 112) + u128::from(n + 2)),
                kind: PeerKind::Mfa,
                client_to_client: false,
                listen_port: ListenPort::Default,
            })
            .collect(),
        open_addresses: BTreeSet::new(),
        lists: vec![],
    }
}

fn list(id: &str, text: &str) -> ListRule {
    ListRule {
        id: id.into(),
        mode: ListMode::Block,
        parsed: Arc::new(parse_list(text).unwrap()),
    }
}

/// Runs `f` on a thread inside `ns` (the firewall's calls act on the thread's namespace).
fn inside<R: Send + 'static>(ns: &Netns, f: impl FnOnce() -> R + Send + 'static) -> R {
    let path = ns.path();
    std::thread::spawn(move || {
        raw::enter_netns(&path).unwrap();
        f()
    })
    .join()
    .unwrap()
}

fn table(ns: &Netns) -> String {
    ns.exec_ok(&["nft", "-s", "list", "table", "inet", "mistborn"])
}

#[test]
fn refused_apply_keeps_the_previous_table_and_says_why() {
    if !require(
        "refused_apply_keeps_the_previous_table_and_says_why",
        &["ip", "nft"],
    ) {
        return;
    }
    let ns = Netns::new("mbfr");
    let mut i = input(3);
    i.lists = vec![list("l1", "192.0.2.0/24\n2001:db8::/32\n")];
    let good = ruleset::render(&policy(&i));
    let g = good.clone();
    inside(&ns, move || raw::apply_script(&g)).unwrap();
    let before = table(&ns);
    assert!(before.contains("192.0.2.0/24"), "{before}");

    // The kernel refuses a jump loop reachable from a base chain when it commits.
    let looped = format!(
        "{}  chain loop_a {{ jump loop_b; }}\n  chain loop_b {{ jump loop_a; }}\n  chain hook_x {{ type filter hook input priority 10; policy accept; jump loop_a; }}\n}}\n",
        good.trim_end().strip_suffix('}').unwrap()
    );
    let e = inside(&ns, move || raw::apply_script(&looped))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("the previous table stays in force") && e.contains("Could not process rule"),
        "{e}"
    );
    assert!(
        e.contains("jump loop_"),
        "the error points at the rule: {e}"
    );
    assert_eq!(table(&ns), before, "a refused script changed the table");

    // nft refuses a rule naming a set that does not exist, before the kernel sees anything.
    let bad = good.replace("@mfa_pending4 drop", "@no_such_set drop");
    assert_ne!(bad, good);
    let e = inside(&ns, move || raw::apply_script(&bad))
        .unwrap_err()
        .to_string();
    assert!(e.contains("@no_such_set") && e.contains("line "), "{e}");
    assert_eq!(table(&ns), before, "a refused script changed the table");

    // A syntax error: same.
    let e = inside(&ns, || {
        raw::apply_script("table inet mistborn {\n  chain input {\n")
    })
    .unwrap_err()
    .to_string();
    assert!(e.contains("syntax error"), "{e}");
    assert_eq!(table(&ns), before);
}

/// Polls the table's counter values until `f` holds (packets reach the table asynchronously).
fn wait_carry(ns: &Netns, what: &str, f: impl Fn(&ruleset::Carry) -> bool) -> ruleset::Carry {
    let t0 = Instant::now();
    loop {
        let c = inside(ns, || raw::read_carry().unwrap());
        if f(&c) {
            return c;
        }
        assert!(t0.elapsed() < Duration::from_secs(5), "{what}: {c:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn probe_packets(c: &ruleset::Carry, port: u16) -> u64 {
    c.probes
        .iter()
        .filter(|p| p.source.to_string() == "10.232.0.2" && p.protocol == 17 && p.port == port)
        .map(|p| p.packets)
        .sum()
}

#[test]
fn full_replace_keeps_list_hits_and_probe_counts() {
    if !require(
        "full_replace_keeps_list_hits_and_probe_counts",
        &["ip", "nft", "python3"],
    ) {
        return;
    }
    let srv = Netns::new("mbfc");
    let peer = Netns::new("mbfp");
    veth(&srv, "10.232.0.1/24", &peer, "10.232.0.2/24");
    let send = |port: u16, n: u32| {
        peer.exec_ok(&[
            "python3",
            "-c",
            &format!("import socket\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\nfor _ in range({n}): s.sendto(b'x',('10.232.0.1',{port}))"),
        ]);
    };
    let replace = |i: &PolicyInput| {
        let p = policy(i);
        inside(&srv, move || raw::replace_table(&p)).unwrap();
    };

    // The peer is on a block list: its packets count as the list's hits.
    let mut i = input(2);
    i.lists = vec![list("hits", "10.232.0.2\n")];
    replace(&i);
    send(5060, 3);
    wait_carry(&srv, "3 hits", |c| {
        c.counters.get("cc_hits").map(|v| v.0) == Some(3)
    });
    // A new list means a full replace: the first list's hits stay.
    i.lists.push(list("more", "192.0.2.0/24\n"));
    replace(&i);
    let c = inside(&srv, || raw::read_carry().unwrap());
    assert_eq!(c.counters.get("cc_hits").map(|v| v.0), Some(3), "{c:?}");
    assert_eq!(c.counters.get("cc_more"), Some(&(0, 0)), "{c:?}");

    // Off the list, its packets are probes (per source, protocol and port).
    i.lists.retain(|l| l.id != "hits");
    replace(&i);
    let c = inside(&srv, || raw::read_carry().unwrap());
    assert!(!c.counters.contains_key("cc_hits"), "removed list: {c:?}");
    send(5061, 2);
    wait_carry(&srv, "2 probes", |c| probe_packets(c, 5061) == 2);
    i.lists.push(list("third", "198.51.100.0/24\n"));
    replace(&i);
    let c = inside(&srv, || raw::read_carry().unwrap());
    assert_eq!(probe_packets(&c, 5061), 2, "{c:?}");

    // The same policy again (a restart): the same table, probes included.
    let before = table(&srv);
    assert!(before.contains("10.232.0.2 . udp . 5061"), "{before}");
    replace(&i);
    assert_eq!(table(&srv), before);
}

/// Whether the MFA set (IPv4) holds `addr`.
fn pending(ns: &Netns, addr: &str) -> bool {
    ns.exec_ok(&["nft", "list", "set", "inet", "mistborn", "mfa_pending4"])
        .split(|c: char| c.is_whitespace() || ",{}".contains(c))
        .any(|t| t == addr)
}

#[test]
fn element_batches_over_the_kept_socket() {
    if !require("element_batches_over_the_kept_socket", &["ip", "nft"]) {
        return;
    }
    let ns = Netns::new("mbfe");
    let p = policy(&input(3000));
    let all: Vec<IpAddr> = p.mfa_pending.iter().copied().collect();
    assert_eq!(all.len(), 6000);
    let change = |a: &IpAddr, add: bool| ElementChange {
        set: AddressSet::MfaPending,
        address: *a,
        add,
    };
    let script = ruleset::render(&p);
    let s = script.clone();
    inside(&ns, move || raw::apply_script(&s)).unwrap();
    let last = "10.16.11.185"; // profile 2999
    assert!(pending(&ns, last) && pending(&ns, "10.16.0.2"));

    // 6,000 removals in one transaction (several messages), then all back.
    let del: Vec<ElementChange> = all.iter().map(|a| change(a, false)).collect();
    let add: Vec<ElementChange> = all.iter().map(|a| change(a, true)).collect();
    inside(&ns, move || raw::send_elements(&del)).unwrap();
    assert!(!pending(&ns, last) && !pending(&ns, "10.16.0.2"));
    inside(&ns, move || raw::send_elements(&add)).unwrap();
    assert!(pending(&ns, last) && pending(&ns, "10.16.0.2"));

    // Many toggles on one thread (one socket): each is in force when the call returns.
    let a: IpAddr = last.parse().unwrap();
    for round in 0..3 {
        let out = inside(&ns, move || {
            (0..50).all(|k| raw::send_elements(&[change(&a, k % 2 == 1)]).is_ok())
        });
        assert!(out && pending(&ns, last), "round {round}");
    }
    inside(&ns, move || raw::send_elements(&[change(&a, false)])).unwrap();
    assert!(!pending(&ns, last));

    // Removing what is gone (alone or in a batch) is fine, and the rest of the batch happens.
    let b: IpAddr = "10.16.0.2".parse().unwrap();
    inside(&ns, move || {
        raw::send_elements(&[change(&a, false)]).unwrap();
        raw::send_elements(&[change(&a, false), change(&b, false)]).unwrap();
    });
    assert!(!pending(&ns, "10.16.0.2") && pending(&ns, "10.16.0.3"));

    // No table: a clear error; once it is back the same thread's next batch works.
    let e = inside(&ns, move || {
        raw::delete_table().unwrap();
        let e = raw::send_elements(&[change(&a, true)])
            .unwrap_err()
            .to_string();
        raw::apply_script(&script).unwrap();
        raw::send_elements(&[change(&a, false)]).map(|()| e)
    })
    .unwrap();
    assert!(e.contains("adding 10.16.11.185 to set mfa_pending4"), "{e}");
    assert!(!pending(&ns, last) && pending(&ns, "10.16.0.2"));
}
