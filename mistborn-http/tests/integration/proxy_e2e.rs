//! MFA gating end to end through a real Caddy: `mistborn serve` in its own network namespace runs
//! the proxy (managed mode) bound to the server's tunnel address; clients are tunnel addresses on
//! the namespace's loopback, so every request takes the real path: Caddy, `/auth/forward`, the
//! service. Needs root for the namespace (skipped locally without it, failing under CI).

use std::net::IpAddr;
use std::time::{Duration, Instant};

use mistborn_core::auth::TotpSecret;
use mistborn_core::peers::{NewPeer, PeerKind};
use mistborn_core::users::{NewUser, Role};
use mistborn_core::{Actor, Mistborn};
use mistborn_system_tests::{Netns, require};

/// `curl` from `source` in the namespace: (status, body).
fn curl(ns: &Netns, source: IpAddr, args: &[&str]) -> (String, String) {
    let src = source.to_string();
    let mut all = vec![
        "curl",
        "-s",
        "-o",
        "-",
        "-w",
        "\n%{http_code}",
        "--max-time",
        "5",
        "--interface",
        &src,
    ];
    all.extend_from_slice(args);
    let out = ns.exec(&all);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", &text));
    (code.to_string(), body.to_string())
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[tokio::test]
async fn mfa_profile_through_caddy_forward_auth() {
    if !require(
        "mfa_profile_through_caddy_forward_auth",
        &["ip", "caddy", "curl", "python3"],
    ) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let www = dir.path().join("www");
    std::fs::create_dir_all(&www).unwrap();
    std::fs::write(www.join("index.html"), "nextcloud ok").unwrap();
    let config_file = dir.path().join("mistborn.toml");
    std::fs::write(
        &config_file,
        format!(
            "data_dir = \"{}\"\nendpoint = \"vpn.example.org\"\nhttp_listen = \"127.0.0.1:5000\"\n\
             [wireguard]\nbackend = \"none\"\n[dns]\nenabled = false\n\
             [proxy]\nmode = \"managed\"\nhttp_port = 80\nhttps_port = 443\n\
             [[proxy.services]]\nname = \"nextcloud\"\nupstream = \"127.0.0.1:8081\"\n",
            data.display()
        ),
    )
    .unwrap();
    let config = mistborn_core::Config::load(Some(&config_file), |_| None).unwrap();

    // The store: bob with an MFA phone and a WireGuard-only laptop, and a confirmed second factor.
    let (phone, laptop, secret) = {
        let m = Mistborn::open(config.clone()).await.unwrap();
        let bob = m
            .users()
            .create(
                &Actor::System,
                NewUser {
                    username: "bob".into(),
                    password: "a long password".into(),
                    role: Role::Regular,
                },
            )
            .await
            .unwrap();
        let bob = Actor::User {
            id: bob.id,
            role: Role::Regular,
        };
        let phone = m
            .peers()
            .create(
                &bob,
                NewPeer {
                    name: "phone".into(),
                    kind: Some(PeerKind::Mfa),
                    ..Default::default()
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
                    name: "laptop".into(),
                    kind: Some(PeerKind::Wireguard),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        let e = m.auth().enroll(&bob, "bob", now() as i64).await.unwrap();
        let secret = TotpSecret::from_base32(&e.secret_base32).unwrap();
        m.auth()
            .confirm(&bob, "bob", &secret.code_at(now()).unwrap(), now() as i64)
            .await
            .unwrap();
        m.close().await;
        (
            IpAddr::from(phone.address_v4),
            IpAddr::from(laptop.address_v4),
            secret,
        )
    };

    let ns = Netns::new("mbpx");
    let (server4, server6) = mistborn_core::peers::AddressPool::new(
        config.wireguard.subnet_v4,
        config.wireguard.subnet_v6,
    )
    .server_addresses();
    for addr in [
        format!("{server4}/32"),
        format!("{phone}/32"),
        format!("{laptop}/32"),
        "192.0.2.9/32".into(),
    ] {
        ns.exec_ok(&["ip", "addr", "add", &addr, "dev", "lo"]);
    }
    ns.exec_ok(&[
        "ip",
        "-6",
        "addr",
        "add",
        &format!("{server6}/128"),
        "dev",
        "lo",
        "nodad",
    ]);
    let www_s = www.display().to_string();
    let _www = ns.spawn(&[
        "python3",
        "-m",
        "http.server",
        "8081",
        "--bind",
        "127.0.0.1",
        "--directory",
        &www_s,
    ]);
    let bin = env!("CARGO_BIN_EXE_mistborn");
    let cfg = config_file.display().to_string();
    // Dropped first (declared last): serve stops its Caddy before the namespace goes.
    let _serve = ns.spawn(&[bin, "--config", &cfg, "serve"]);

    let ca = data.join("tls").join("ca.pem").display().to_string();
    let resolve = format!("nextcloud.mistborn:443:{server4}");
    let home_resolve = format!("home.mistborn:443:{server4}");
    let service = |ns: &Netns, from: IpAddr| {
        curl(
            ns,
            from,
            &[
                "--cacert",
                &ca,
                "--resolve",
                &resolve,
                "https://nextcloud.mistborn/",
            ],
        )
    };
    // Wait for the daemon and its Caddy.
    let started = Instant::now();
    loop {
        let (code, _) = service(&ns, laptop);
        if code == "200" {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "proxy did not come up (last {code})"
        );
        std::thread::sleep(Duration::from_millis(200));
    }

    // WireGuard-only: through. MFA before login: denied. Not a tunnel address: denied.
    assert_eq!(service(&ns, laptop), ("200".into(), "nextcloud ok".into()));
    assert_eq!(
        service(&ns, phone),
        ("403".into(), "Mistborn: Not authorized".into())
    );
    let outsider: IpAddr = "192.0.2.9".parse().unwrap();
    assert_eq!(service(&ns, outsider).0, "403");
    // (Over plain HTTP: the certificate names only Mistborn's own sites.)
    let (code, body) = curl(
        &ns,
        laptop,
        &[
            "--resolve",
            "other.mistborn:80:10.15.91.1",
            "http://other.mistborn/",
        ],
    );
    assert_eq!(
        (code.as_str(), body.as_str()),
        ("403", "Mistborn: Not authorized"),
        "unknown hosts are denied"
    );

    // Identity through the proxy's hop (its socket): the laptop is bob on home's API, even when
    // it sends a forged X-Forwarded-For of its own (Caddy replaces it; Mistborn takes the
    // rightmost). The same header straight to the API's TCP port is nobody.
    let home_api = |from: IpAddr, path: &str, extra: &[&str]| {
        let url = format!("https://home.mistborn{path}");
        let mut args = vec!["--cacert", &ca, "--resolve", &home_resolve];
        args.extend_from_slice(extra);
        args.push(&url);
        curl(&ns, from, &args)
    };
    let (status, text) = home_api(laptop, "/api/v1/me", &[]);
    assert_eq!(status, "200", "{text}");
    assert!(text.contains("\"username\":\"bob\""), "{text}");
    let forged = format!("X-Forwarded-For: {phone}");
    let (status, text) = home_api(laptop, "/api/v1/auth/whoami", &["-H", &forged]);
    assert_eq!(status, "200", "{text}");
    assert!(text.contains("\"profile\":\"laptop\""), "{text}");
    let outsider_forged = format!("X-Forwarded-For: {laptop}");
    assert_eq!(
        home_api(outsider, "/api/v1/me", &["-H", &outsider_forged]).0,
        "401",
        "a non-tunnel client forging a tunnel address through the proxy"
    );
    let loopback: IpAddr = "127.0.0.1".parse().unwrap();
    let direct = |path: &str, extra: &[&str]| {
        let url = format!("http://127.0.0.1:5000{path}");
        let mut args = vec!["-H", &outsider_forged];
        args.extend_from_slice(extra);
        args.push(&url);
        curl(&ns, loopback, &args)
    };
    let (status, text) = direct("/api/v1/me", &[]);
    assert_eq!(status, "401", "X-Forwarded-For straight to TCP: {text}");
    let (status, text) = direct(
        "/auth/forward",
        &["-H", "X-Forwarded-Host: nextcloud.mistborn"],
    );
    assert_eq!(status, "403", "forward-auth straight to TCP: {text}");

    // Sign in through the proxy's home site, as a browser on the phone would.
    let code = secret.code_at(now() + 30).unwrap();
    let body = format!("{{\"code\":\"{code}\"}}");
    let (status, text) = curl(
        &ns,
        phone,
        &[
            "--cacert",
            &ca,
            "--resolve",
            &home_resolve,
            "-H",
            "content-type: application/json",
            "-H",
            "origin: https://home.mistborn",
            "-d",
            &body,
            "https://home.mistborn/api/v1/auth/login",
        ],
    );
    assert_eq!(status, "200", "{text}");
    assert_eq!(service(&ns, phone), ("200".into(), "nextcloud ok".into()));

    // Sign out: denied again.
    let (status, text) = curl(
        &ns,
        phone,
        &[
            "--cacert",
            &ca,
            "--resolve",
            &home_resolve,
            "-H",
            "origin: https://home.mistborn",
            "-X",
            "POST",
            "https://home.mistborn/api/v1/auth/logout",
        ],
    );
    assert_eq!(status, "204", "{text}");
    assert_eq!(service(&ns, phone).0, "403");
}
