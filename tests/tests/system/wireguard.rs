//! The WireGuard data plane for real: the core reconciler drives a wireguard-go interface in a
//! server namespace; a client in a second namespace (joined by a veth pair) is configured from
//! the profile's rendered client config and pings the server's tunnel addresses.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use mistborn_core::peers::NewPeer;
use mistborn_core::users::{NewUser, Role};
use mistborn_core::wireguard::{DataPlane, DataPlaneOptions};
use mistborn_core::{Actor, Config, Mistborn};
use mistborn_system_tests::{Netns, WireguardGo, client_from_config, require, veth, wg_peers};

const SUBNETS: [&str; 2] = ["10.15.91.0/24", "fd15:91::/64"];
const SERVER_V4: &str = "10.15.91.1";
const SERVER_V6: &str = "fd15:91::1";

struct World {
    srv: Netns,
    cli: Netns,
    dir: tempfile::TempDir,
    config: Config,
}

fn world(interface: &str) -> World {
    let srv = Netns::new("mbsrv");
    let cli = Netns::new("mbcli");
    veth(&srv, "10.231.0.1/24", &cli, "10.231.0.2/24");
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config {
        data_dir: dir.path().join("data"),
        endpoint: "10.231.0.1".into(),
        ..Config::default()
    };
    config.wireguard.interface = interface.to_string();
    config.wireguard.backend = mistborn_core::config::DataplaneBackend::Userspace;
    config.wireguard.status_interval_ms = 200;
    World {
        srv,
        cli,
        dir,
        config,
    }
}

fn start(m: &Mistborn, w: &World) -> DataPlane {
    let mut opts = DataPlaneOptions::from_config(m.config());
    opts.netns = Some(w.srv.path());
    DataPlane::start_with(m, opts)
}

async fn create(m: &Mistborn, user: &str, name: &str) -> mistborn_core::peers::Peer {
    m.peers()
        .create(
            &Actor::System,
            NewPeer {
                user: Some(user.into()),
                name: name.into(),
                ..NewPeer::default()
            },
        )
        .await
        .unwrap()
}

async fn rendered(m: &Mistborn, id: &str) -> String {
    m.peers()
        .client_config(&Actor::System, id)
        .await
        .unwrap()
        .render()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tunnel_status_per_viewer_and_delete_cuts_off() {
    if !require(
        "tunnel_status_per_viewer_and_delete_cuts_off",
        &["ip", "wg", "wireguard-go", "ping"],
    ) {
        return;
    }
    let iface = mistborn_system_tests::unique("mbs");
    let mut w = world(&iface);
    // Taken down at stop on purpose (the daemon's default keeps it up for the next start).
    w.config.wireguard.keep_on_stop = false;
    let m = Mistborn::open(w.config.clone()).await.unwrap();
    let bob = m
        .users()
        .create(
            &Actor::System,
            NewUser {
                username: "bob".into(),
                password: "bob-password-1".into(),
                role: Role::Regular,
            },
        )
        .await
        .unwrap();
    let bob_actor = m.users().actor_for(&bob.id).await.unwrap();
    let bobs = create(&m, "bob", "phone").await;
    let laptop = create(&m, "admin", "laptop").await;

    // The data plane spawns wireguard-go itself here.
    let dp = start(&m, &w);
    let st = dp.settled().await;
    assert!(st.on, "data plane off: {st:?}");
    assert_eq!(st.backend.map(|b| b.as_str()), Some("userspace"));
    let stored: Vec<String> = {
        let mut v: Vec<String> = m
            .peers()
            .list(&Actor::System)
            .await
            .unwrap()
            .iter()
            .map(|p| p.public_key.to_string())
            .collect();
        v.sort();
        v
    };
    assert_eq!(wg_peers(&w.srv, &iface), stored);
    // Addresses and link state came through netlink.
    let addrs = w.srv.exec_ok(&["ip", "addr", "show", "dev", &iface]);
    assert!(
        addrs.contains("10.15.91.1/24") && addrs.contains("fd15:91::1/64"),
        "{addrs}"
    );
    assert!(addrs.contains(",UP"), "{addrs}");

    // A bob viewer subscribed from the start must never see admin's profile.
    let mut bob_stream = m.status().subscribe(bob_actor.clone());
    let bob_views = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = bob_views.clone();
    let bob_watch = tokio::spawn(async move {
        while let Some(view) = bob_stream.next().await {
            assert!(
                view.peers.iter().all(|p| p.username.as_str() == "bob"),
                "bob saw {:?}",
                view.peers
            );
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
    });

    let client = client_from_config(
        &w.cli,
        &rendered(&m, laptop.id.as_str()).await,
        w.dir.path(),
        &SUBNETS,
    );
    assert!(
        w.cli.ping(SERVER_V4, 3, 2),
        "no IPv4 ping through the tunnel"
    );
    assert!(
        w.cli.ping(SERVER_V6, 3, 2),
        "no IPv6 ping through the tunnel"
    );

    // The status stream shows the handshake and transfer for that profile (superuser view).
    let mut admin_stream = m.status().subscribe(Actor::System);
    let deadline = Instant::now() + Duration::from_secs(5);
    let seen = loop {
        let view = tokio::time::timeout(Duration::from_secs(5), admin_stream.next())
            .await
            .unwrap()
            .unwrap();
        let p = view
            .peers
            .iter()
            .find(|p| p.peer_id == laptop.id)
            .unwrap()
            .clone();
        if p.latest_handshake.is_some() && p.rx_bytes > 0 && p.tx_bytes > 0 {
            break p;
        }
        assert!(Instant::now() < deadline, "no handshake in status: {p:?}");
    };
    assert!(seen.connected);
    assert_eq!(
        seen.endpoint.map(|e| e.ip().to_string()),
        Some("10.231.0.2".into())
    );
    // Bob's own view: only his profile, and it never connected.
    let bob_view = m.status().current(&bob_actor);
    assert_eq!(bob_view.peers.len(), 1);
    assert_eq!(bob_view.peers[0].peer_id, bobs.id);
    assert!(bob_view.peers[0].latest_handshake.is_none());

    // Deleting the profile cuts the device off within a second.
    let t0 = Instant::now();
    m.peers()
        .delete(&Actor::System, laptop.id.as_str())
        .await
        .unwrap();
    let key = laptop.public_key.to_string();
    while wg_peers(&w.srv, &iface).contains(&key) {
        assert!(
            t0.elapsed() < Duration::from_secs(1),
            "peer still on the interface after 1 s"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    let cut = t0.elapsed();
    assert!(cut < Duration::from_secs(1), "took {cut:?}");
    assert!(
        !w.cli.ping(SERVER_V4, 2, 1),
        "traffic still flows after the profile was deleted"
    );
    eprintln!("profile deleted -> peer gone from the interface in {cut:?}");

    dp.stop().await;
    // The stop's status change (data plane off) reaches bob's watcher asynchronously.
    let deadline = Instant::now() + Duration::from_secs(2);
    while bob_views.load(std::sync::atomic::Ordering::SeqCst) < 2 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    if bob_watch.is_finished() {
        bob_watch.await.unwrap(); // re-raises the watcher's failed assertion
    } else {
        bob_watch.abort();
    }
    assert!(bob_views.load(std::sync::atomic::Ordering::SeqCst) >= 2);
    drop(client);
    // keep_on_stop = false: the wireguard-go the data plane started is gone with it.
    assert!(w.srv.exec(&["wg", "show", &iface]).status.code() != Some(0));
    assert!(!std::path::Path::new(&format!("/run/wireguard/{iface}.sock")).exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_restores_exactly_the_stored_peers_and_skips_corrupt_rows() {
    if !require(
        "restart_restores_exactly_the_stored_peers_and_skips_corrupt_rows",
        &["ip", "wg", "wireguard-go", "ping"],
    ) {
        return;
    }
    // The server's wireguard-go is started outside the daemon, so it (and the peers on it)
    // survive the daemon's restart, like a kernel interface would.
    let w = world("placeholder");
    let server_wg = WireguardGo::start(&w.srv, "mbs");
    let mut config = w.config.clone();
    config.wireguard.interface = server_wg.name.clone();
    let iface = server_wg.name.clone();

    let m = Mistborn::open(config.clone()).await.unwrap();
    let good = create(&m, "admin", "good").await;
    let other = create(&m, "admin", "other").await;
    let bad = create(&m, "admin", "bad").await;
    let dp = start(&m, &w);
    assert!(dp.settled().await.on);
    assert_eq!(wg_peers(&w.srv, &iface).len(), 4); // admin's default + 3

    // Daemon stops; meanwhile someone edits the interface and the database by hand.
    dp.stop().await;
    m.close().await;
    drop(m);
    let stray = mistborn_system_tests::wg_new_public_key();
    mistborn_system_tests::wg_set_peer(&w.srv, &iface, &stray, "10.15.91.200/32");
    w.srv.exec_ok(&[
        "wg",
        "set",
        &iface,
        "peer",
        &other.public_key.to_string(),
        "remove",
    ]);
    assert!(wg_peers(&w.srv, &iface).contains(&stray));
    let db = format!("sqlite://{}", config.data_dir.join("mistborn.db").display());
    let pool = sqlx::SqlitePool::connect(&db).await.unwrap();
    sqlx::query("UPDATE peers SET public_key = 'corrupt!' WHERE id = ?")
        .bind(bad.id.as_str())
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;

    // Restart: exactly the stored, readable profiles are on the interface.
    let m = Mistborn::open(config.clone()).await.unwrap();
    let dp = start(&m, &w);
    let st = dp.settled().await;
    assert!(st.on, "{st:?}");
    assert_eq!(st.skipped.len(), 1, "{st:?}");
    assert_eq!(st.skipped[0].id, bad.id.as_str());
    assert!(
        st.skipped[0].reason.contains("public key"),
        "{:?}",
        st.skipped
    );
    let admin_default = m
        .peers()
        .find(&Actor::System, Some("admin"), "default")
        .await
        .unwrap();
    let mut want = vec![
        admin_default.public_key.to_string(),
        good.public_key.to_string(),
        other.public_key.to_string(),
    ];
    want.sort();
    assert_eq!(
        wg_peers(&w.srv, &iface),
        want,
        "stray left or stored peer missing"
    );
    // The others still come up: a client with the good profile gets through.
    let client = client_from_config(
        &w.cli,
        &rendered(&m, good.id.as_str()).await,
        w.dir.path(),
        &SUBNETS,
    );
    assert!(w.cli.ping(SERVER_V4, 3, 2));
    assert!(w.cli.ping(SERVER_V6, 3, 2));

    // Drift while running (a stray added by hand) is repaired by the next cycle.
    mistborn_system_tests::wg_set_peer(&w.srv, &iface, &stray, "10.15.91.201/32");
    dp.resync().await;
    assert!(!wg_peers(&w.srv, &iface).contains(&stray));
    dp.stop().await;
    // A clean stop keeps the interface up (wireguard.keep_on_stop, the default).
    assert_eq!(w.srv.exec(&["wg", "show", &iface]).status.code(), Some(0));
    assert!(
        w.cli.ping(SERVER_V4, 2, 2),
        "the tunnel went down with the stop"
    );

    // Taken down on purpose: even an adopted wireguard-go goes (it exits with its link).
    m.close().await;
    drop(m);
    config.wireguard.keep_on_stop = false;
    let m = Mistborn::open(config).await.unwrap();
    let dp = start(&m, &w);
    assert!(dp.settled().await.on);
    dp.stop().await;
    assert!(w.srv.exec(&["ip", "link", "show", &iface]).status.code() != Some(0));
    mistborn_system_tests::eventually("the adopted wireguard-go exits", false, || {
        std::path::Path::new(&format!("/run/wireguard/{iface}.sock")).exists()
    });
    drop(client);
    drop(server_wg);
}
