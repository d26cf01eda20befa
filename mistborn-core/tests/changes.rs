//! One change mechanism across processes: a write by one handle (the CLI) bumps its domain's
//! revision, and another handle's [`ChangeWatcher`] (the daemon) broadcasts the same kind of
//! [`Change`] its own writes would, for every domain, on SQLite and PostgreSQL.
#![allow(clippy::unwrap_used)]

mod common;

use std::net::IpAddr;
use std::time::{Duration, Instant};

use mistborn_core::auth::TotpSecret;
use mistborn_core::daemon::ChangeWatcher;
use mistborn_core::dns::RuleKind;
use mistborn_core::firewall::NewList;
use mistborn_core::peers::{NewPeer, PeerKind};
use mistborn_core::store::revision::Domain;
use mistborn_core::{Actor, Change, Mistborn, PeerChange};
use tokio::sync::broadcast::Receiver;

use common::{engines, profile, regular};

fn drain(rx: &mut Receiver<Change>) -> Vec<Change> {
    std::iter::from_fn(|| rx.try_recv().ok()).collect()
}

/// `bob` with a confirmed second factor and an MFA profile; returns the secret and the profile's
/// two tunnel addresses.
async fn mfa_user(m: &Mistborn, now: i64) -> (TotpSecret, [IpAddr; 2]) {
    let bob = regular(m, "bob").await;
    let e = m.auth().enroll(&bob, "bob", now).await.unwrap();
    let b32 = e.secret_base32.trim_end_matches('=');
    let secret = TotpSecret::from_base32(b32).unwrap();
    m.auth()
        .confirm(&bob, "bob", &secret.code_at(now as u64).unwrap(), now)
        .await
        .unwrap();
    let phone = m
        .peers()
        .create(
            &bob,
            NewPeer {
                kind: Some(PeerKind::Mfa),
                ..profile("phone")
            },
        )
        .await
        .unwrap();
    (secret, [phone.address_v4.into(), phone.address_v6.into()])
}

#[tokio::test]
async fn every_domain_written_by_another_process_is_announced() {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    for env in engines().await {
        let daemon = Mistborn::open(env.config()).await.unwrap();
        let cli = Mistborn::open(env.config()).await.unwrap();
        let mut watcher = ChangeWatcher::new(&daemon).await.unwrap();
        let mut rx = daemon.subscribe();
        assert_eq!(watcher.check().await.unwrap(), [], "{}", env.engine);

        // Users: created, demoted, token made and revoked.
        let (secret, addrs) = mfa_user(&cli, now).await;
        assert_eq!(
            watcher.check().await.unwrap(),
            [Domain::Users, Domain::Peers],
            "{}",
            env.engine
        );
        assert_eq!(
            drain(&mut rx),
            [Change::Users, Change::Peers(PeerChange::All)]
        );
        cli.users()
            .set_role(&Actor::System, "bob", mistborn_core::users::Role::Superuser)
            .await
            .unwrap();
        assert_eq!(watcher.check().await.unwrap(), [Domain::Users]);
        let token = cli
            .users()
            .create_token(&Actor::System, "bob", "ci")
            .await
            .unwrap();
        cli.users()
            .revoke_token(&Actor::System, token.token.id.as_str())
            .await
            .unwrap();
        assert_eq!(watcher.check().await.unwrap(), [Domain::Users]);
        // One event per check that saw the counter move (the role, then the tokens).
        assert_eq!(
            drain(&mut rx),
            [Change::Users, Change::Users],
            "{}",
            env.engine
        );

        // Sessions: a login opens both addresses, a revocation closes them, one event each.
        let code = secret.code_at(now as u64 + 30).unwrap();
        let session = cli.auth().login(addrs[0], &code, now + 30).await.unwrap();
        assert_eq!(watcher.check().await.unwrap(), [Domain::Sessions]);
        let mut opened = drain(&mut rx);
        opened.sort_by_key(|c| format!("{c:?}"));
        let mut want: Vec<Change> = addrs
            .iter()
            .map(|&address| Change::Access {
                address,
                open: true,
            })
            .collect();
        want.sort_by_key(|c| format!("{c:?}"));
        assert_eq!(opened, want, "{}", env.engine);
        cli.auth()
            .revoke_session(&Actor::System, session.id.as_str())
            .await
            .unwrap();
        assert_eq!(watcher.check().await.unwrap(), [Domain::Sessions]);
        let closed = drain(&mut rx);
        assert_eq!(closed.len(), 2, "{}: {closed:?}", env.engine);
        for c in &closed {
            assert!(
                matches!(c, Change::Access { address, open: false } if addrs.contains(address)),
                "{c:?}"
            );
        }

        // DNS rules and lists.
        cli.dns()
            .add_rule(&Actor::System, RuleKind::Deny, "ads.example")
            .await
            .unwrap();
        assert_eq!(watcher.check().await.unwrap(), [Domain::Dns]);
        assert_eq!(drain(&mut rx), [Change::Dns], "{}", env.engine);

        // Firewall lists.
        cli.firewall()
            .add_list(
                &Actor::System,
                NewList {
                    name: "bad-nets".into(),
                    content: Some("192.0.2.0/24\n".into()),
                    ..Default::default()
                },
                now,
            )
            .await
            .unwrap();
        assert_eq!(watcher.check().await.unwrap(), [Domain::Firewall]);
        assert_eq!(drain(&mut rx), [Change::Firewall], "{}", env.engine);

        // The daemon's own writes are announced once, by the write itself, not again.
        daemon
            .dns()
            .add_rule(&Actor::System, RuleKind::Deny, "own.example")
            .await
            .unwrap();
        assert_eq!(drain(&mut rx), [Change::Dns]);
        assert_eq!(watcher.check().await.unwrap(), [], "{}", env.engine);
        daemon.close().await;
        cli.close().await;
    }
}

#[tokio::test]
async fn a_running_watcher_announces_another_process_write_within_a_second() {
    for env in engines().await {
        let daemon = Mistborn::open(env.config()).await.unwrap();
        let cli = Mistborn::open(env.config()).await.unwrap();
        let (stop, stop_rx) = tokio::sync::watch::channel(false);
        let watcher = ChangeWatcher::new(&daemon).await.unwrap();
        let task = tokio::spawn(watcher.run(stop_rx));
        let mut rx = daemon.subscribe();
        // Let PostgreSQL's LISTEN take effect (a write before it is caught by the first read,
        // but this test measures the notification path).
        tokio::time::sleep(Duration::from_millis(300)).await;
        let mut worst = Duration::ZERO;
        for i in 0..5 {
            let start = Instant::now();
            cli.dns()
                .add_rule(&Actor::System, RuleKind::Deny, &format!("n{i}.example"))
                .await
                .unwrap();
            let heard = tokio::time::timeout(Duration::from_secs(1), rx.recv())
                .await
                .unwrap_or_else(|_| panic!("{}: no change within 1 s", env.engine))
                .unwrap();
            assert_eq!(heard, Change::Dns);
            worst = worst.max(start.elapsed());
        }
        println!(
            "{}: cross-process change heard within {worst:?} (worst of 5)",
            env.engine
        );
        stop.send_replace(true);
        tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .expect("the watcher stops")
            .unwrap();
        daemon.close().await;
        cli.close().await;
    }
}
