//! The firewall through the real daemon: `mistborn serve` with the firewall on in a server
//! namespace whose default route leads to an "internet" namespace with a web server; two clients
//! on the tunnel (a WireGuard-only and an MFA profile, made over REST, configured from
//! `mistborn getconf`). Login and sign-out go through the REST auth API the way the local proxy
//! calls it; Coppercloud lists and metrics through `/api/v1/firewall`. Needs root, wireguard-go,
//! wg, nft, ping, curl and python3 (skipped locally without them, failing under CI).

use std::time::{Duration, Instant};

use mistborn_system_tests::{Gateway, Netns, client_from_config, eventually, require, unique};
use serde_json::json;

use crate::daemon::{Daemon, DaemonSettings};

const INET: &str = Gateway::INET;
const SERVER_EXT: &str = Gateway::SERVER_EXT;
const SUBNETS: [&str; 3] = ["10.15.91.0/24", "fd15:91::/64", "203.0.113.0/24"];
const TOOLS: [&str; 8] = [
    "ip",
    "wg",
    "wireguard-go",
    "nft",
    "ping",
    "curl",
    "python3",
    "dig",
];

/// Prints how long after a change the data plane showed it.
fn report(what: &str, took: Duration) {
    eprintln!("{what} after {took:?} (zero: the first check after the REST call saw it)");
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// `nft list table inet mistborn` without counter values (they move with traffic).
fn table(srv: &Netns) -> String {
    srv.exec_ok(&["nft", "-s", "list", "table", "inet", "mistborn"])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn daemon_firewall_internet_mfa_coppercloud_probes_and_restart() {
    if !require(
        "daemon_firewall_internet_mfa_coppercloud_probes_and_restart",
        &TOOLS,
    ) {
        return;
    }
    let g = Gateway::new("mbdf");
    let (srv, cli1, cli2, inet, ext) = (&g.srv, &g.cli1, &g.cli2, &g.inet, &g.ext);
    // The second client dials the endpoint through its own veth.
    cli2.exec_ok(&["ip", "route", "add", "10.231.1.0/24", "via", "10.231.2.1"]);
    let www = tempfile::tempdir().unwrap();
    std::fs::write(www.path().join("index.html"), "internet ok").unwrap();
    // A DNS stand-in on the internet: the server reaches it (before its firewall is up).
    let _dns_outside = inet.udp_echo(INET, 53);
    eventually("the outside UDP/53 echo answers", true, || {
        srv.udp_answers(INET, 53)
    });
    let _web = g.web_server(www.path());

    // serve starts the tunnel's wireguard-go itself; its clean stop leaves it running
    // (wireguard.keep_on_stop), so client sessions survive the restart below.
    let iface = unique("mbf");
    let mut settings = DaemonSettings::new(&iface, "10.231.1.1");
    settings.firewall = true;
    settings.dns = true;
    let mut d = Daemon::start(srv, settings);
    let out = d.run_output();
    assert!(out.contains("WireGuard data plane: ON"), "{out}");
    assert!(
        out.contains(&format!(
            "firewall: ON (table inet mistborn, external interface {ext}"
        )),
        "{out}"
    );
    // Nobody ran sysctl in the server namespace: serve turned forwarding on itself.
    assert!(out.contains("IP forwarding: IPv4 on, IPv6 on"), "{out}");
    let admin = d.token("admin");
    let policy = d.api_ok("GET", "/api/v1/firewall/policy", &admin, None, 200);
    assert_eq!(policy["status"]["on"], true, "{policy}");
    assert_eq!(policy["status"]["forwarding"]["ipv4"], true, "{policy}");
    assert_eq!(policy["status"]["forwarding"]["ipv6"], true, "{policy}");
    assert_eq!(
        policy["status"]["external_interface"],
        ext.as_str(),
        "{policy}"
    );

    let wg = d.api_ok(
        "POST",
        "/api/v1/profiles",
        &admin,
        Some(json!({"name": "wgonly"})),
        201,
    );
    let mfa = d.api_ok(
        "POST",
        "/api/v1/profiles",
        &admin,
        Some(json!({"name": "mfa", "kind": "mfa"})),
        201,
    );
    let mfa_v4 = mfa["address_v4"].as_str().unwrap().to_string();
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let p = d.api_ok("GET", "/api/v1/firewall/policy", &admin, None, 200);
        // The MFA profile waits in the gate set until its user signs in.
        if p["policy"]["mfa_pending"]
            .as_array()
            .is_some_and(|a| a.iter().any(|x| x == mfa_v4.as_str()))
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "MFA address not pending in the policy: {p}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // Clients from `mistborn getconf`; their tunnels also route the internet subnet.
    let tmp = tempfile::tempdir().unwrap();
    let conf = |name: &str| {
        d.cli_ok(&["getconf", name, "--no-qr"])
            .replace("AllowedIPs = ", "AllowedIPs = 203.0.113.0/24, ")
    };
    let _c1 = client_from_config(cli1, &conf("wgonly"), tmp.path(), &SUBNETS);
    let _c2 = client_from_config(cli2, &conf("mfa"), tmp.path(), &SUBNETS);
    let web = Gateway::WEB;

    // WireGuard-only: the internet through masquerade. MFA before login: Mistborn only.
    let took = eventually("wg-only client reaches the internet", true, || {
        cli1.fetch_ok(web)
    });
    report("wg-only client reached the internet", took);
    assert!(
        cli2.ping("10.15.91.1", 2, 2),
        "MFA client cannot reach Mistborn"
    );
    assert!(
        !cli2.fetch_ok(web),
        "MFA client reached the internet before login"
    );

    // DNS: Mistborn's resolver answers a tunnel client; the client's query straight to the
    // internet's port 53 is dropped (the egress lock).
    let answer = cli1.exec_ok(&[
        "dig",
        "+short",
        "+time=1",
        "+tries=2",
        "@10.15.91.1",
        "home.mistborn",
    ]);
    assert_eq!(answer.trim(), "10.15.91.1", "Mistborn's resolver");
    assert!(!cli1.udp_answers(INET, 53), "DNS left the tunnel");

    // Restart: an identical table, forwarding still on, and the client's session (kept by the
    // wireguard-go serve left running) still reaches the internet.
    let before = table(srv);
    assert!(before.contains("table inet mistborn"), "{before}");
    d.stop();
    assert!(
        cli1.fetch_ok(web),
        "wg-only client lost the internet while serve was stopped"
    );
    d.restart();
    let after = table(srv);
    assert_eq!(before, after, "the restart changed the table");
    assert!(
        cli1.fetch_ok(web),
        "wg-only client lost the internet after the restart"
    );

    // MFA login over REST, as the proxy calls it (over its socket, naming the client).
    let enrolled = d.api_ok(
        "POST",
        "/api/v1/auth/totp/enroll",
        &admin,
        Some(json!({"user": "admin"})),
        200,
    );
    let secret =
        mistborn_core::auth::TotpSecret::from_base32(enrolled["secret"].as_str().unwrap()).unwrap();
    let t = unix_now();
    d.api_ok(
        "POST",
        "/api/v1/auth/totp/confirm",
        &admin,
        Some(json!({"user": "admin", "code": secret.code_at(t).unwrap()})),
        200,
    );
    let code = secret.code_at(t + 30).unwrap();
    let (status, v) = d.api_as_client(
        "POST",
        "/api/v1/auth/login",
        &mfa_v4,
        Some(&json!({"code": code})),
    );
    assert_eq!(status, 200, "login: {v}");
    let took = eventually("MFA client reaches the internet after login", true, || {
        cli2.fetch_ok(web)
    });
    report("MFA login -> internet reachable", took);
    // Client-to-client over REST: only between two devices that both opted in (a flagged
    // device used to reach one that never did). The MFA device is signed in.
    assert!(!cli1.ping(&mfa_v4, 1, 1), "clients reached each other");
    let c2c_on = |p: &serde_json::Value| {
        d.api_ok(
            "PATCH",
            &format!("/api/v1/profiles/{}", p["id"].as_str().unwrap()),
            &admin,
            Some(json!({"client_to_client": true})),
            200,
        )
    };
    let c2c_in_policy = |n: usize| {
        let deadline = Instant::now() + Duration::from_secs(3);
        loop {
            let p = d.api_ok("GET", "/api/v1/firewall/policy", &admin, None, 200);
            if p["policy"]["client_to_client"]
                .as_array()
                .is_some_and(|a| a.len() == n)
            {
                break;
            }
            assert!(Instant::now() < deadline, "client-to-client set: {p}");
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    c2c_on(&wg);
    c2c_in_policy(2);
    assert!(
        !cli1.ping(&mfa_v4, 2, 1),
        "a flagged device reached one that never opted in"
    );
    c2c_on(&mfa);
    c2c_in_policy(4);
    let took = eventually("client-to-client with both flags", true, || {
        cli1.ping(&mfa_v4, 1, 1)
    });
    report("client_to_client on both -> first ping through", took);
    assert!(
        cli2.ping(wg["address_v4"].as_str().unwrap(), 1, 1),
        "one way only"
    );
    // A long-lived TCP stream through the tunnel: the internet host writes every 10 ms, the MFA
    // client reads. Sign-out must end it within a second, not only refuse new flows.
    let stream_at: std::net::SocketAddr = format!("{INET}:9099").parse().unwrap();
    let listener = inet.listen(stream_at).unwrap();
    let writing = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let writer = {
        let writing = writing.clone();
        std::thread::spawn(move || {
            use std::io::Write;
            let (mut s, _) = listener.accept().unwrap();
            s.set_write_timeout(Some(Duration::from_millis(200)))
                .unwrap();
            while writing.load(std::sync::atomic::Ordering::Relaxed) {
                // A full send buffer (the stream was cut) times out; keep trying until told.
                let _ = s.write_all(b"tick\n");
                std::thread::sleep(Duration::from_millis(10));
            }
        })
    };
    let mut stream = cli2.connect(stream_at).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    let mut buf = [0u8; 4096];
    let mut read_some = |s: &mut std::net::TcpStream| {
        use std::io::Read;
        matches!(s.read(&mut buf), Ok(n) if n > 0)
    };
    let flowing = Instant::now();
    while !read_some(&mut stream) {
        assert!(
            flowing.elapsed() < Duration::from_secs(3),
            "the stream never delivered"
        );
    }
    let signed_out = Instant::now();
    let (status, v) = d.api_as_client("POST", "/api/v1/auth/logout", &mfa_v4, None);
    assert_eq!(status, 204, "logout: {v}");
    let mut last = signed_out;
    while signed_out.elapsed() < Duration::from_secs(3) {
        if read_some(&mut stream) {
            last = Instant::now();
        }
    }
    writing.store(false, std::sync::atomic::Ordering::Relaxed);
    writer.join().unwrap();
    let delivered = last - signed_out;
    eprintln!("MFA sign-out -> the open stream's last data after {delivered:?}");
    assert!(
        delivered < Duration::from_secs(1),
        "the open TCP stream kept delivering {delivered:?} after sign-out"
    );
    let took = eventually("MFA client cut off after sign-out", false, || {
        cli2.fetch_ok(web)
    });
    report("MFA sign-out -> internet cut off", took);
    assert!(
        cli2.ping("10.15.91.1", 1, 2),
        "signed-out MFA client lost Mistborn"
    );

    // Both flagged, but the MFA device is signed out: gated both ways.
    assert!(!cli1.ping(&mfa_v4, 1, 1), "a signed-out device was reached");

    // Coppercloud block list over REST: stops the web server; deleting it restores it.
    let list = d.api_ok(
        "POST",
        "/api/v1/firewall/lists",
        &admin,
        Some(json!({"name": "bad-hosts", "mode": "block", "content": format!("# test\n{INET}\n2001:db8::/32\n")})),
        201,
    );
    assert_eq!(list["entries"], 2, "{list}");
    let took = eventually("block list stops the web server", false, || {
        cli1.fetch_ok(web)
    });
    report("block list created -> traffic stopped", took);
    // A malformed update is refused with its line number; the last good copy stays in force.
    let id = list["id"].as_str().unwrap();
    let (status, e) = d.api(
        "PATCH",
        &format!("/api/v1/firewall/lists/{id}"),
        Some(&admin),
        Some(&json!({"content": "192.0.2.1\nnonsense\n"})),
    );
    assert_eq!(status, 400, "{e}");
    assert!(
        e["error"]["message"].as_str().unwrap().contains("line 2"),
        "{e}"
    );
    assert!(!cli1.fetch_ok(web), "the last good list was dropped");
    let hits = d.api_ok("GET", "/api/v1/firewall/metrics", &admin, None, 200);
    assert!(
        hits["lists"]
            .as_array()
            .unwrap()
            .iter()
            .any(|h| h["packets"].as_u64() > Some(0)),
        "no Coppercloud hits counted: {hits}"
    );
    d.api_ok(
        "DELETE",
        &format!("/api/v1/firewall/lists/{id}"),
        &admin,
        None,
        204,
    );
    // Short probes: a SYN dropped before the new table is in force is only retried after 1 s.
    let took = eventually("traffic restored without the list", true, || {
        cli1.exec(&["curl", "-s", "-o", "/dev/null", "--max-time", "0.2", web])
            .status
            .success()
    });
    report("block list deleted -> traffic restored", took);

    // Probes from the internet to closed ports on the server show up with source and port.
    for port in ["2222", "3389"] {
        // Dropped: the fetch fails, and it is counted.
        let _ = inet.fetch_ok(&format!("http://{SERVER_EXT}:{port}/"));
    }
    let _ = inet.udp_answers(SERVER_EXT, 5060);
    let deadline = Instant::now() + Duration::from_secs(5);
    let metrics = loop {
        let m = d.api_ok("GET", "/api/v1/firewall/metrics", &admin, None, 200);
        let found = |proto: &str, port: u64| {
            m["probes"].as_array().is_some_and(|ps| {
                ps.iter()
                    .any(|p| p["source"] == INET && p["protocol"] == proto && p["port"] == port)
            })
        };
        if found("tcp", 2222) && found("tcp", 3389) && found("udp", 5060) {
            break m;
        }
        assert!(
            Instant::now() < deadline,
            "probes missing from the metrics: {m}"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(metrics["top_sources"][0]["source"], INET, "{metrics}");
    assert!(
        metrics["top_ports"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["port"] == 2222),
        "{metrics}"
    );
    drop(d);
}
