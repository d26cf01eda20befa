//! Auth against the real store: TOTP enrollment, MFA login bound to a tunnel address, lockout,
//! session expiry, recovery codes, and the forward-auth decision.
#![allow(clippy::unwrap_used)]

mod common;

use std::net::IpAddr;

use mistborn_core::auth::{DenyReason, ForwardDecision, TotpSecret};
use mistborn_core::peers::{NewPeer, PeerKind};
use mistborn_core::{Actor, Change, ErrorKind, Mistborn};

use common::{engines, profile, regular};

const NOW: i64 = 1_800_000_000;

/// Reads the secret back the way an authenticator app does: from the otpauth URI.
fn secret_of(uri: &str) -> TotpSecret {
    let b32 = uri
        .split("secret=")
        .nth(1)
        .unwrap()
        .split('&')
        .next()
        .unwrap();
    let bytes = base32_decode(b32);
    TotpSecret::from_bytes(bytes).unwrap()
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

async fn enrolled_user(m: &Mistborn, name: &str) -> (Actor, TotpSecret) {
    let actor = regular(m, name).await;
    let e = m.auth().enroll(&actor, name, NOW).await.unwrap();
    assert_eq!(&e.qr_png[..4], b"\x89PNG");
    let secret = secret_of(&e.otpauth_uri);
    assert_eq!(
        e.secret_base32.trim_end_matches('='),
        secret.to_base32().trim_end_matches('=')
    );
    let codes = m
        .auth()
        .confirm(&actor, name, &secret.code_at(NOW as u64).unwrap(), NOW)
        .await
        .unwrap();
    assert_eq!(codes.len(), 10);
    (actor, secret)
}

fn drain(rx: &mut tokio::sync::broadcast::Receiver<Change>) -> Vec<(IpAddr, bool)> {
    let mut out = Vec::new();
    while let Ok(c) = rx.try_recv() {
        if let Change::Access { address, open } = c {
            out.push((address, open));
        }
    }
    out
}

#[tokio::test]
async fn mfa_profile_needs_a_login_that_opens_and_closes_access() {
    for env in engines().await {
        let m = Mistborn::open(env.config()).await.unwrap();
        let (bob, secret) = enrolled_user(&m, "bob").await;
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
        // A WireGuard-only profile is a superuser's decision.
        let laptop = m
            .peers()
            .create(
                &Actor::System,
                NewPeer {
                    user: Some("bob".into()),
                    kind: Some(PeerKind::Wireguard),
                    ..profile("laptop")
                },
            )
            .await
            .unwrap();
        let addr = IpAddr::from(phone.address_v4);
        let host = Some("home.mistborn");

        let before = m.auth().forward(Some(addr), host, NOW).await.unwrap();
        assert_eq!(
            before,
            ForwardDecision::Deny(DenyReason::SignInRequired),
            "{}",
            env.engine
        );
        let id = m.auth().identify(addr, NOW).await.unwrap().unwrap();
        assert!(!id.verified());
        assert_eq!(
            id.verified_actor().unwrap_err().kind(),
            ErrorKind::Unauthenticated
        );

        // WireGuard-only profiles pass on the tunnel alone; other addresses and hosts never do.
        let allow = m
            .auth()
            .forward(
                Some(laptop.address_v6.into()),
                Some("home.mistborn:443"),
                NOW,
            )
            .await
            .unwrap();
        assert!(
            matches!(allow, ForwardDecision::Allow { ref username, .. } if username.as_str() == "bob")
        );
        for (a, h, why) in [
            (
                Some("192.0.2.1".parse().unwrap()),
                host,
                DenyReason::NotTunnel,
            ),
            (None, host, DenyReason::NotTunnel),
            (
                Some(laptop.address_v4.into()),
                Some("evil.example"),
                DenyReason::UnknownHost,
            ),
            (
                Some(laptop.address_v4.into()),
                None,
                DenyReason::UnknownHost,
            ),
        ] {
            assert_eq!(
                m.auth().forward(a, h, NOW).await.unwrap(),
                ForwardDecision::Deny(why)
            );
        }

        let mut rx = m.subscribe();
        let wrong = m.auth().login(addr, "000000", NOW + 30).await.unwrap_err();
        assert_eq!(wrong.kind(), ErrorKind::Unauthenticated);
        let code = secret.code_at((NOW + 30) as u64).unwrap();
        let session = m.auth().login(addr, &code, NOW + 30).await.unwrap();
        assert_eq!(session.address, addr);
        let opened = drain(&mut rx);
        assert!(
            opened.contains(&(phone.address_v4.into(), true)),
            "{opened:?}"
        );
        assert!(opened.contains(&(phone.address_v6.into(), true)));
        assert!(matches!(
            m.auth().forward(Some(addr), host, NOW + 31).await.unwrap(),
            ForwardDecision::Allow { .. }
        ));
        assert_eq!(m.auth().open_addresses(NOW + 31).await.unwrap().len(), 2);

        // The same code is never accepted twice.
        let replay = m.auth().login(addr, &code, NOW + 40).await.unwrap_err();
        assert_eq!(replay.kind(), ErrorKind::Unauthenticated);

        assert_eq!(m.auth().sessions(&bob).await.unwrap().len(), 1);
        m.auth().sign_out(addr, NOW + 50).await.unwrap();
        let closed = drain(&mut rx);
        assert!(
            closed.contains(&(phone.address_v4.into(), false)),
            "{closed:?}"
        );
        assert_eq!(
            m.auth().forward(Some(addr), host, NOW + 51).await.unwrap(),
            ForwardDecision::Deny(DenyReason::SignInRequired)
        );
        assert!(m.auth().open_addresses(NOW + 51).await.unwrap().is_empty());
        m.close().await;
    }
}

#[tokio::test]
async fn sessions_expire_and_are_cleaned_up() {
    let env = &engines().await[0];
    let mut config = env.config();
    config.auth.session_ttl_secs = 600;
    let m = Mistborn::open(config).await.unwrap();
    let (bob, secret) = enrolled_user(&m, "bob").await;
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
    let addr = IpAddr::from(phone.address_v4);
    let t = NOW + 60;
    m.auth()
        .login(addr, &secret.code_at(t as u64).unwrap(), t)
        .await
        .unwrap();
    assert!(
        m.auth()
            .identify(addr, t + 599)
            .await
            .unwrap()
            .unwrap()
            .verified()
    );
    assert!(
        !m.auth()
            .identify(addr, t + 600)
            .await
            .unwrap()
            .unwrap()
            .verified(),
        "expired at the TTL"
    );
    let mut rx = m.subscribe();
    assert_eq!(m.auth().expire_sessions(t + 599).await.unwrap(), 0);
    assert_eq!(m.auth().expire_sessions(t + 600).await.unwrap(), 1);
    assert!(drain(&mut rx).contains(&(addr, false)));
    assert!(m.auth().sessions(&Actor::System).await.unwrap().is_empty());
}

#[tokio::test]
async fn brute_force_is_refused_for_a_while() {
    let env = &engines().await[0];
    let m = Mistborn::open(env.config()).await.unwrap(); // default: 5 failures in 300 s -> 900 s ban
    let (bob, secret) = enrolled_user(&m, "bob").await;
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
    let addr = IpAddr::from(phone.address_v4);
    let t = NOW + 100;
    for i in 0..4 {
        let e = m.auth().login(addr, "123456", t + i).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Unauthenticated, "attempt {i}");
    }
    let banned = m.auth().login(addr, "123456", t + 4).await.unwrap_err();
    assert_eq!(banned.kind(), ErrorKind::RateLimited);
    assert!(banned.to_string().contains("900 seconds"), "{banned}");
    // Even the right code is refused during the ban, and the message says how long to wait.
    let right = secret.code_at((t + 10) as u64).unwrap();
    let e = m.auth().login(addr, &right, t + 10).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::RateLimited);
    let later = t + 4 + 900;
    m.auth()
        .login(addr, &secret.code_at(later as u64).unwrap(), later)
        .await
        .unwrap();
}

/// Hundreds of wrong codes at once (both engines): the limit is counted when an attempt starts,
/// not when its check ends, so at most `max_failures` codes are ever judged wrong (401); every
/// other attempt is refused (429) without its code being looked at.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_burst_of_concurrent_wrong_codes_is_throttled_at_the_limit() {
    for env in engines().await {
        let m = Mistborn::open(env.config()).await.unwrap(); // default: 5 failures -> ban
        let (bob, _) = enrolled_user(&m, "bob").await;
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
        let addr = IpAddr::from(phone.address_v4);
        let tasks: Vec<_> = (0..300)
            .map(|_| {
                let m = m.clone();
                tokio::spawn(async move { m.auth().login(addr, "000000", NOW + 100).await })
            })
            .collect();
        let (mut wrong, mut throttled) = (0, 0);
        for t in tasks {
            match t.await.unwrap().unwrap_err().kind() {
                ErrorKind::Unauthenticated => wrong += 1,
                ErrorKind::RateLimited => throttled += 1,
                other => panic!("{}: unexpected {other:?}", env.engine),
            }
        }
        assert!(
            wrong <= 5,
            "{}: {wrong} wrong codes were judged (limit 5)",
            env.engine
        );
        assert_eq!(wrong + throttled, 300, "{}", env.engine);
        assert!(wrong >= 1, "{}: the first attempts are judged", env.engine);
        m.close().await;
    }
}

/// An enrollment racing a confirmation (both engines, many rounds): either the confirmation wins and
/// the enrollment is refused, or the enrollment wins and the confirmation (made with the replaced
/// secret) fails. A confirmation that reported success is never wiped.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_concurrent_enrollment_never_wipes_a_confirmation() {
    for env in engines().await {
        let m = Mistborn::open(env.config()).await.unwrap();
        let (mut confirmed_won, mut enroll_won) = (0, 0);
        for round in 0..20 {
            let name = format!("user{round}");
            let actor = regular(&m, &name).await;
            let e = m.auth().enroll(&actor, &name, NOW).await.unwrap();
            let code = secret_of(&e.otpauth_uri).code_at(NOW as u64).unwrap();
            let (m1, a1, n1) = (m.clone(), actor.clone(), name.clone());
            let confirm =
                tokio::spawn(async move { m1.auth().confirm(&a1, &n1, &code, NOW).await });
            let (m2, a2, n2) = (m.clone(), actor.clone(), name.clone());
            let enroll = tokio::spawn(async move { m2.auth().enroll(&a2, &n2, NOW).await });
            let (confirm, enroll) = (confirm.await.unwrap(), enroll.await.unwrap());
            let status = m.auth().status(&actor, &name).await.unwrap();
            match (&confirm, &enroll) {
                (Ok(_), Err(e)) => {
                    assert_eq!(e.kind(), ErrorKind::Conflict, "{}: {e}", env.engine);
                    assert!(status.confirmed, "{}: round {round}", env.engine);
                    confirmed_won += 1;
                }
                (Err(_), Ok(_)) => {
                    assert!(!status.confirmed, "{}: round {round}", env.engine);
                    enroll_won += 1;
                }
                (c, e) => panic!(
                    "{}: round {round}: confirm {:?} and enroll {:?} both {}",
                    env.engine,
                    c.as_ref().map(|_| ()),
                    e.as_ref().map(|_| ()),
                    if c.is_ok() {
                        "succeeded: the confirmation was wiped"
                    } else {
                        "failed"
                    }
                ),
            }
        }
        eprintln!(
            "{}: confirm won {confirmed_won}, enroll won {enroll_won}",
            env.engine
        );
        m.close().await;
    }
}

#[tokio::test]
async fn recovery_codes_work_once_and_reset_needs_a_superuser() {
    for env in engines().await {
        let m = Mistborn::open(env.config()).await.unwrap();
        let bob = regular(&m, "bob").await;
        let e = m.auth().enroll(&bob, "bob", NOW).await.unwrap();
        let secret = secret_of(&e.otpauth_uri);
        assert_eq!(
            m.auth()
                .confirm(&bob, "bob", "000000", NOW)
                .await
                .unwrap_err()
                .kind(),
            ErrorKind::InvalidInput
        );
        let codes = m
            .auth()
            .confirm(&bob, "bob", &secret.code_at(NOW as u64).unwrap(), NOW)
            .await
            .unwrap();
        assert_eq!(
            m.auth().enroll(&bob, "bob", NOW).await.unwrap_err().kind(),
            ErrorKind::Conflict,
            "a confirmed factor is not silently replaced"
        );
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
        let addr = IpAddr::from(phone.address_v6);
        m.auth()
            .login(addr, &codes[0].to_lowercase(), NOW + 5)
            .await
            .unwrap();
        assert_eq!(
            m.auth()
                .login(addr, &codes[0], NOW + 6)
                .await
                .unwrap_err()
                .kind(),
            ErrorKind::Unauthenticated,
            "{}: a recovery code works once",
            env.engine
        );
        assert_eq!(
            m.auth()
                .status(&bob, "bob")
                .await
                .unwrap()
                .recovery_codes_left,
            9
        );

        assert_eq!(
            m.auth().reset(&bob, "bob").await.unwrap_err().kind(),
            ErrorKind::Forbidden
        );
        m.auth().reset(&Actor::System, "bob").await.unwrap();
        let status = m.auth().status(&bob, "bob").await.unwrap();
        assert!(!status.enrolled && !status.confirmed);
        assert!(
            m.auth().sessions(&Actor::System).await.unwrap().is_empty(),
            "reset ends sessions"
        );
        m.close().await;
    }
}
