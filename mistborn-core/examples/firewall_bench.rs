//! Times Mistborn's firewall on nftables (run inside a throwaway network namespace by
//! `bench/firewall.sh`): a full atomic apply of N peers + M Coppercloud CIDRs, and one MFA toggle
//! (one set element over netlink) with the peers' addresses in the set; beside the nft CLI doing
//! the same toggle.
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

fn ms(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1000.0
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
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
    let input = PolicyInput {
        tunnel_interface: "mistborn0".into(),
        wireguard_port: 51820,
        subnet_v4: "10.16.0.0/16".parse().unwrap(),
        subnet_v6: "fd16::/64".parse().unwrap(),
        external_interface: Some("eth0".into()),
        admin_source: None,
        ssh_port: 22,
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

    let addr = IpAddr::V4(Ipv4Addr::from(
        0x0a10_0000 + 2 + u32::try_from(peers / 2).unwrap(),
    ));
    let mut toggles = Vec::new();
    for i in 0..40 {
        let t = Instant::now();
        raw::send_elements(&[ElementChange {
            set: AddressSet::MfaPending,
            address: addr,
            add: i % 2 == 1,
        }])
        .unwrap();
        toggles.push(ms(t));
    }
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
        "| MFA toggle, one element over netlink (rustables), median of 40 | {:.2} ms (max {:.2}) |",
        median(toggles.clone()),
        toggles.iter().cloned().fold(0.0, f64::max)
    );
    println!("| same toggle with the nft CLI (delete / add) | {cli_del:.0} / {cli_add:.0} ms |");
    raw::delete_table().unwrap();
}
