//! Per-viewer filtering of the status stream.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use super::*;
use crate::actor::Actor;
use crate::peers::{PeerId, SkippedProfile};
use crate::users::{Role, UserId};

fn peer(user: &str, name: &str) -> PeerStatus {
    PeerStatus {
        peer_id: PeerId(format!("id-{user}-{name}")),
        user_id: UserId(user.into()),
        username: user.parse().unwrap(),
        name: name.parse().unwrap(),
        address_v4: "10.15.91.2".parse().unwrap(),
        address_v6: "fd15:91::2".parse().unwrap(),
        public_key: crate::crypto::KeyPair::generate().public,
        endpoint: None,
        latest_handshake: None,
        rx_bytes: 0,
        tx_bytes: 0,
        connected: false,
    }
}

fn snapshot(peers: Vec<PeerStatus>) -> StatusSnapshot {
    let mut dp = DataPlaneStatus::off("mb0", 51820, "test");
    dp.skipped = vec![
        SkippedProfile {
            id: "a1".into(),
            user_id: Some(UserId("alice".into())),
            reason: "r".into(),
        },
        SkippedProfile {
            id: "b1".into(),
            user_id: Some(UserId("bob".into())),
            reason: "r".into(),
        },
        SkippedProfile {
            id: "x".into(),
            user_id: None,
            reason: "r".into(),
        },
    ];
    StatusSnapshot {
        dataplane: dp,
        peers,
        updated_at: 1,
    }
}

fn user(id: &str, role: Role) -> Actor {
    Actor::User {
        id: UserId(id.into()),
        role,
    }
}

#[test]
fn superuser_sees_all_regular_user_only_own() {
    let s = snapshot(vec![
        peer("alice", "laptop"),
        peer("bob", "phone"),
        peer("alice", "tv"),
    ]);
    let admin = s.visible_to(&user("root", Role::Superuser));
    assert_eq!(admin.peers.len(), 3);
    assert_eq!(admin.dataplane.skipped.len(), 3);
    let alice = s.visible_to(&user("alice", Role::Regular));
    assert_eq!(alice.peers.len(), 2);
    assert!(alice.peers.iter().all(|p| p.user_id.as_str() == "alice"));
    assert_eq!(alice.dataplane.skipped.len(), 1);
    assert_eq!(alice.dataplane.skipped[0].id, "a1");
    let carol = s.visible_to(&user("carol", Role::Regular));
    assert!(carol.peers.is_empty() && carol.dataplane.skipped.is_empty());
    assert_eq!(s.visible_to(&Actor::System), s);
}

#[tokio::test]
async fn streams_wake_only_for_changes_in_their_view() {
    let hub = StatusHub::new(DataPlaneStatus::off("mb0", 51820, "test"));
    hub.publish(snapshot(vec![
        peer("alice", "laptop"),
        peer("bob", "phone"),
    ]));
    let mut bob = hub.subscribe(user("bob", Role::Regular));
    let mut admin = hub.subscribe(user("root", Role::Superuser));
    let first = bob.next().await.unwrap();
    assert_eq!(first.peers.len(), 1);
    assert_eq!(admin.next().await.unwrap().peers.len(), 2);

    // Alice's traffic changes: the superuser is woken, bob is not.
    let mut changed = hub.current(&Actor::System);
    changed.peers[0].rx_bytes = 1000;
    changed.updated_at = 2;
    hub.publish(changed.clone());
    let a = tokio::time::timeout(Duration::from_secs(1), admin.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(a.peers[0].rx_bytes, 1000);
    assert!(
        tokio::time::timeout(Duration::from_millis(100), bob.next())
            .await
            .is_err(),
        "bob was woken by alice's change"
    );

    // Bob's own change reaches bob, and never with alice's profile in it.
    changed.peers[1].latest_handshake = Some(5);
    hub.publish(changed);
    let b = tokio::time::timeout(Duration::from_secs(1), bob.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(b.peers.len(), 1);
    assert_eq!(b.peers[0].latest_handshake, Some(5));
    assert!(b.peers.iter().all(|p| p.user_id.as_str() == "bob"));
}

#[tokio::test]
async fn publish_ignores_timestamp_only_changes() {
    let hub = StatusHub::new(DataPlaneStatus::off("mb0", 51820, "test"));
    let s = snapshot(vec![peer("alice", "laptop")]);
    hub.publish(s.clone());
    let mut rx = hub.subscribe(Actor::System);
    assert_eq!(rx.next().await.unwrap(), s);
    let mut later = s;
    later.updated_at = 99;
    hub.publish(later);
    assert!(
        tokio::time::timeout(Duration::from_millis(100), rx.next())
            .await
            .is_err(),
        "woken by a timestamp-only change"
    );
}
