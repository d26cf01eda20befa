//! IP forwarding for real: the firewall plane, running in a server namespace given by option,
//! turns IPv4 and IPv6 forwarding on there once its table is in force, raises `accept_ra` from
//! 1 to 2 on the external interface first (so IPv6 router advertisements keep counting), and
//! leaves the host's own namespace alone; with `firewall.ip_forwarding = false` it only reports.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use mistborn_core::firewall::{FirewallOptions, FirewallPlane};
use mistborn_core::{Config, Mistborn};
use mistborn_system_tests::{Netns, require, unique, veth};

/// A sysctl as `ns` sees it (`sysctl -n`, inside).
fn sysctl(ns: &Netns, key: &str) -> String {
    ns.exec_ok(&["sysctl", "-n", key]).trim().to_string()
}

/// The host's own value, read from this (host-namespace) process.
fn host(key: &str) -> String {
    std::fs::read_to_string(format!("/proc/sys/{}", key.replace('.', "/")))
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|e| format!("unreadable: {e}"))
}

const KEYS: [&str; 2] = ["net.ipv4.ip_forward", "net.ipv6.conf.all.forwarding"];

/// A server namespace whose default routes (IPv4 and IPv6) leave through `ext`, with
/// `accept_ra = 1` there, as on a host that takes its IPv6 route from SLAAC.
fn server() -> (Netns, Netns, String) {
    let srv = Netns::new("mbfws");
    let up = Netns::new("mbfwu");
    let (ext, _) = veth(&srv, "203.0.113.1/24", &up, "203.0.113.80/24");
    srv.exec_ok(&["ip", "route", "add", "default", "via", "203.0.113.80"]);
    srv.exec_ok(&[
        "ip",
        "-6",
        "addr",
        "add",
        "2001:db8:1::1/64",
        "dev",
        &ext,
        "nodad",
    ]);
    srv.exec_ok(&[
        "ip",
        "-6",
        "route",
        "add",
        "default",
        "via",
        "2001:db8:1::80",
    ]);
    srv.exec_ok(&["sysctl", "-qw", &format!("net.ipv6.conf.{ext}.accept_ra=1")]);
    for k in KEYS {
        assert_eq!(sysctl(&srv, k), "0", "{k} is on in a fresh namespace");
    }
    (srv, up, ext)
}

async fn mistborn(dir: &std::path::Path, forwarding: bool) -> Mistborn {
    let mut config = Config {
        data_dir: dir.join("data"),
        ..Config::default()
    };
    config.wireguard.interface = unique("mbfw");
    config.firewall.ip_forwarding = forwarding;
    Mistborn::open(config).await.unwrap()
}

fn options(ns: &Netns) -> FirewallOptions {
    FirewallOptions {
        netns: Some(ns.path()),
        check_interval: Duration::from_millis(300),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn firewall_turns_forwarding_on_in_its_namespace_only() {
    if !require(
        "firewall_turns_forwarding_on_in_its_namespace_only",
        &["ip", "nft", "sysctl"],
    ) {
        return;
    }
    let host_before: Vec<String> = KEYS.iter().map(|k| host(k)).collect();
    let (srv, _up, ext) = server();
    let dir = tempfile::tempdir().unwrap();
    let m = mistborn(dir.path(), true).await;
    let fw = FirewallPlane::start_with(&m, options(&srv));
    let st = fw.settled().await;
    assert!(st.on, "{st:?}");
    let f = st
        .forwarding
        .clone()
        .expect("forwarding checked behind the table");
    assert!(f.ipv4 && f.ipv6 && f.reason.is_none(), "{f:?}");
    assert_eq!(f.accept_ra_raised, vec![ext.clone()], "{f:?}");
    for k in KEYS {
        assert_eq!(sysctl(&srv, k), "1", "{k} in the server namespace");
    }
    assert_eq!(
        sysctl(&srv, &format!("net.ipv6.conf.{ext}.accept_ra")),
        "2",
        "accept_ra not raised before forwarding"
    );
    // The route a router advertisement would refresh is still there.
    assert!(
        srv.exec_ok(&["ip", "-6", "route", "show", "default"])
            .contains(&ext)
    );

    // Turned off behind its back: the next check turns it on again.
    srv.exec_ok(&["sysctl", "-qw", "net.ipv4.ip_forward=0"]);
    let st = fw.resync().await;
    assert!(st.forwarding.as_ref().is_some_and(|f| f.ipv4), "{st:?}");
    assert_eq!(sysctl(&srv, "net.ipv4.ip_forward"), "1");

    // Stopping leaves it on, like the table (a restart must not cut clients off).
    fw.stop().await;
    for k in KEYS {
        assert_eq!(sysctl(&srv, k), "1", "{k} after stop");
    }
    let host_after: Vec<String> = KEYS.iter().map(|k| host(k)).collect();
    assert_eq!(host_before, host_after, "the host's own forwarding changed");
    m.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarding_off_by_config_is_only_reported() {
    if !require(
        "forwarding_off_by_config_is_only_reported",
        &["ip", "nft", "sysctl"],
    ) {
        return;
    }
    let (srv, _up, ext) = server();
    let dir = tempfile::tempdir().unwrap();
    let m = mistborn(dir.path(), false).await;
    let fw = FirewallPlane::start_with(&m, options(&srv));
    let st = fw.settled().await;
    assert!(st.on, "{st:?}");
    let f = st.forwarding.clone().unwrap();
    assert!(!f.ipv4 && !f.ipv6, "{f:?}");
    assert!(
        f.reason
            .as_deref()
            .is_some_and(|r| r.contains("firewall.ip_forwarding is false")),
        "{f:?}"
    );
    for k in KEYS {
        assert_eq!(sysctl(&srv, k), "0", "{k} changed though not managed");
    }
    assert_eq!(sysctl(&srv, &format!("net.ipv6.conf.{ext}.accept_ra")), "1");
    fw.stop().await;
    m.close().await;
}
