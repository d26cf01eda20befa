//! One change mechanism across processes, through the real daemon: `mistborn serve` (data plane,
//! firewall, DNS on) in a network namespace and the `mistborn` CLI as the second process on the
//! same data dir. Each domain's CLI write must be in force in the daemon within 1 s: a profile on
//! the interface, a DNS deny rule answered as blocked by a real DNS query, a Coppercloud list in
//! the nftables table, a demoted superuser refused by the API. Prints the latencies. Needs root,
//! wireguard-go, wg, nft and dig (skipped locally without them, failing under CI).

use std::time::{Duration, Instant};

use mistborn_system_tests::{Netns, require, unique};

use crate::daemon::{Daemon, DaemonSettings};

const TOOLS: [&str; 5] = ["ip", "wg", "wireguard-go", "nft", "dig"];

/// Polls `f` every 10 ms until it is true; fails after 1 s. Returns how long it took.
fn within_a_second(what: &str, started: Instant, mut f: impl FnMut() -> bool) -> Duration {
    loop {
        if f() {
            let took = started.elapsed();
            eprintln!("cross-process: {what} after {took:?}");
            return took;
        }
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "{what}: not in force within 1 s"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_writes_are_in_force_in_the_daemon_within_a_second() {
    if !require(
        "cli_writes_are_in_force_in_the_daemon_within_a_second",
        &TOOLS,
    ) {
        return;
    }
    let srv = Netns::new("mbxp");
    srv.exec_ok(&["ip", "link", "set", "lo", "up"]);
    let iface = unique("mbx");
    let mut settings = DaemonSettings::new(&iface, "10.231.9.1");
    settings.subnet_v4 = "10.15.97.0/24".into();
    settings.subnet_v6 = "fd15:97::/64".into();
    settings.firewall = true;
    settings.dns = true;
    settings.listen_port = 51897;
    let d = Daemon::start(&srv, settings);
    let out = d.run_output();
    assert!(out.contains("WireGuard data plane: ON"), "{out}");
    assert!(out.contains("firewall: ON"), "{out}");
    assert!(out.contains("serving DNS on"), "{out}");
    assert!(out.contains("change watcher: ON (SQLite"), "{out}");

    // Profiles: the CLI adds one; it is a peer on the interface.
    let peers = || {
        srv.exec_ok(&["wg", "show", &iface, "peers"])
            .lines()
            .count()
    };
    let before = peers();
    let t = Instant::now();
    d.cli_ok(&["peer", "add", "laptop"]);
    let mut took = vec![within_a_second("profile on the interface", t, || {
        peers() == before + 1
    })];

    // DNS: a deny rule is answered as blocked (the null address) by serve's resolver.
    let answer = || {
        srv.exec(&[
            "dig",
            "@10.15.97.1",
            "+short",
            "+time=1",
            "+tries=1",
            "ads.example.",
        ])
        .stdout
    };
    assert_ne!(String::from_utf8_lossy(&answer()).trim(), "0.0.0.0");
    let t = Instant::now();
    d.cli_ok(&["dns", "rule", "add", "deny", "ads.example"]);
    took.push(within_a_second(
        "DNS deny rule answered as blocked",
        t,
        || String::from_utf8_lossy(&answer()).trim() == "0.0.0.0",
    ));

    // Firewall: a Coppercloud block list lands in the table.
    let list = d.dir.path().join("block.txt");
    std::fs::write(&list, "198.51.100.0/24\n").unwrap();
    let table = || srv.exec_ok(&["nft", "list", "table", "inet", "mistborn"]);
    assert!(!table().contains("198.51.100.0/24"));
    let t = Instant::now();
    d.cli_ok(&[
        "firewall",
        "list",
        "add",
        "scanners",
        "--file",
        list.to_str().unwrap(),
    ]);
    took.push(within_a_second("Coppercloud list in the table", t, || {
        table().contains("198.51.100.0/24")
    }));

    // Users: a superuser demoted by the CLI loses superuser rights in the daemon.
    d.cli_ok(&[
        "user",
        "add",
        "bob",
        "--superuser",
        "--password",
        "a long password",
    ]);
    let token = d.token("bob");
    let (status, _) = d.api("GET", "/api/v1/users", Some(&token), None);
    assert_eq!(status, 200);
    let t = Instant::now();
    d.cli_ok(&["user", "role", "bob", "regular"]);
    took.push(within_a_second("demoted user refused", t, || {
        d.api("GET", "/api/v1/users", Some(&token), None).0 == 403
    }));
    eprintln!("cross-process latencies (profile, DNS rule, Coppercloud, role): {took:?}");
}
