//! The firewall for real: Mistborn's `inet mistborn` table in a server namespace that runs the
//! WireGuard data plane (wireguard-go), two clients on the tunnel and an "internet" namespace
//! with a web server and a UDP service on port 53. Checks masquerade, MFA gating by login and
//! sign-out (one set element over netlink), client-to-client, the DNS egress lock, a Coppercloud
//! block list (and a malformed update that keeps the last good copy), probe metrics, and that a
//! restart re-applies an identical table.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use mistborn_core::firewall::{FirewallOptions, FirewallPlane, ListUpdate, NewList};
use mistborn_core::peers::{NewPeer, PeerKind, PeerUpdate};
use mistborn_core::wireguard::{DataPlane, DataPlaneOptions};
use mistborn_core::{Actor, Config, Mistborn};
use mistborn_system_tests::{
    Gateway, Netns, client_from_config, eventually, require, run_ok, unique,
};

const INET: &str = Gateway::INET;
const SUBNETS: [&str; 3] = ["10.15.91.0/24", "fd15:91::/64", "203.0.113.0/24"];

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn base32_decode(s: &str) -> Vec<u8> {
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let (mut bits, mut acc, mut out) = (0u32, 0u64, Vec::new());
    for c in s.trim_end_matches('=').bytes() {
        acc = (acc << 5) | A.iter().position(|x| *x == c).unwrap() as u64;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    out
}

/// Waits until the table's client-to-client set holds exactly `addrs` (IPv4).
async fn c2c_in_force(fw: &FirewallPlane, addrs: &[&str]) {
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let v = fw.view().await.unwrap();
        let v4: Vec<&str> = v
            .client_to_client
            .iter()
            .map(String::as_str)
            .filter(|a| !a.contains(':'))
            .collect();
        if v4 == addrs {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "client-to-client {v4:?}, want {addrs:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn firewall_gates_tunnel_clients_for_real() {
    if !require(
        "firewall_gates_tunnel_clients_for_real",
        &["ip", "wg", "wireguard-go", "nft", "ping", "curl", "python3"],
    ) {
        return;
    }
    let g = Gateway::new("mbf");
    let (srv, cli1, cli2, inet) = (&g.srv, &g.cli1, &g.cli2, &g.inet);
    let dir = tempfile::tempdir().unwrap();
    let _web = g.web_server(dir.path());
    let _dns_outside = inet.udp_echo(INET, 53);

    let iface = unique("mbw");
    let mut config = Config {
        data_dir: dir.path().join("data"),
        endpoint: "10.231.1.1".into(),
        ..Config::default()
    };
    config.wireguard.interface = iface.clone();
    config.wireguard.backend = mistborn_core::config::DataplaneBackend::Userspace;
    config.wireguard.status_interval_ms = 200;
    // The wireguard-go the data plane starts goes with it at the end.
    config.wireguard.keep_on_stop = false;
    let m = Mistborn::open(config.clone()).await.unwrap();
    let p1 = m
        .peers()
        .create(
            &Actor::System,
            NewPeer {
                user: Some("admin".into()),
                name: "wgonly".into(),
                ..NewPeer::default()
            },
        )
        .await
        .unwrap();
    let p2 = m
        .peers()
        .create(
            &Actor::System,
            NewPeer {
                user: Some("admin".into()),
                name: "mfa".into(),
                kind: Some(PeerKind::Mfa),
                ..NewPeer::default()
            },
        )
        .await
        .unwrap();

    let mut dpo = DataPlaneOptions::from_config(m.config());
    dpo.netns = Some(srv.path());
    let dp = DataPlane::start_with(&m, dpo);
    assert!(dp.settled().await.on);
    // Mistborn's resolver stands in as a UDP echo on the tunnel address (bound once it exists).
    let _resolver = srv.udp_echo("10.15.91.1", 53);
    std::thread::sleep(Duration::from_millis(300));
    let fwo = FirewallOptions {
        netns: Some(srv.path()),
        check_interval: Duration::from_millis(500),
    };
    let fw = FirewallPlane::start_with(&m, fwo.clone());
    let st = fw.settled().await;
    assert!(st.on, "{st:?}");
    assert_eq!(
        st.external_interface.as_deref(),
        Some(g.ext.as_str()),
        "default route found by netlink"
    );
    // The harness leaves forwarding off in the server: the plane turned it on.
    assert!(
        st.forwarding.as_ref().is_some_and(|f| f.ipv4 && f.ipv6),
        "{st:?}"
    );

    let mut c1 = m
        .peers()
        .client_config(&Actor::System, p1.id.as_str())
        .await
        .unwrap()
        .render();
    let mut c2 = m
        .peers()
        .client_config(&Actor::System, p2.id.as_str())
        .await
        .unwrap()
        .render();
    // Client 2 dials the server over its own veth.
    c2 = c2.replace("Endpoint = 10.231.1.1", "Endpoint = 10.231.2.1");
    c1 = c1.replace("AllowedIPs = ", "AllowedIPs = 203.0.113.0/24, ");
    c2 = c2.replace("AllowedIPs = ", "AllowedIPs = 203.0.113.0/24, ");
    let _w1 = client_from_config(cli1, &c1, dir.path(), &SUBNETS);
    let _w2 = client_from_config(cli2, &c2, dir.path(), &SUBNETS);
    let a1 = p1.address_v4.to_string();
    let a2 = p2.address_v4.to_string();
    let web = Gateway::WEB;

    // WireGuard-only profile: the internet through masquerade.
    eventually("wg-only client reaches the internet", true, || {
        cli1.fetch_ok(web)
    });
    // MFA profile: Mistborn only (ping, DNS), not the internet, not SSH.
    assert!(
        cli2.ping("10.15.91.1", 2, 2),
        "MFA client cannot reach Mistborn"
    );
    assert!(cli2.udp_answers("10.15.91.1", 53));
    assert!(
        !cli2.fetch_ok(web),
        "MFA client reached the internet before login"
    );

    // Restart: the same table again.
    let before = fw.table_text().await.unwrap().unwrap();
    fw.stop().await;
    let fw = FirewallPlane::start_with(&m, fwo.clone());
    assert!(fw.settled().await.on);
    assert_eq!(
        fw.table_text().await.unwrap().unwrap(),
        before,
        "restart changed the table"
    );

    // Login opens, sign-out closes: one element each.
    let t = now();
    let e = m.auth().enroll(&Actor::System, "admin", t).await.unwrap();
    let secret =
        mistborn_core::auth::TotpSecret::from_bytes(base32_decode(&e.secret_base32)).unwrap();
    m.auth()
        .confirm(
            &Actor::System,
            "admin",
            &secret.code_at(t as u64).unwrap(),
            t,
        )
        .await
        .unwrap();
    let t = t + 30;
    m.auth()
        .login(p2.address_v4.into(), &secret.code_at(t as u64).unwrap(), t)
        .await
        .unwrap();
    eventually("MFA client reaches the internet after login", true, || {
        cli2.fetch_ok(web)
    });
    // The kernel has the element before the task counts it: poll.
    eventually("login went through set elements", true, || {
        fw.status().element_updates >= 1
    });
    assert_eq!(fw.status().full_applies, 1, "login rebuilt the table");
    m.auth().sign_out(p2.address_v4.into(), t).await.unwrap();
    eventually("MFA client cut off after sign-out", false, || {
        cli2.fetch_ok(web)
    });
    assert!(cli2.ping("10.15.91.1", 1, 2));

    // Client-to-client: only between two devices that both opted in. One flag is not enough
    // (it used to be: the flagged device reached the other one).
    assert!(!cli1.ping(&a2, 1, 1), "clients reached each other");
    let c2c = |on: bool| PeerUpdate {
        client_to_client: Some(on),
        ..PeerUpdate::default()
    };
    m.peers()
        .update(&Actor::System, p1.id.as_str(), c2c(true))
        .await
        .unwrap();
    c2c_in_force(&fw, &[&a1]).await;
    assert!(
        !cli1.ping(&a2, 2, 1),
        "a flagged client reached one that never opted in"
    );
    // Both flagged, but the MFA client is signed out: gated both ways.
    m.peers()
        .update(&Actor::System, p2.id.as_str(), c2c(true))
        .await
        .unwrap();
    c2c_in_force(&fw, &[&a1, &a2]).await;
    assert!(!cli1.ping(&a2, 1, 1), "a signed-out MFA client was reached");
    assert!(
        !cli2.ping(&a1, 1, 1),
        "a signed-out MFA client opened a flow"
    );
    // Signed in: the two opted-in devices talk, both ways.
    let t = t + 30;
    m.auth()
        .login(p2.address_v4.into(), &secret.code_at(t as u64).unwrap(), t)
        .await
        .unwrap();
    eventually("client-to-client with both flags", true, || {
        cli1.ping(&a2, 1, 1)
    });
    assert!(cli2.ping(&a1, 1, 1), "client-to-client one way only");
    m.peers()
        .update(&Actor::System, p1.id.as_str(), c2c(false))
        .await
        .unwrap();
    eventually("client-to-client off again", false, || cli2.ping(&a1, 1, 1));

    // DNS egress lock: the outside port 53 is unreachable, Mistborn's is fine.
    assert!(!cli1.udp_answers(INET, 53), "DNS left the tunnel");
    assert!(cli1.udp_answers("10.15.91.1", 53));

    // Coppercloud: a block list with the web server stops it; a malformed update is refused with
    // its line number and the last good copy stays; deleting the list restores traffic.
    let t = now();
    m.firewall()
        .add_list(
            &Actor::System,
            NewList {
                name: "bad-hosts".into(),
                content: Some(format!("# test\n{INET}\n2001:db8::/32\n")),
                ..NewList::default()
            },
            t,
        )
        .await
        .unwrap();
    eventually("block list stops the web server", false, || {
        cli1.fetch_ok(web)
    });
    let e = m
        .firewall()
        .update_list(
            &Actor::System,
            "bad-hosts",
            ListUpdate {
                content: Some("192.0.2.1\nnonsense\n".into()),
                ..ListUpdate::default()
            },
            t,
        )
        .await
        .unwrap_err();
    assert!(e.to_string().contains("line 2"), "{e}");
    fw.resync().await;
    assert!(!cli1.fetch_ok(web), "the last good list was dropped");
    let hits = fw.metrics(10).await.unwrap().lists;
    assert!(
        hits.iter().any(|h| h.packets > 0),
        "no hits counted: {hits:?}"
    );
    m.firewall()
        .delete_list(&Actor::System, "bad-hosts")
        .await
        .unwrap();
    eventually("traffic restored without the list", true, || {
        cli1.fetch_ok(web)
    });

    // Probes from the internet to closed ports show up with source and port.
    for port in ["2222", "3389"] {
        // Dropped: the fetch fails, and it is counted.
        let _ = inet.fetch_ok(&format!("http://203.0.113.1:{port}/"));
    }
    let _ = inet.udp_answers("203.0.113.1", 5060);
    let metrics = fw.metrics(10).await.unwrap();
    for (proto, port) in [("tcp", 2222), ("tcp", 3389), ("udp", 5060)] {
        assert!(
            metrics
                .probes
                .iter()
                .any(|p| p.source.to_string() == INET && p.protocol == proto && p.port == port),
            "{proto}/{port} missing from {:?}",
            metrics.probes
        );
    }
    assert_eq!(metrics.top_sources[0].source.to_string(), INET);

    // Nothing outside the table was touched: the host ruleset has no mistborn table from us.
    let host = run_ok(&["nft", "list", "tables"]);
    assert!(
        !host.contains("inet mistborn") || std::env::var("MISTBORN_HOST_HAS_TABLE").is_ok(),
        "{host}"
    );
    fw.stop().await;
    dp.stop().await;
}

/// Fail closed: while the firewall cannot apply (here it cannot even enter its namespace), the
/// data plane brings the interface up but configures no peer, and says why; with
/// `firewall.fail_closed = false` the peers come up regardless.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_peer_while_the_firewall_cannot_apply() {
    if !require(
        "no_peer_while_the_firewall_cannot_apply",
        &["ip", "wg", "wireguard-go", "nft"],
    ) {
        return;
    }
    let srv = Netns::new("mbfc");
    let dir = tempfile::tempdir().unwrap();
    let iface = unique("mbfc");
    let mut config = Config {
        data_dir: dir.path().join("data"),
        endpoint: "10.231.1.1".into(),
        ..Config::default()
    };
    config.wireguard.interface = iface.clone();
    config.wireguard.backend = mistborn_core::config::DataplaneBackend::Userspace;
    config.wireguard.status_interval_ms = 100;
    config.wireguard.keep_on_stop = false;
    let broken = FirewallOptions {
        netns: Some(std::path::PathBuf::from(format!(
            "/run/netns/{}-gone",
            srv.name
        ))),
        check_interval: Duration::from_millis(200),
    };
    for fail_closed in [true, false] {
        config.firewall.fail_closed = fail_closed;
        let m = Mistborn::open(config.clone()).await.unwrap();
        let profiles = m.peers().list(&Actor::System).await.unwrap();
        assert_eq!(profiles.len(), 1, "the admin's default profile");
        let fw = FirewallPlane::start_with(&m, broken.clone());
        let fst = fw.settled().await;
        assert!(!fst.on, "{fst:?}");
        let mut dpo = DataPlaneOptions::from_config(m.config());
        dpo.netns = Some(srv.path());
        dpo.gate = Some(fw.handle().peer_gate());
        let dp = DataPlane::start_with(&m, dpo);
        let st = dp.settled().await;
        // The interface is up either way (wireguard-go answers `wg show`).
        let peers = || srv.exec_ok(&["wg", "show", &iface, "peers"]);
        if fail_closed {
            assert!(!st.on, "{st:?}");
            let why = st.reason.clone().unwrap_or_default();
            assert!(
                why.contains("firewall") && why.contains("-gone"),
                "the status does not say why: {why}"
            );
            // Several ticks later still nothing.
            tokio::time::sleep(Duration::from_millis(500)).await;
            assert_eq!(peers().trim(), "", "a peer came up without the firewall");
        } else {
            assert!(st.on, "{st:?}");
            assert_eq!(peers().trim(), profiles[0].public_key.to_base64());
        }
        fw.stop().await;
        dp.stop().await;
        m.close().await;
    }
}
