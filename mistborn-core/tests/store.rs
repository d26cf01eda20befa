//! Store tests: every query of users and profiles against SQLite and a real PostgreSQL.
//!
//! PostgreSQL runs when `MISTBORN_TEST_POSTGRES_URL` points at a server where the user may create
//! databases (each test gets its own database). Under CI it is required.
#![allow(clippy::unwrap_used)]

use std::os::unix::fs::PermissionsExt;

use mistborn_core::peers::{ListenPort, NewPeer, PeerKind, PeerUpdate};
use mistborn_core::users::{NewUser, Role};
use mistborn_core::{Actor, ErrorKind, Mistborn};

mod common;

use common::{engines, profile, regular};

#[tokio::test]
async fn first_start_creates_admin_with_password_file_and_default_profile() {
    for env in engines().await {
        let (m, first) = Mistborn::open_reporting(env.config()).await.unwrap();
        let first = first.expect("first start");
        let mode = std::fs::metadata(&first.admin_password_file)
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{}", env.engine);
        let password = std::fs::read_to_string(&first.admin_password_file).unwrap();
        let admin = m
            .users()
            .check_password(&Actor::System, "admin", password.trim())
            .await
            .unwrap();
        assert_eq!(admin.role, Role::Superuser);
        assert_eq!(
            m.users()
                .check_password(&Actor::System, "admin", "wrong")
                .await
                .unwrap_err()
                .kind(),
            ErrorKind::Unauthenticated
        );
        let peers = m.peers().list(&Actor::System).await.unwrap();
        assert_eq!(peers.len(), 1);
        assert_eq!(peers[0].name.as_str(), "default");
        assert_eq!(peers[0].address_v4.to_string(), "10.15.91.2");
        assert_eq!(peers[0].address_v6.to_string(), "fd15:91::2");
        let key_mode = std::fs::metadata(env.config().data_dir.join("secret.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(key_mode & 0o777, 0o600);
        m.close().await;
    }
}

#[tokio::test]
async fn users_tokens_and_roles() {
    for env in engines().await {
        let m = Mistborn::open(env.config()).await.unwrap();
        let bob = regular(&m, "bob").await;
        let dup = m
            .users()
            .create(
                &Actor::System,
                NewUser {
                    username: "bob".into(),
                    password: "another password".into(),
                    role: Role::Regular,
                },
            )
            .await
            .unwrap_err();
        assert_eq!(dup.kind(), ErrorKind::Conflict, "{}: {dup}", env.engine);
        for (name, pw) in [("Bad Name", "long enough pw"), ("carol", "short")] {
            let err = m
                .users()
                .create(
                    &Actor::System,
                    NewUser {
                        username: name.into(),
                        password: pw.into(),
                        role: Role::Regular,
                    },
                )
                .await
                .unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidInput);
        }
        assert_eq!(m.users().list(&Actor::System).await.unwrap().len(), 2);

        // A regular user cannot touch users but sees themselves.
        assert_eq!(
            m.users().list(&bob).await.unwrap_err().kind(),
            ErrorKind::Forbidden
        );
        assert_eq!(
            m.users().get(&bob, "admin").await.unwrap_err().kind(),
            ErrorKind::NotFound
        );
        assert_eq!(m.users().me(&bob).await.unwrap().username.as_str(), "bob");
        assert_eq!(
            m.users().delete(&bob, "admin").await.unwrap_err().kind(),
            ErrorKind::Forbidden
        );

        // Tokens: shown once, stored hashed, name unique per user, revocable.
        let t = m.users().create_token(&bob, "bob", "laptop").await.unwrap();
        assert_eq!(m.users().authenticate_token(&t.secret).await.unwrap(), bob);
        assert_eq!(
            m.users()
                .create_token(&bob, "bob", "laptop")
                .await
                .unwrap_err()
                .kind(),
            ErrorKind::Conflict
        );
        assert_eq!(
            m.users()
                .create_token(&bob, "admin", "x")
                .await
                .unwrap_err()
                .kind(),
            ErrorKind::NotFound
        );
        let listed = m.users().list_tokens(&bob, "bob").await.unwrap();
        assert_eq!(listed.len(), 1);
        assert!(listed[0].last_used_at.is_some());
        m.users()
            .revoke_token(&bob, t.token.id.as_str())
            .await
            .unwrap();
        assert_eq!(
            m.users()
                .authenticate_token(&t.secret)
                .await
                .unwrap_err()
                .kind(),
            ErrorKind::Unauthenticated
        );

        // Roles: the last superuser stays.
        assert_eq!(
            m.users()
                .set_role(&Actor::System, "admin", Role::Regular)
                .await
                .unwrap_err()
                .kind(),
            ErrorKind::Conflict
        );
        m.users()
            .set_role(&Actor::System, "bob", Role::Superuser)
            .await
            .unwrap();
        m.users()
            .set_role(&Actor::System, "admin", Role::Regular)
            .await
            .unwrap();
        m.users()
            .set_password(&Actor::System, "bob", "new password!")
            .await
            .unwrap();
        m.users()
            .check_password(&Actor::System, "bob", "new password!")
            .await
            .unwrap();
        m.close().await;
    }
}

#[tokio::test]
async fn profiles_belong_to_their_owner() {
    for env in engines().await {
        let m = Mistborn::open(env.config()).await.unwrap();
        let bob = regular(&m, "bob").await;
        let alice = regular(&m, "alice").await;
        let phone = m.peers().create(&bob, profile("phone")).await.unwrap();
        // UDP 443 is a host-wide redirect: a superuser gives it.
        let laptop = m
            .peers()
            .create(
                &Actor::System,
                NewPeer {
                    user: Some("bob".into()),
                    kind: Some(PeerKind::Mfa),
                    listen_port: Some(ListenPort::Udp443),
                    client_to_client: true,
                    ..profile("laptop")
                },
            )
            .await
            .unwrap();
        m.peers().create(&alice, profile("phone")).await.unwrap();
        let dup = m.peers().create(&bob, profile("phone")).await.unwrap_err();
        assert_eq!(dup.kind(), ErrorKind::Conflict, "{}", env.engine);

        let mine: Vec<_> = m
            .peers()
            .list(&bob)
            .await
            .unwrap()
            .into_iter()
            .map(|p| p.name.to_string())
            .collect();
        assert_eq!(mine, ["laptop", "phone"]);
        assert_eq!(m.peers().list(&Actor::System).await.unwrap().len(), 4);

        let admin_default = m
            .peers()
            .find(&Actor::System, Some("admin"), "default")
            .await
            .unwrap();
        for err in [
            m.peers()
                .get(&bob, admin_default.id.as_str())
                .await
                .unwrap_err(),
            m.peers()
                .delete(&bob, admin_default.id.as_str())
                .await
                .unwrap_err(),
            m.peers()
                .client_config(&bob, admin_default.id.as_str())
                .await
                .unwrap_err(),
            m.peers().get(&bob, "not-a-uuid").await.unwrap_err(),
            m.peers()
                .create(
                    &bob,
                    NewPeer {
                        user: Some("alice".into()),
                        ..profile("x")
                    },
                )
                .await
                .unwrap_err(),
        ] {
            assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
        }

        let text = m
            .peers()
            .client_config(&bob, laptop.id.as_str())
            .await
            .unwrap()
            .render();
        assert!(text.contains(&format!(
            "Address = {}/32, {}/128",
            laptop.address_v4, laptop.address_v6
        )));
        assert!(text.contains("Endpoint = vpn.example.org:443"));
        assert!(text.contains(&format!("PublicKey = {}", m.server_public_key())));
        let png = m.peers().qr_png(&bob, phone.id.as_str()).await.unwrap();
        assert_eq!(&png[..4], b"\x89PNG");

        let updated = m
            .peers()
            .update(
                &bob,
                phone.id.as_str(),
                PeerUpdate {
                    client_to_client: Some(true),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        assert!(updated.client_to_client);
        assert_eq!(
            m.peers()
                .update(
                    &bob,
                    phone.id.as_str(),
                    PeerUpdate {
                        name: Some("laptop".into()),
                        ..Default::default()
                    }
                )
                .await
                .unwrap_err()
                .kind(),
            ErrorKind::Conflict
        );
        m.peers().delete(&bob, phone.id.as_str()).await.unwrap();
        assert_eq!(m.peers().list(&bob).await.unwrap().len(), 1);

        // Deleting a user deletes their profiles.
        m.users().delete(&Actor::System, "bob").await.unwrap();
        assert_eq!(m.peers().list(&Actor::System).await.unwrap().len(), 2);
        m.close().await;
    }
}

#[tokio::test]
async fn addresses_are_unique_freed_on_delete_and_the_pool_can_fill() {
    for env in engines().await {
        let mut config = env.config();
        config.wireguard.subnet_v4 = "10.99.0.0/29".parse().unwrap(); // 5 client addresses
        let m = Mistborn::open(config).await.unwrap(); // admin's default takes .2
        let mut made = Vec::new();
        for i in 0..4 {
            made.push(
                m.peers()
                    .create(
                        &Actor::System,
                        NewPeer {
                            user: Some("admin".into()),
                            ..profile(&format!("p{i}"))
                        },
                    )
                    .await
                    .unwrap(),
            );
        }
        let addrs: std::collections::BTreeSet<_> = made.iter().map(|p| p.address_v4).collect();
        assert_eq!(addrs.len(), 4);
        let full = m
            .peers()
            .create(
                &Actor::System,
                NewPeer {
                    user: Some("admin".into()),
                    ..profile("one too many")
                },
            )
            .await
            .unwrap_err();
        assert_eq!(full.code(), "pool_exhausted", "{}: {full}", env.engine);
        assert_eq!(
            m.peers().list(&Actor::System).await.unwrap().len(),
            5,
            "nothing stored on failure"
        );

        let freed = made[1].address_v4;
        m.peers()
            .delete(&Actor::System, made[1].id.as_str())
            .await
            .unwrap();
        let again = m
            .peers()
            .create(
                &Actor::System,
                NewPeer {
                    user: Some("admin".into()),
                    ..profile("reuse")
                },
            )
            .await
            .unwrap();
        assert_eq!(again.address_v4, freed);
        m.close().await;
    }
}

#[tokio::test]
async fn device_generated_keys_and_malformed_keys() {
    for env in engines().await {
        let m = Mistborn::open(env.config()).await.unwrap();
        let device = mistborn_core::crypto::KeyPair::generate();
        let p = m
            .peers()
            .create(
                &Actor::System,
                NewPeer {
                    user: Some("admin".into()),
                    public_key: Some(device.public.to_base64()),
                    ..profile("enrolled")
                },
            )
            .await
            .unwrap();
        assert!(!p.server_generated_key);
        assert_eq!(p.public_key, device.public);
        let text = m
            .peers()
            .client_config(&Actor::System, p.id.as_str())
            .await
            .unwrap()
            .render();
        assert!(!text.contains(&device.private.to_base64()));
        let reused = m
            .peers()
            .create(
                &Actor::System,
                NewPeer {
                    user: Some("admin".into()),
                    public_key: Some(device.public.to_base64()),
                    ..profile("again")
                },
            )
            .await
            .unwrap_err();
        assert_eq!(reused.kind(), ErrorKind::Conflict, "{}", env.engine);
        for bad in ["", "not base64!", "AAAA", "dGVzdA=="] {
            let err = m
                .peers()
                .create(
                    &Actor::System,
                    NewPeer {
                        user: Some("admin".into()),
                        public_key: Some(bad.into()),
                        ..profile("bad")
                    },
                )
                .await
                .unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidInput, "{bad}");
        }
        assert_eq!(m.peers().list(&Actor::System).await.unwrap().len(), 2);
        m.close().await;
    }
}

#[tokio::test]
async fn restart_keeps_everything() {
    for env in engines().await {
        let (before_key, before_peers, before_users);
        {
            let m = Mistborn::open(env.config()).await.unwrap();
            regular(&m, "bob").await;
            m.peers()
                .create(
                    &Actor::System,
                    NewPeer {
                        user: Some("bob".into()),
                        ..profile("tablet")
                    },
                )
                .await
                .unwrap();
            before_key = m.server_public_key().clone();
            before_peers = m.peers().list(&Actor::System).await.unwrap();
            before_users = m.users().list(&Actor::System).await.unwrap();
            m.close().await;
        }
        let (m, first) = Mistborn::open_reporting(env.config()).await.unwrap();
        assert!(
            first.is_none(),
            "{}: a restart is not a first start",
            env.engine
        );
        assert_eq!(m.server_public_key(), &before_key);
        assert_eq!(m.peers().list(&Actor::System).await.unwrap(), before_peers);
        assert_eq!(m.users().list(&Actor::System).await.unwrap(), before_users);
        m.close().await;
    }
}

#[tokio::test]
async fn backup_restores_into_a_fresh_data_dir_on_either_engine() {
    let sources = engines().await;
    for src in &sources {
        let m = Mistborn::open(src.config()).await.unwrap();
        let bob = regular(&m, "bob").await;
        let p = m.peers().create(&bob, profile("phone")).await.unwrap();
        let token = m.users().create_token(&bob, "bob", "script").await.unwrap();
        let config_text = m
            .peers()
            .client_config(&Actor::System, p.id.as_str())
            .await
            .unwrap()
            .render();
        let users = m.users().list(&Actor::System).await.unwrap();
        let peers = m.peers().list(&Actor::System).await.unwrap();
        m.dns()
            .add_list_text(&Actor::System, "ads", "ads.example\ntracker.example\n")
            .await
            .unwrap();
        m.dns()
            .add_rule(
                &Actor::System,
                mistborn_core::dns::RuleKind::Allow,
                "ok.example",
            )
            .await
            .unwrap();
        let lists = m.dns().lists(&Actor::System).await.unwrap();
        let rules = m.dns().rules(&Actor::System).await.unwrap();
        assert_eq!(
            m.backup(&bob).await.unwrap_err().kind(),
            ErrorKind::Forbidden
        );
        let backup = m.backup(&Actor::System).await.unwrap();
        m.close().await;

        // Round-trip through JSON, as `mistborn db backup` writes it.
        let backup: mistborn_core::store::Backup =
            serde_json::from_str(&serde_json::to_string(&backup).unwrap()).unwrap();
        for dst in engines().await {
            Mistborn::restore(&dst.config(), &backup, false)
                .await
                .unwrap();
            let r = Mistborn::open(dst.config()).await.unwrap();
            let ctx = format!("{} -> {}", src.engine, dst.engine);
            assert_eq!(
                r.users().list(&Actor::System).await.unwrap(),
                users,
                "{ctx}"
            );
            assert_eq!(
                r.peers().list(&Actor::System).await.unwrap(),
                peers,
                "{ctx}"
            );
            assert_eq!(r.dns().lists(&Actor::System).await.unwrap(), lists, "{ctx}");
            assert_eq!(r.dns().rules(&Actor::System).await.unwrap(), rules, "{ctx}");
            assert_eq!(
                r.peers()
                    .client_config(&Actor::System, p.id.as_str())
                    .await
                    .unwrap()
                    .render(),
                config_text,
                "{ctx}: private keys open with the restored secret key"
            );
            assert_eq!(
                r.users().authenticate_token(&token.secret).await.unwrap(),
                bob
            );
            // A second restore without --force is refused and changes nothing.
            r.close().await;
            let err = Mistborn::restore(&dst.config(), &backup, false)
                .await
                .unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Conflict, "{ctx}");
        }
    }
}

#[tokio::test]
async fn a_wrong_secret_key_is_a_clear_error() {
    let env = &engines().await[0];
    let m = Mistborn::open(env.config()).await.unwrap();
    m.close().await;
    std::fs::write(env.config().data_dir.join("secret.key"), [1u8; 32]).unwrap();
    let err = Mistborn::open(env.config()).await.unwrap_err();
    assert!(err.to_string().contains("secret.key"), "{err}");
    std::fs::write(env.config().data_dir.join("secret.key"), b"short").unwrap();
    let err = Mistborn::open(env.config()).await.unwrap_err();
    assert!(err.to_string().contains("32"), "{err}");
}

/// Raw SQL on the test's database, for damage the API would refuse to do.
async fn raw_sql(env: &common::Env, sql: &str, id: &str) {
    sqlx::any::install_default_drivers();
    let url = env.config().effective_database_url();
    let pool = sqlx::AnyPool::connect(&url).await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(sql.to_string()))
        .bind(id.to_string())
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
}

#[tokio::test]
async fn a_corrupt_row_is_left_out_of_listings_and_can_be_deleted() {
    for env in engines().await {
        let m = Mistborn::open(env.config()).await.unwrap();
        let bob = regular(&m, "bob").await;
        let good = m.peers().create(&bob, profile("good")).await.unwrap();
        let bad = m.peers().create(&bob, profile("bad")).await.unwrap();
        raw_sql(
            &env,
            "UPDATE peers SET public_key = 'not-a-key' WHERE id = $1",
            bad.id.as_str(),
        )
        .await;
        let mine = m.peers().list(&bob).await.unwrap();
        assert_eq!(
            mine.iter().map(|p| p.id.clone()).collect::<Vec<_>>(),
            vec![good.id.clone()],
            "{}",
            env.engine
        );
        let all = m.peers().list(&Actor::System).await.unwrap();
        assert_eq!(all.len(), 2, "{}: admin's default + good", env.engine);
        assert_eq!(m.peers().list_for_user(&bob, "bob").await.unwrap().len(), 1);
        // Someone else cannot delete it; its owner can.
        let eve = regular(&m, "eve").await;
        let err = m.peers().delete(&eve, bad.id.as_str()).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotFound, "{}", env.engine);
        m.peers().delete(&bob, bad.id.as_str()).await.unwrap();
        let err = m.peers().delete(&bob, bad.id.as_str()).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotFound, "{}", env.engine);
        m.close().await;
    }
}

#[tokio::test]
async fn profile_writes_of_another_process_are_seen_through_the_revision() {
    use mistborn_core::daemon::ChangeWatcher;
    use mistborn_core::store::revision::Domain;
    use mistborn_core::{Change, PeerChange};
    for env in engines().await {
        let daemon = Mistborn::open(env.config()).await.unwrap();
        let cli = Mistborn::open(env.config()).await.unwrap();
        let mut changes = daemon.subscribe();
        let mut watcher = ChangeWatcher::new(&daemon).await.unwrap();
        assert_eq!(watcher.check().await.unwrap(), [], "{}", env.engine);

        // The daemon's own write names the profile; polling finds nothing new afterwards.
        let own = daemon
            .peers()
            .create(
                &Actor::System,
                NewPeer {
                    user: Some("admin".into()),
                    ..profile("own")
                },
            )
            .await
            .unwrap();
        assert_eq!(
            changes.recv().await.unwrap(),
            Change::Peers(PeerChange::Profiles(vec![own.id.clone()]))
        );
        assert_eq!(watcher.check().await.unwrap(), [], "{}", env.engine);

        // The CLI's write: one check sees it and announces everything as possibly changed.
        let other = cli
            .peers()
            .create(
                &Actor::System,
                NewPeer {
                    user: Some("admin".into()),
                    ..profile("other")
                },
            )
            .await
            .unwrap();
        assert!(
            changes.try_recv().is_err(),
            "{}: nothing heard yet",
            env.engine
        );
        assert!(
            watcher.check().await.unwrap().contains(&Domain::Peers),
            "{}",
            env.engine
        );
        assert_eq!(
            changes.recv().await.unwrap(),
            Change::Peers(PeerChange::All)
        );
        assert_eq!(watcher.check().await.unwrap(), [], "{}", env.engine);

        // Update, delete and user deletion bump it too.
        cli.peers()
            .update(
                &Actor::System,
                other.id.as_str(),
                PeerUpdate {
                    name: Some("renamed".into()),
                    ..PeerUpdate::default()
                },
            )
            .await
            .unwrap();
        assert!(
            watcher.check().await.unwrap().contains(&Domain::Peers),
            "{}",
            env.engine
        );
        cli.peers()
            .delete(&Actor::System, other.id.as_str())
            .await
            .unwrap();
        assert!(
            watcher.check().await.unwrap().contains(&Domain::Peers),
            "{}",
            env.engine
        );
        let bob = regular(&cli, "bob").await;
        cli.peers().create(&bob, profile("x")).await.unwrap();
        assert!(
            watcher.check().await.unwrap().contains(&Domain::Peers),
            "{}",
            env.engine
        );
        cli.users().delete(&Actor::System, "bob").await.unwrap();
        assert!(
            watcher.check().await.unwrap().contains(&Domain::Peers),
            "{}",
            env.engine
        );
        while changes.try_recv().is_ok() {}

        // A CLI write the daemon has not polled yet, then a daemon write: the daemon's own
        // event must not hide the other one, so it says "everything".
        cli.peers()
            .delete(&Actor::System, own.id.as_str())
            .await
            .unwrap();
        daemon
            .peers()
            .create(
                &Actor::System,
                NewPeer {
                    user: Some("admin".into()),
                    ..profile("late")
                },
            )
            .await
            .unwrap();
        assert_eq!(
            changes.recv().await.unwrap(),
            Change::Peers(PeerChange::All)
        );
        // The watcher still announces the CLI's write (nothing marked it seen), then is quiet.
        assert_eq!(
            watcher.check().await.unwrap(),
            [Domain::Peers],
            "{}",
            env.engine
        );
        assert_eq!(watcher.check().await.unwrap(), [], "{}", env.engine);
        daemon.close().await;
        cli.close().await;
    }
}

/// 40 concurrent creates into a pool with 28 free addresses (both engines): every create succeeds
/// until the pool is full, each with its own address, and the rest get `pool_exhausted`; no
/// "too many profiles are being created at once".
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_creates_all_succeed_until_the_pool_is_full() {
    for env in engines().await {
        let mut config = env.config();
        config.wireguard.subnet_v4 = "10.99.0.0/27".parse().unwrap(); // 29 clients, admin has 1
        let m = Mistborn::open(config).await.unwrap();
        let tasks: Vec<_> = (0..40)
            .map(|i| {
                let m = m.clone();
                tokio::spawn(async move {
                    m.peers()
                        .create(
                            &Actor::System,
                            NewPeer {
                                user: Some("admin".into()),
                                ..profile(&format!("p{i}"))
                            },
                        )
                        .await
                })
            })
            .collect();
        let mut made = std::collections::BTreeSet::new();
        let mut full = 0;
        for t in tasks {
            match t.await.unwrap() {
                Ok(p) => assert!(made.insert(p.address_v4), "{}: address reused", env.engine),
                Err(e) => {
                    assert_eq!(e.code(), "pool_exhausted", "{}: {e}", env.engine);
                    full += 1;
                }
            }
        }
        assert_eq!((made.len(), full), (28, 12), "{}", env.engine);
        assert_eq!(m.peers().list(&Actor::System).await.unwrap().len(), 29);
        m.close().await;
    }
}

/// What a regular user may choose: MFA by default, no WireGuard-only profile and no UDP 53/443
/// unless a superuser gives it (on create and on update), at most `max_profiles_per_user`
/// profiles even when created concurrently; superusers are not limited.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn regular_users_get_mfa_profiles_within_a_quota() {
    for env in engines().await {
        let mut config = env.config();
        config.peers.max_profiles_per_user = 4;
        let m = Mistborn::open(config).await.unwrap();
        let bob = regular(&m, "bob").await;
        let phone = m.peers().create(&bob, profile("phone")).await.unwrap();
        assert_eq!(phone.kind, PeerKind::Mfa, "{}", env.engine);
        for (new, field) in [
            (
                NewPeer {
                    kind: Some(PeerKind::Wireguard),
                    ..profile("wg")
                },
                "kind",
            ),
            (
                NewPeer {
                    listen_port: Some(ListenPort::Udp53),
                    ..profile("p53")
                },
                "listen_port",
            ),
        ] {
            let err = m.peers().create(&bob, new).await.unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Forbidden, "{err}");
            assert!(err.to_string().contains(field), "{err}");
        }
        for (change, field) in [
            (
                PeerUpdate {
                    kind: Some(PeerKind::Wireguard),
                    ..Default::default()
                },
                "kind",
            ),
            (
                PeerUpdate {
                    listen_port: Some(ListenPort::Udp443),
                    ..Default::default()
                },
                "listen_port",
            ),
        ] {
            let err = m
                .peers()
                .update(&bob, phone.id.as_str(), change)
                .await
                .unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Forbidden, "{err}");
            assert!(err.to_string().contains(field), "{err}");
        }
        assert_eq!(
            m.peers().get(&bob, phone.id.as_str()).await.unwrap(),
            phone,
            "a refused change changes nothing"
        );

        // A superuser gives both; the owner may then send the same values back and edit the rest.
        let given = m
            .peers()
            .update(
                &Actor::System,
                phone.id.as_str(),
                PeerUpdate {
                    kind: Some(PeerKind::Wireguard),
                    listen_port: Some(ListenPort::Udp443),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        let renamed = m
            .peers()
            .update(
                &bob,
                phone.id.as_str(),
                PeerUpdate {
                    name: Some("old phone".into()),
                    kind: Some(PeerKind::Wireguard),
                    listen_port: Some(ListenPort::Udp443),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        assert_eq!(
            (renamed.kind, renamed.listen_port),
            (given.kind, given.listen_port)
        );
        // Going back to MFA and the default port needs no rights.
        let back = m
            .peers()
            .update(
                &bob,
                phone.id.as_str(),
                PeerUpdate {
                    kind: Some(PeerKind::Mfa),
                    listen_port: Some(ListenPort::Default),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        assert_eq!(
            (back.kind, back.listen_port),
            (PeerKind::Mfa, ListenPort::Default)
        );

        // The quota (4, one used) holds under concurrency.
        let tasks: Vec<_> = (0..8)
            .map(|i| {
                let (m, bob) = (m.clone(), bob.clone());
                tokio::spawn(async move { m.peers().create(&bob, profile(&format!("d{i}"))).await })
            })
            .collect();
        let mut refused = 0;
        for t in tasks {
            if let Err(e) = t.await.unwrap() {
                assert_eq!(e.kind(), ErrorKind::Forbidden, "{e}");
                assert!(e.to_string().contains("max_profiles_per_user = 4"), "{e}");
                refused += 1;
            }
        }
        assert_eq!(refused, 5, "{}", env.engine);
        assert_eq!(m.peers().list(&bob).await.unwrap().len(), 4);
        m.peers()
            .create(
                &Actor::System,
                NewPeer {
                    user: Some("bob".into()),
                    ..profile("given by the admin")
                },
            )
            .await
            .unwrap();

        // With `regular_user_kind = wireguard` the operator lets regular users choose it.
        let mut config = env.config();
        config.peers.regular_user_kind = PeerKind::Wireguard;
        m.close().await;
        let m = Mistborn::open(config).await.unwrap();
        let alice = regular(&m, "alice").await;
        let p = m.peers().create(&alice, profile("laptop")).await.unwrap();
        assert_eq!(p.kind, PeerKind::Wireguard);
        m.close().await;
    }
}

/// The data dir is 0700 and the SQLite database with its -wal and -shm files 0600, on a fresh
/// install and after reopening an install made with looser modes.
#[tokio::test]
async fn the_data_dir_and_database_are_private() {
    let env = &engines().await[0];
    let config = env.config();
    let dir = config.data_dir.clone();
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    let check = |when: &str| {
        assert_eq!(mode(&dir), 0o700, "{when}: data dir");
        for f in ["mistborn.db", "mistborn.db-wal", "mistborn.db-shm"] {
            assert_eq!(mode(&dir.join(f)), 0o600, "{when}: {f}");
        }
    };
    let m = Mistborn::open(config.clone()).await.unwrap();
    regular(&m, "bob").await; // a write, so the WAL holds something
    check("fresh install");
    m.close().await;

    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    for f in ["mistborn.db", "mistborn.db-wal", "mistborn.db-shm"] {
        if dir.join(f).exists() {
            std::fs::set_permissions(dir.join(f), std::fs::Permissions::from_mode(0o644)).unwrap();
        }
    }
    let m = Mistborn::open(config).await.unwrap();
    regular(&m, "carol").await;
    check("reopened old install");
    m.close().await;
}
