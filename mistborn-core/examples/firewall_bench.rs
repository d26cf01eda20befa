//! Times Mistborn's firewall on nftables (run inside a throwaway network namespace by
//! `bench/firewall.sh`): a full atomic apply of N peers + M Coppercloud CIDRs, and one MFA toggle
//! (one set element over netlink) with 0, 1,000 and N addresses in the set; beside a fresh netlink
//! socket per toggle (how it was done before) and the nft CLI doing the same toggle.
#![allow(clippy::unwrap_used, clippy::print_stdout)]

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;
use std::time::Instant;

use mistborn_core::firewall::{
    AddressSet, ElementChange, ListMode, ListRule, PolicyInput, ProfileRule, parse_list, policy,
    raw, ruleset,
};
use mistborn_core::peers::{ListenPort, PeerKind};
use rustables::set::SetBuilder;
use rustables::{Batch, MsgType, ProtocolFamily, Table};

fn ms(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1000.0
}

const TOGGLES: usize = 200;

fn load() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

/// "median ms (p90 ms)".
fn stats(v: &[f64]) -> String {
    let mut v = v.to_vec();
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    format!("{:.3} ({:.3})", v[v.len() / 2], v[v.len() * 9 / 10])
}

/// Removals (a login) and additions (a sign-out) of a toggle run, as "del / add" stats.
fn del_add(v: &[(bool, f64)]) -> String {
    let pick = |add: bool| -> Vec<f64> {
        v.iter()
            .filter(|(a, _)| *a == add)
            .map(|(_, t)| *t)
            .collect()
    };
    format!("{} / {} ms", stats(&pick(false)), stats(&pick(true)))
}

/// Times `n` toggles of `addr` in the MFA set (adding first when it is absent).
fn toggle(
    addr: IpAddr,
    present: bool,
    n: usize,
    mut send: impl FnMut(ElementChange),
) -> Vec<(bool, f64)> {
    (0..n)
        .map(|i| {
            let c = ElementChange {
                set: AddressSet::MfaPending,
                address: addr,
                add: (i % 2 == 0) != present,
            };
            let t = Instant::now();
            send(c);
            (c.add, ms(t))
        })
        .collect()
}

/// The previous hot path: one rustables `Batch::send` per toggle, which opens a netlink socket
/// and closes it after the acknowledgement.
fn fresh_socket(c: ElementChange) {
    let table = Table::new(ProtocolFamily::Inet).with_name("mistborn");
    let IpAddr::V4(a) = c.address else {
        unreachable!("the bench toggles an IPv4 address")
    };
    let mut b = SetBuilder::<Ipv4Addr>::new(c.set.set_name(false), &table).unwrap();
    b.add(&a);
    let mut elems = b.finish().1;
    elems.family = ProtocolFamily::Inet;
    let mut batch = Batch::new();
    batch.add(&elems, if c.add { MsgType::Add } else { MsgType::Del });
    batch.send().unwrap();
}

fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .map(|a| a.parse().unwrap())
        .collect();
    let peers = args.first().copied().unwrap_or(10_000);
    let cidrs = args.get(1).copied().unwrap_or(100_000);

    // Every peer MFA and signed out: all addresses sit in the MFA set (worst case for a toggle).
    let profiles: Vec<ProfileRule> = (0..peers)
        .map(|i| {
            let n = u32::try_from(i).unwrap() + 2;
            ProfileRule {
                address_v4: Ipv4Addr::from(0x0a10_0000 + n),
                address_v6: Ipv6Addr::from((0xfd16u128 << 112) + u128::from(n)),
                kind: PeerKind::Mfa,
                client_to_client: i % 10 == 0,
                listen_port: ListenPort::Default,
            }
        })
        .collect();
    // Non-overlapping CIDRs of mixed sizes, as in the nftables recipe.
    let mut text = String::with_capacity(cidrs * 20);
    for k in 0..cidrs {
        let j = (k * 7919) % cidrs;
        let a = Ipv4Addr::from(0x0100_0000 + u32::try_from(j).unwrap() * 4096);
        text.push_str(&format!("{a}/{}\n", [20, 22, 24, 32][j % 4]));
    }
    let t = Instant::now();
    let parsed = parse_list(&text).unwrap();
    let parse_ms = ms(t);
    let load_before = load();
    let input = PolicyInput {
        tunnel_interface: "mistborn0".into(),
        wireguard_port: 51820,
        subnet_v4: "10.16.0.0/16".parse().unwrap(),
        subnet_v6: "fd16::/64".parse().unwrap(),
        external_interface: Some("eth0".into()),
        admin_source: None,
        ssh_port: 22,
        redirect_interfaces: vec![],
        web_ports: vec![80, 443],
        container_bridges: vec!["docker0".into(), "br-*".into()],
        resolver_uid: None,
        profiles,
        open_addresses: BTreeSet::new(),
        lists: vec![ListRule {
            id: "bench".into(),
            mode: ListMode::Block,
            parsed: Arc::new(parsed),
        }],
    };
    let t = Instant::now();
    let p = policy(&input);
    let script = ruleset::render(&p);
    let render_ms = ms(t);
    let t = Instant::now();
    raw::apply_script(&script).unwrap();
    let apply_fresh = ms(t);
    let t = Instant::now();
    raw::apply_script(&script).unwrap();
    let apply_again = ms(t);
    // What the reconciler does: read the counters, carry them into the script, replace.
    let t = Instant::now();
    raw::replace_table(&p).unwrap();
    let replace_carrying = ms(t);
    let t = Instant::now();
    raw::read_carry().unwrap();
    let read_carry = ms(t);

    let addr = IpAddr::V4(Ipv4Addr::from(
        0x0a10_0000 + 2 + u32::try_from(peers / 2).unwrap(),
    ));
    // The toggle at several set sizes: the first `size` profiles stay pending, the rest have a
    // session. The toggled address is outside the pending ones at size 0.
    let mut sizes = vec![0, 1000.min(peers), peers];
    sizes.dedup();
    let mut toggle_rows = Vec::new();
    for &size in &sizes {
        let mut i = input.clone();
        i.open_addresses = i
            .profiles
            .iter()
            .skip(size)
            .flat_map(|p| [IpAddr::V4(p.address_v4), IpAddr::V6(p.address_v6)])
            .collect();
        let p = policy(&i);
        let pending = p.mfa_pending.iter().filter(|a| a.is_ipv4()).count();
        raw::apply_script(&ruleset::render(&p)).unwrap();
        let present = p.mfa_pending.contains(&addr);
        let ours = toggle(addr, present, TOGGLES, |c| {
            raw::send_elements(&[c]).unwrap()
        });
        let fresh = toggle(addr, present, TOGGLES, fresh_socket);
        toggle_rows.push((pending, ours, fresh));
    }
    // The last table has `peers` pending addresses, `addr` among them.
    let cli = |verb: &str| {
        let t = Instant::now();
        let ok = std::process::Command::new("nft")
            .args([
                verb,
                "element",
                "inet",
                "mistborn",
                "mfa_pending4",
                &format!("{{ {addr} }}"),
            ])
            .status()
            .unwrap()
            .success();
        assert!(ok);
        ms(t)
    };
    let cli_del = cli("delete");
    let cli_add = cli("add");

    // The IPv4 probe set full (65,535 source . port pairs): what a replace then reads and
    // carries (the most counted of them).
    let p = policy(&input);
    raw::apply_script(&ruleset::render(&p)).unwrap();
    let probes: Vec<String> = (0..ruleset::PROBE_SET_SIZE)
        .map(|k| {
            let a = Ipv4Addr::from(0xc633_6400 + k / 1000);
            format!(
                "{a} . tcp . {} counter packets {} bytes 60",
                1 + k % 1000,
                1 + k % 7
            )
        })
        .collect();
    raw::apply_script(&format!(
        "add element inet mistborn probes4 {{ {} }}\n",
        probes.join(", ")
    ))
    .unwrap();
    let t = Instant::now();
    let read = raw::read_carry().unwrap();
    let read_full = ms(t);
    assert_eq!(read.probes.len(), probes.len());
    let t = Instant::now();
    raw::replace_table(&p).unwrap();
    let replace_full = ms(t);
    println!("load average: {load_before} (start), {} (end)", load());
    println!();
    println!("| Mistborn (nftables) | {peers} peers, {cidrs} CIDRs |");
    println!("|---|---|");
    println!("| parse + merge list | {parse_ms:.0} ms |");
    println!(
        "| policy + render script ({} KB) | {render_ms:.0} ms |",
        script.len() / 1024
    );
    println!("| full atomic apply, fresh (`nft -f`, one transaction) | {apply_fresh:.0} ms |");
    println!("| full atomic apply, replacing the populated table | {apply_again:.0} ms |");
    println!(
        "| same, carrying the counters over (read + render + apply, what the daemon does) | {replace_carrying:.0} ms |"
    );
    println!(
        "| reading the counters to carry (netlink dumps: named counters, probe sets) | {read_carry:.2} ms |"
    );
    println!(
        "| same two, with the IPv4 probe set full ({} elements): read / replace carrying the top {} | {read_full:.0} / {replace_full:.0} ms |",
        probes.len(),
        ruleset::MAX_CARRIED_PROBES
    );
    for (pending, ours, fresh) in &toggle_rows {
        println!(
            "| MFA toggle (netlink), {pending} addresses in the set: delete / add, median (p90) | {} |",
            del_add(ours)
        );
        println!(
            "| same, a new socket per toggle (rustables `Batch::send`, before) | {} |",
            del_add(fresh)
        );
    }
    println!("| same toggle with the nft CLI (delete / add) | {cli_del:.0} / {cli_add:.0} ms |");
    raw::delete_table().unwrap();
}
