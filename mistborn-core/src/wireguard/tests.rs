//! Plan tests (pure, no root) and reconciler tests on the in-memory backend with a real SQLite
//! store. The real backends are tested in network namespaces in `tests/`.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use super::*;
use crate::crypto::{KeyPair, WgKey};
use crate::peers::{Peer, PeerId, SkippedProfile, StoredProfile};
use crate::users::UserId;

fn server() -> ServerSide {
    ServerSide {
        interface: "mbtest0".into(),
        private_key: KeyPair::generate().private,
        listen_port: 51820,
        address_v4: "10.15.91.1/24".parse().unwrap(),
        address_v6: "fd15:91::1/64".parse().unwrap(),
    }
}

fn profile(i: u8, user: &str) -> StoredProfile {
    StoredProfile {
        peer: Peer {
            id: PeerId(format!("00000000-0000-4000-8000-0000000000{i:02}")),
            user_id: UserId(user.into()),
            username: user.parse().unwrap(),
            name: format!("p{i}").parse().unwrap(),
            kind: Default::default(),
            client_to_client: false,
            listen_port: Default::default(),
            address_v4: format!("10.15.91.{}", i + 1).parse().unwrap(),
            address_v6: format!("fd15:91::{:x}", i + 1).parse().unwrap(),
            public_key: KeyPair::generate().public,
            server_generated_key: true,
            created_at: 0,
        },
        preshared_key: Some(WgKey::generate_preshared()),
    }
}

fn observed_of(d: &DesiredInterface) -> ObservedInterface {
    let mut o = ObservedInterface::default();
    o.apply_diff(&plan(d, &ObservedInterface::default()));
    o
}

#[test]
fn from_empty_sets_key_port_and_every_peer() {
    let s = server();
    let d = desired(
        s.clone(),
        (1..=3).map(|i| Ok(profile(i, "alice"))).collect(),
    );
    let diff = plan(&d, &ObservedInterface::default());
    assert_eq!(diff.private_key, Some(s.private_key.clone()));
    assert_eq!(diff.listen_port, Some(51820));
    assert_eq!(diff.add.len(), 3);
    assert!(diff.update.is_empty() && diff.remove.is_empty());
    let spec = &d.profiles_sorted()[0].spec;
    assert_eq!(
        spec.allowed_ips,
        vec![
            "10.15.91.2/32".parse().unwrap(),
            "fd15:91::2/128".parse().unwrap()
        ]
    );
    assert!(spec.preshared_key.is_some());
}

#[test]
fn in_sync_plans_nothing() {
    let d = desired(server(), (1..=5).map(|i| Ok(profile(i, "alice"))).collect());
    let o = observed_of(&d);
    let diff = plan(&d, &o);
    assert!(diff.is_empty(), "{diff:?}");
    assert_eq!(diff.summary(), "no change");
}

#[test]
fn adding_one_profile_touches_only_that_peer() {
    let s = server();
    let mut rows: Vec<_> = (1..=5).map(|i| Ok(profile(i, "alice"))).collect();
    let before = desired(s.clone(), rows.clone());
    let o = observed_of(&before);
    let new = profile(6, "bob");
    rows.push(Ok(new.clone()));
    let diff = plan(&desired(s, rows), &o);
    assert_eq!(diff.add.len(), 1);
    assert_eq!(diff.add[0].public_key, new.peer.public_key);
    assert!(diff.update.is_empty() && diff.remove.is_empty());
    assert!(diff.private_key.is_none() && diff.listen_port.is_none());
}

#[test]
fn deleted_and_stray_peers_are_removed() {
    let s = server();
    let rows: Vec<_> = (1..=3).map(|i| Ok(profile(i, "alice"))).collect();
    let mut o = observed_of(&desired(s.clone(), rows.clone()));
    let stray = KeyPair::generate().public;
    o.peers.insert(stray.clone(), ObservedPeer::default());
    let deleted = rows[0].as_ref().unwrap().peer.public_key.clone();
    let d = desired(s, rows[1..].to_vec());
    let diff = plan(&d, &o);
    let mut want = vec![stray, deleted];
    want.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
    assert_eq!(diff.remove, want);
    assert!(diff.add.is_empty() && diff.update.is_empty());
    o.apply_diff(&diff);
    assert!(plan(&d, &o).is_empty());
}

#[test]
fn changed_psk_or_allowed_ips_is_an_update_keeping_stats() {
    let s = server();
    let rows: Vec<_> = (1..=2).map(|i| Ok(profile(i, "alice"))).collect();
    let d = desired(s, rows);
    let mut o = observed_of(&d);
    let key = d.profiles_sorted()[0].spec.public_key.clone();
    let peer = o.peers.get_mut(&key).unwrap();
    peer.allowed_ips = vec!["10.99.0.1/32".parse().unwrap()];
    peer.rx_bytes = 42;
    let other = d.profiles_sorted()[1].spec.public_key.clone();
    o.peers.get_mut(&other).unwrap().preshared_key = None;
    let diff = plan(&d, &o);
    assert_eq!(diff.update.len(), 2);
    assert!(diff.add.is_empty() && diff.remove.is_empty());
    o.apply_diff(&diff);
    assert_eq!(o.peers[&key].rx_bytes, 42);
    assert!(plan(&d, &o).is_empty());
}

#[test]
fn wrong_key_or_port_is_corrected() {
    let s = server();
    let d = desired(s.clone(), vec![]);
    let mut o = observed_of(&d);
    o.listen_port = Some(1);
    o.private_key = Some(KeyPair::generate().private);
    let diff = plan(&d, &o);
    assert_eq!(diff.listen_port, Some(51820));
    assert_eq!(diff.private_key, Some(s.private_key));
}

#[test]
fn unusable_profiles_are_skipped_and_reported() {
    let s = server();
    let mut own = profile(2, "alice");
    own.peer.public_key = s.private_key.public();
    let a = profile(3, "alice");
    let mut dup = profile(4, "bob");
    dup.peer.public_key = a.peer.public_key.clone();
    let corrupt = SkippedProfile {
        id: "x".into(),
        user_id: None,
        reason: "corrupt stored data: bad key".into(),
    };
    let d = desired(
        s,
        vec![
            Ok(profile(1, "alice")),
            Ok(own),
            Ok(a),
            Ok(dup),
            Err(corrupt.clone()),
        ],
    );
    assert_eq!(d.peers.len(), 2);
    assert_eq!(d.skipped.len(), 3);
    assert!(d.skipped.contains(&corrupt));
    assert!(
        d.skipped
            .iter()
            .any(|s| s.reason.contains("server's own key"))
    );
    assert!(d.skipped.iter().any(|s| s.reason.contains("also used by")));
}

// ---- reconciler on the memory backend, with a real store ----

async fn open() -> (tempfile::TempDir, crate::Mistborn) {
    let dir = tempfile::tempdir().unwrap();
    let config = crate::Config {
        data_dir: dir.path().to_path_buf(),
        ..Default::default()
    };
    (dir, crate::Mistborn::open(config).await.unwrap())
}

fn memory_options(mem: &MemoryBackend) -> DataPlaneOptions {
    let mem = mem.clone();
    DataPlaneOptions {
        status_interval: Duration::from_millis(50),
        netns: None,
        backend: Some(Arc::new(move || {
            Ok(Box::new(mem.clone()) as Box<dyn WireGuardBackend>)
        })),
        gate: None,
    }
}

async fn wait_until(mut f: impl FnMut() -> bool) {
    for _ in 0..200 {
        if f() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("condition not reached within 2 s");
}

#[tokio::test]
async fn reconciler_follows_the_store() {
    let (_dir, m) = open().await;
    let mem = MemoryBackend::default();
    // A stray peer on the device before start: must go.
    let stray = KeyPair::generate().public;
    mem.device
        .lock()
        .unwrap()
        .peers
        .insert(stray.clone(), ObservedPeer::default());
    let dp = DataPlane::start_with(&m, memory_options(&mem));
    let st = dp.settled().await;
    assert!(st.on, "{st:?}");
    assert_eq!(st.backend, Some(crate::status::ActiveBackend::Memory));
    let admin_default = m.peers().list(&crate::Actor::System).await.unwrap();
    assert_eq!(admin_default.len(), 1);
    {
        let dev = mem.device.lock().unwrap();
        assert!(!dev.peers.contains_key(&stray));
        assert!(dev.peers.contains_key(&admin_default[0].public_key));
        assert_eq!(dev.listen_port, Some(51820));
        assert_eq!(dev.private_key.as_ref(), Some(&m.server_keys().private));
    }

    // Adding a profile applies exactly one added peer.
    let n_before = mem.applied.lock().unwrap().len();
    let p = m
        .peers()
        .create(
            &crate::Actor::System,
            crate::peers::NewPeer {
                user: Some("admin".into()),
                name: "phone".into(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    wait_until(|| mem.device.lock().unwrap().peers.contains_key(&p.public_key)).await;
    {
        let applied = mem.applied.lock().unwrap();
        let last = applied.last().unwrap();
        assert_eq!(applied.len(), n_before + 1);
        assert_eq!(last.add.len(), 1);
        assert!(last.update.is_empty() && last.remove.is_empty());
    }

    // Deleting it removes the peer.
    m.peers()
        .delete(&crate::Actor::System, p.id.as_str())
        .await
        .unwrap();
    wait_until(|| !mem.device.lock().unwrap().peers.contains_key(&p.public_key)).await;

    // Drift added behind the reconciler's back is repaired by a full cycle.
    mem.device
        .lock()
        .unwrap()
        .peers
        .insert(stray.clone(), ObservedPeer::default());
    dp.resync().await;
    assert!(!mem.device.lock().unwrap().peers.contains_key(&stray));
    dp.stop().await;
    assert!(!m.status().current(&crate::Actor::System).dataplane.on);
}

#[tokio::test]
async fn a_closed_gate_keeps_every_peer_off_and_says_why() {
    let (_dir, m) = open().await;
    let mem = MemoryBackend::default();
    let (gate, rx) = tokio::sync::watch::channel(Some(
        "the firewall is not in force (nft refused)".to_string(),
    ));
    let dp = DataPlane::start_with(
        &m,
        DataPlaneOptions {
            gate: Some(rx),
            ..memory_options(&mem)
        },
    );
    let st = dp.settled().await;
    assert!(!st.on, "{st:?}");
    assert!(
        st.reason.as_deref().unwrap().contains("nft refused"),
        "{st:?}"
    );
    assert!(mem.device.lock().unwrap().peers.is_empty());
    // Profiles made while it is closed stay off too.
    let p = m
        .peers()
        .create(
            &crate::Actor::System,
            crate::peers::NewPeer {
                user: Some("admin".into()),
                name: "phone".into(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    dp.resync().await;
    assert!(mem.device.lock().unwrap().peers.is_empty());

    // Open: every peer comes on; closed again: every peer goes.
    gate.send_replace(None);
    wait_until(|| mem.device.lock().unwrap().peers.len() == 2).await;
    assert!(mem.device.lock().unwrap().peers.contains_key(&p.public_key));
    wait_until(|| m.status().current(&crate::Actor::System).dataplane.on).await;
    gate.send_replace(Some("the firewall is not in force (table gone)".into()));
    wait_until(|| mem.device.lock().unwrap().peers.is_empty()).await;
    let st = m.status().current(&crate::Actor::System).dataplane;
    assert!(
        !st.on && st.reason.as_deref().unwrap().contains("table gone"),
        "{st:?}"
    );
    dp.stop().await;
}

#[tokio::test]
async fn backend_none_and_failing_backends_say_why() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = crate::Config {
        data_dir: dir.path().to_path_buf(),
        ..Default::default()
    };
    config.wireguard.backend = crate::config::DataplaneBackend::None;
    let m = crate::Mistborn::open(config).await.unwrap();
    let st = DataPlane::start(&m).settled().await;
    assert!(!st.on);
    assert!(st.reason.unwrap().contains("'none'"));

    let failing = DataPlaneOptions {
        status_interval: Duration::from_millis(50),
        netns: None,
        backend: Some(Arc::new(|| {
            Err(crate::Error::DataPlane("no wireguard-go here".into()))
        })),
        gate: None,
    };
    let dp = DataPlane::start_with(&m, failing);
    let st = dp.settled().await;
    assert!(!st.on);
    assert_eq!(
        st.reason.as_deref(),
        Some("data plane: no wireguard-go here")
    );
    dp.stop().await;
}

#[tokio::test]
async fn corrupt_row_is_reported_and_others_come_up() {
    let (_dir, m) = open().await;
    let mk = |name: &str| crate::peers::NewPeer {
        user: Some("admin".into()),
        name: name.into(),
        ..Default::default()
    };
    let good = m
        .peers()
        .create(&crate::Actor::System, mk("good"))
        .await
        .unwrap();
    let bad = m
        .peers()
        .create(&crate::Actor::System, mk("bad"))
        .await
        .unwrap();
    sqlx::query("UPDATE peers SET public_key = 'not-a-key' WHERE id = $1")
        .bind(bad.id.as_str())
        .execute(m.store().pool())
        .await
        .unwrap();
    let mem = MemoryBackend::default();
    let dp = DataPlane::start_with(&m, memory_options(&mem));
    let st = dp.settled().await;
    assert!(st.on);
    assert_eq!(st.skipped.len(), 1, "{st:?}");
    assert_eq!(st.skipped[0].id, bad.id.as_str());
    assert!(st.skipped[0].reason.contains("public key"), "{st:?}");
    let dev = mem.device.lock().unwrap().clone();
    assert_eq!(dev.peers.len(), 2); // admin's default + good
    assert!(dev.peers.contains_key(&good.public_key));
    dp.stop().await;
}

#[test]
fn one_profile_change_plans_like_a_full_plan() {
    let s = server();
    let rows: Vec<_> = (1..=5).map(|i| Ok(profile(i, "alice"))).collect();
    let mut d = desired(s.clone(), rows.clone());
    let mut o = observed_of(&d);
    // Added.
    let new = profile(6, "bob");
    let keys = d
        .replace_profile(&new.peer.id, Some(Ok(new.clone())))
        .unwrap();
    assert_eq!(keys, vec![new.peer.public_key.clone()]);
    let diff = plan_peers(&d, &o, &keys);
    assert_eq!(diff, plan(&d, &o));
    assert_eq!(diff.add.len(), 1);
    o.apply_diff(&diff);
    // Re-keyed (a device imported a new key): the old peer goes, the new one comes.
    let mut rekeyed = new.clone();
    rekeyed.peer.public_key = KeyPair::generate().public;
    let keys = d
        .replace_profile(&new.peer.id, Some(Ok(rekeyed.clone())))
        .unwrap();
    assert_eq!(keys.len(), 2);
    let diff = plan_peers(&d, &o, &keys);
    assert_eq!(diff, plan(&d, &o));
    assert_eq!((diff.add.len(), diff.remove.len()), (1, 1));
    o.apply_diff(&diff);
    // Deleted.
    let gone = rows[0].as_ref().unwrap().peer.clone();
    let keys = d.replace_profile(&gone.id, None).unwrap();
    let diff = plan_peers(&d, &o, &keys);
    assert_eq!(diff, plan(&d, &o));
    assert_eq!(diff.remove, vec![gone.public_key.clone()]);
    o.apply_diff(&diff);
    assert!(plan(&d, &o).is_empty());
    assert_eq!(d.peers.len(), 5);
    // A profile that turned unreadable is reported, and its peer removed.
    let broken = rows[1].as_ref().unwrap().peer.clone();
    let report = SkippedProfile {
        id: broken.id.to_string(),
        user_id: Some(broken.user_id.clone()),
        reason: "corrupt".into(),
    };
    let keys = d
        .replace_profile(&broken.id, Some(Err(report.clone())))
        .unwrap();
    assert_eq!(plan_peers(&d, &o, &keys).remove, vec![broken.public_key]);
    assert_eq!(d.skipped, vec![report]);
}

#[test]
fn freeing_a_key_a_skipped_profile_wanted_asks_for_a_full_reload() {
    let s = server();
    let a = profile(1, "alice");
    let mut dup = profile(2, "bob");
    dup.peer.public_key = a.peer.public_key.clone();
    let mut d = desired(s.clone(), vec![Ok(a.clone()), Ok(dup.clone())]);
    assert_eq!(d.skipped.len(), 1);
    assert_eq!(d.replace_profile(&a.peer.id, None), None);
    // A full reload then brings the duplicate up.
    let d = desired(s, vec![Ok(dup.clone())]);
    assert!(d.peers.contains_key(&dup.peer.public_key));
}

#[tokio::test]
async fn one_change_reloads_only_that_profile() {
    let (_dir, m) = open().await;
    let mem = MemoryBackend::default();
    let dp = DataPlane::start_with(
        &m,
        DataPlaneOptions {
            // No tick during the test: only change events drive it.
            status_interval: Duration::from_secs(3600),
            ..memory_options(&mem)
        },
    );
    assert!(dp.settled().await.on);
    let admin = m.peers().list(&crate::Actor::System).await.unwrap();
    // Break admin's default behind the store API's back (no change event, no revision bump):
    // a full reload would now report it; the per-profile path must not even look at it.
    sqlx::query("UPDATE peers SET public_key = 'not-a-key' WHERE id = $1")
        .bind(admin[0].id.as_str())
        .execute(m.store().pool())
        .await
        .unwrap();
    let p = m
        .peers()
        .create(
            &crate::Actor::System,
            crate::peers::NewPeer {
                user: Some("admin".into()),
                name: "phone".into(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    wait_until(|| mem.device.lock().unwrap().peers.contains_key(&p.public_key)).await;
    let st = m.status().current(&crate::Actor::System);
    assert!(st.dataplane.skipped.is_empty(), "{st:?}");
    assert_eq!(st.peers.len(), 2);
    assert!(
        mem.device
            .lock()
            .unwrap()
            .peers
            .contains_key(&admin[0].public_key)
    );
    dp.stop().await;
}

#[tokio::test]
async fn another_process_writing_the_store_is_picked_up_through_the_change_watcher() {
    let (dir, m) = open().await;
    let mem = MemoryBackend::default();
    let dp = DataPlane::start_with(&m, memory_options(&mem));
    assert!(dp.settled().await.on);
    let (stop, stop_rx) = tokio::sync::watch::channel(false);
    let watcher = crate::daemon::ChangeWatcher::new(&m).await.unwrap();
    let watching = tokio::spawn(watcher.run(stop_rx));
    // The CLI: another handle on the same data dir and database, running no data plane.
    let cli = crate::Mistborn::open(crate::Config {
        data_dir: dir.path().to_path_buf(),
        ..Default::default()
    })
    .await
    .unwrap();
    let p = cli
        .peers()
        .create(
            &crate::Actor::System,
            crate::peers::NewPeer {
                user: Some("admin".into()),
                name: "laptop".into(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    wait_until(|| mem.device.lock().unwrap().peers.contains_key(&p.public_key)).await;
    cli.peers()
        .delete(&crate::Actor::System, p.id.as_str())
        .await
        .unwrap();
    wait_until(|| !mem.device.lock().unwrap().peers.contains_key(&p.public_key)).await;
    stop.send_replace(true);
    watching.await.unwrap();
    dp.stop().await;
    cli.close().await;
}

#[test]
fn display_order_follows_one_change_at_a_time() {
    let s = server();
    let rows: Vec<_> = (1..=6)
        .map(|i| Ok(profile(i, if i % 2 == 0 { "bob" } else { "alice" })))
        .collect();
    let mut d = desired(s, rows.clone());
    let mut order = DisplayOrder::of(&d);
    let keys_of = |o: &DisplayOrder, d: &DesiredInterface| {
        o.peers(d)
            .map(|p| p.spec.public_key.clone())
            .collect::<Vec<_>>()
    };
    let sorted = |d: &DesiredInterface| {
        d.profiles_sorted()
            .into_iter()
            .map(|p| p.spec.public_key.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(keys_of(&order, &d), sorted(&d));
    // Added (sorts into the middle), re-keyed and renamed, deleted.
    let new = profile(7, "amy");
    let k = d
        .replace_profile(&new.peer.id.clone(), Some(Ok(new)))
        .unwrap();
    order.update(&d, &k);
    assert_eq!(keys_of(&order, &d), sorted(&d));
    let mut moved = rows[0].clone().unwrap();
    moved.peer.public_key = KeyPair::generate().public;
    moved.peer.name = "zz".parse().unwrap();
    let k = d
        .replace_profile(&moved.peer.id.clone(), Some(Ok(moved)))
        .unwrap();
    order.update(&d, &k);
    assert_eq!(keys_of(&order, &d), sorted(&d));
    let gone = rows[3].as_ref().unwrap().peer.id.clone();
    let k = d.replace_profile(&gone, None).unwrap();
    order.update(&d, &k);
    assert_eq!(keys_of(&order, &d), sorted(&d));
    assert_eq!(keys_of(&order, &d).len(), 6);
}
