//! The firewall's policy against real traffic through `mistborn serve`: devices dialling the
//! alternate ports udp/443 and udp/53 from the internet, ports a container engine publishes,
//! and what the server itself answers from outside the tunnel (SSH for the admin source only,
//! web and DNS only in the tunnel, WireGuard silent to strangers, the rest counted as probes).
//! Needs root, wireguard-go, wg, nft, ping, curl, python3, dig and sysctl (skipped locally without
//! them, failing under CI).

use std::time::{Duration, Instant};

use mistborn_system_tests::{
    Gateway, Netns, WireguardGo, client_from_config, eventually, require, run_ok, unique, veth,
};
use serde_json::{Value, json};

use crate::daemon::{Daemon, DaemonSettings};

const INET: &str = Gateway::INET;
const SERVER_EXT: &str = Gateway::SERVER_EXT;
const SERVER_TUNNEL: &str = "10.15.91.1";
const SUBNETS: [&str; 2] = ["10.15.91.0/24", "fd15:91::/64"];
const TOOLS: [&str; 9] = [
    "ip",
    "wg",
    "wireguard-go",
    "nft",
    "ping",
    "curl",
    "python3",
    "dig",
    "sysctl",
];

/// `dig` of Mistborn's own name at `server` from `ns`: the answer, or empty.
fn dig_home(ns: &Netns, server: &str) -> String {
    let out = ns.exec(&[
        "dig",
        "+short",
        "+time=1",
        "+tries=2",
        &format!("@{server}"),
        "home.mistborn",
    ]);
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Makes a profile over REST; its JSON.
fn profile(d: &Daemon, admin: &str, body: Value) -> Value {
    d.api_ok("POST", "/api/v1/profiles", admin, Some(body), 201)
}

/// Polls `nft list table inet mistborn` until it contains `needle`.
fn wait_table(srv: &Netns, needle: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let t = srv.exec_ok(&["nft", "-s", "list", "table", "inet", "mistborn"]);
        if t.contains(needle) {
            return t;
        }
        assert!(
            Instant::now() < deadline,
            "no '{needle}' in the table:\n{t}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn daemon_alternate_ports_reach_wireguard_and_keep_dns() {
    if !require(
        "daemon_alternate_ports_reach_wireguard_and_keep_dns",
        &TOOLS,
    ) {
        return;
    }
    let t0 = Instant::now();
    let g = Gateway::new("mbap");
    let (srv, inet) = (&g.srv, &g.inet);
    // Two devices out on the internet: their packets reach the server on its external interface.
    let (dev443, _) = g.remote("mbar", 0);
    let (dev53, _) = g.remote("mbaq", 1);
    // The server's own upstream DNS stand-in on the internet.
    let _dns_outside = inet.udp_echo(INET, 53);
    eventually("the outside UDP/53 echo answers", true, || {
        srv.udp_answers(INET, 53)
    });

    // Two LAN devices beside the WAN, on the server's other interfaces (not the default route).
    let (lan443, lan53) = (&g.cli1, &g.cli2);

    let iface = unique("mba");
    let mut settings = DaemonSettings::new(&iface, SERVER_EXT);
    settings.firewall = true;
    settings.dns = true;
    let d = Daemon::start(srv, settings);
    let admin = d.token("admin");
    let p443 = profile(&d, &admin, json!({"name": "p443", "listen_port": "udp443"}));
    assert_eq!(p443["listen_port"], "udp443", "{p443}");
    let p53 = profile(&d, &admin, json!({"name": "p53", "listen_port": "udp53"}));
    assert_eq!(p53["listen_port"], "udp53", "{p53}");
    let table = wait_table(srv, "udp dport { 53, 443 } redirect to :51820");
    let l443 = profile(
        &d,
        &admin,
        json!({"name": "lan443", "listen_port": "udp443"}),
    );
    let l53 = profile(&d, &admin, json!({"name": "lan53", "listen_port": "udp53"}));

    let tmp = tempfile::tempdir().unwrap();
    let conf443 = d.cli_ok(&["getconf", "p443", "--no-qr"]);
    let conf53 = d.cli_ok(&["getconf", "p53", "--no-qr"]);
    assert!(
        conf443.contains(&format!("Endpoint = {SERVER_EXT}:443\n")),
        "{conf443}"
    );
    assert!(
        conf53.contains(&format!("Endpoint = {SERVER_EXT}:53\n")),
        "{conf53}"
    );
    let _c443 = client_from_config(&dev443, &conf443, tmp.path(), &SUBNETS);
    let _c53 = client_from_config(&dev53, &conf53, tmp.path(), &SUBNETS);
    // The LAN devices dial the server's address on their own segment.
    let lan_conf = |name: &str, server: &str| {
        d.cli_ok(&["getconf", name, "--no-qr"]).replace(
            &format!("Endpoint = {SERVER_EXT}:"),
            &format!("Endpoint = {server}:"),
        )
    };
    let conf = lan_conf("lan443", "10.231.1.1");
    assert!(conf.contains("Endpoint = 10.231.1.1:443\n"), "{conf}");
    let _l443 = client_from_config(lan443, &conf, tmp.path(), &SUBNETS);
    let conf = lan_conf("lan53", "10.231.2.1");
    assert!(conf.contains("Endpoint = 10.231.2.1:53\n"), "{conf}");
    let _l53 = client_from_config(lan53, &conf, tmp.path(), &SUBNETS);
    // Nothing listens on 443 or 53 of the external address: only the redirect to the WireGuard
    // port can complete these handshakes.
    let took = eventually("the udp/443 device reaches the server", true, || {
        dev443.ping(SERVER_TUNNEL, 1, 1)
    });
    eprintln!("udp/443 tunnel up after {took:?}");
    let took = eventually("the udp/53 device reaches the server", true, || {
        dev53.ping(SERVER_TUNNEL, 1, 1)
    });
    eprintln!("udp/53 tunnel up after {took:?}");
    // The alternate ports work on every outside interface, not only the default route's (a LAN
    // device's handshake used to be dropped as a probe).
    let took = eventually("the LAN udp/443 device reaches the server", true, || {
        lan443.ping(SERVER_TUNNEL, 1, 1)
    });
    eprintln!("LAN udp/443 tunnel up after {took:?}");
    let took = eventually("the LAN udp/53 device reaches the server", true, || {
        lan53.ping(SERVER_TUNNEL, 1, 1)
    });
    eprintln!("LAN udp/53 tunnel up after {took:?}");
    for (name, p) in [("lan443", &l443), ("lan53", &l53)] {
        let addr = p["address_v4"].as_str().unwrap();
        assert!(
            srv.ping(addr, 1, 1),
            "{name} is not reached through its tunnel"
        );
    }
    // Not on the tunnel: the udp/53 device's DNS inside its tunnel is answered by Mistborn's
    // resolver, not swallowed by WireGuard.
    assert_eq!(dig_home(&dev53, SERVER_TUNNEL), SERVER_TUNNEL, "resolver");
    assert_eq!(dig_home(&dev443, SERVER_TUNNEL), SERVER_TUNNEL, "resolver");
    // And the host's own DNS: through Mistborn's resolver (locally generated, never redirected)
    // and from an outside resolver (its answers come back from port 53).
    assert_eq!(
        dig_home(srv, SERVER_TUNNEL),
        SERVER_TUNNEL,
        "host -> resolver"
    );
    assert!(
        srv.udp_answers(INET, 53),
        "the server lost its outside DNS to the udp/53 redirect"
    );
    assert!(
        table.lines().any(|l| l.contains(&format!("\"{iface}\""))
            && l.contains("\"lo\"")
            && l.ends_with("return")),
        "the tunnel is not exempt from the redirect:\n{table}"
    );
    assert!(
        !table.contains(&format!("iifname \"{}\"", g.ext)),
        "the redirect is tied to the default route's interface:\n{table}"
    );
    // Dropping the last udp/53 profiles takes its redirect away; udp/443 stays.
    for p in [&p53, &l53] {
        d.api_ok(
            "DELETE",
            &format!("/api/v1/profiles/{}", p["id"].as_str().unwrap()),
            &admin,
            None,
            204,
        );
    }
    wait_table(srv, "udp dport 443 redirect to :51820");
    eprintln!("alternate ports test took {:?}", t0.elapsed());
}

/// Publishes `port` of the server to the container's port 80 the way Docker does with
/// iptables-nft: DNAT in `table ip nat`, forward accepts in `table ip filter`, masquerade of
/// the container network. Returns the tables' text.
fn engine_tables(srv: &Netns, bridge: &str, port: u16) -> String {
    let script = format!(
        "table ip nat {{\n\
         chain PREROUTING {{ type nat hook prerouting priority dstnat; policy accept;\n\
         fib daddr type local tcp dport {port} dnat to 172.18.0.2:80; }}\n\
         chain OUTPUT {{ type nat hook output priority -100; policy accept;\n\
         ip daddr != 127.0.0.0/8 fib daddr type local tcp dport {port} dnat to 172.18.0.2:80; }}\n\
         chain POSTROUTING {{ type nat hook postrouting priority srcnat; policy accept;\n\
         ip saddr 172.18.0.0/24 oifname != \"{bridge}\" masquerade; }}\n}}\n\
         table ip filter {{\n\
         chain FORWARD {{ type filter hook forward priority filter; policy drop;\n\
         oifname \"{bridge}\" ct state established,related accept\n\
         oifname \"{bridge}\" ip daddr 172.18.0.2 tcp dport 80 accept\n\
         iifname \"{bridge}\" accept; }}\n}}\n"
    );
    let path = std::env::temp_dir().join(format!("{bridge}.nft"));
    std::fs::write(&path, script).unwrap();
    srv.exec_ok(&["nft", "-f", path.to_str().unwrap()]);
    let _ = std::fs::remove_file(&path);
    engine_state(srv)
}

/// The engine's tables as nft lists them.
fn engine_state(srv: &Netns) -> String {
    srv.exec_ok(&["nft", "-s", "list", "table", "ip", "nat"])
        + &srv.exec_ok(&["nft", "-s", "list", "table", "ip", "filter"])
}

#[test]
fn daemon_container_ports_only_from_the_tunnel() {
    if !require("daemon_container_ports_only_from_the_tunnel", &TOOLS) {
        return;
    }
    let t0 = Instant::now();
    let g = Gateway::new("mbct");
    let (srv, cli1, inet) = (&g.srv, &g.cli1, &g.inet);
    // A bridge named like the engine's (matching the default `br-*` pattern) with a container
    // namespace behind it serving HTTP on port 80.
    let bridge = format!("br-{}", unique("c"));
    srv.exec_ok(&["ip", "link", "add", &bridge, "type", "bridge"]);
    srv.exec_ok(&["ip", "addr", "add", "172.18.0.1/24", "dev", &bridge]);
    srv.exec_ok(&["ip", "link", "set", &bridge, "up"]);
    let ctr = Netns::new("mbctc");
    let (host_side, _) = veth(srv, "192.0.2.254/32", &ctr, "172.18.0.2/24");
    srv.exec_ok(&["ip", "addr", "flush", "dev", &host_side]);
    srv.exec_ok(&["ip", "link", "set", &host_side, "master", &bridge]);
    ctr.exec_ok(&["ip", "route", "add", "default", "via", "172.18.0.1"]);
    let www = tempfile::tempdir().unwrap();
    std::fs::write(www.path().join("index.html"), "container ok").unwrap();
    let _ctr_web = ctr.spawn(&[
        "python3",
        "-m",
        "http.server",
        "--bind",
        "172.18.0.2",
        "80",
        "--directory",
        www.path().to_str().unwrap(),
    ]);
    let inet_www = tempfile::tempdir().unwrap();
    std::fs::write(inet_www.path().join("index.html"), "internet ok").unwrap();
    let _web = g.web_server(inet_www.path());
    let published = 8088;
    let engine = engine_tables(srv, &bridge, published);
    // The engine turns forwarding on itself.
    srv.exec_ok(&["sysctl", "-q", "-w", "net.ipv4.ip_forward=1"]);
    let outside_url = format!("http://{SERVER_EXT}:{published}/");
    // python3 can take seconds to start on a loaded machine.
    let deadline = Instant::now() + Duration::from_secs(20);
    while !ctr.fetch_ok("http://172.18.0.2/") {
        assert!(
            Instant::now() < deadline,
            "the container's server did not start"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // Without Mistborn the published port is open to the internet (what the test guards).
    eventually("the published port answers the internet", true, || {
        inet.fetch_ok(&outside_url)
    });
    eventually("the container reaches the internet", true, || {
        ctr.fetch_ok(Gateway::WEB)
    });

    // The tunnel's wireguard-go is started outside serve (it adopts it), so the client's session
    // survives the restart below, as with a kernel interface.
    let iface = unique("mbt");
    let _server_wg = WireguardGo::start_named(srv, &iface);
    let mut settings = DaemonSettings::new(&iface, "10.231.1.1");
    settings.firewall = true;
    let mut d = Daemon::start(srv, settings);
    let admin = d.token("admin");
    profile(&d, &admin, json!({"name": "laptop"}));
    let tmp = tempfile::tempdir().unwrap();
    let conf = d.cli_ok(&["getconf", "laptop", "--no-qr"]);
    let _c1 = client_from_config(cli1, &conf, tmp.path(), &SUBNETS);

    assert!(
        !inet.fetch_ok(&outside_url),
        "the published port is reachable from the internet"
    );
    // Nor from a LAN neighbour outside the tunnel.
    assert!(
        !cli1.fetch_ok(&format!("http://10.231.1.1:{published}/")),
        "the published port is reachable from outside the tunnel"
    );
    let tunnel_url = format!("http://{SERVER_TUNNEL}:{published}/");
    let took = eventually("the published port answers the tunnel", true, || {
        cli1.fetch_ok(&tunnel_url)
    });
    eprintln!("published port through the tunnel after {took:?}");
    assert!(
        cli1.exec_ok(&["curl", "-s", "--max-time", "2", &tunnel_url])
            .contains("container ok"),
        "the tunnel reached something else"
    );
    assert!(
        ctr.fetch_ok(Gateway::WEB),
        "the container lost the internet"
    );
    assert_eq!(
        engine_state(srv),
        engine,
        "Mistborn touched the engine's tables"
    );

    d.stop();
    d.restart();
    assert_eq!(
        engine_state(srv),
        engine,
        "a restart touched the engine's tables"
    );
    assert!(
        !inet.fetch_ok(&outside_url),
        "the published port is reachable from the internet after the restart"
    );
    assert!(
        cli1.fetch_ok(&tunnel_url),
        "the tunnel lost the published port after the restart"
    );
    assert!(
        ctr.fetch_ok(Gateway::WEB),
        "the container lost the internet after the restart"
    );
    drop(d);
    eprintln!("container ports test took {:?}", t0.elapsed());
}

/// Whether the metrics list a probe of `source`, `protocol`, `port`.
fn has_probe(m: &Value, source: &str, protocol: &str, port: u16) -> bool {
    m["probes"].as_array().is_some_and(|ps| {
        ps.iter().any(|p| {
            p["source"] == source
                && p["protocol"] == protocol
                && p["port"] == u64::from(port)
                && p["packets"].as_u64() > Some(0)
        })
    })
}

#[test]
fn daemon_input_policy_from_outside_and_tunnel() {
    if !require("daemon_input_policy_from_outside_and_tunnel", &TOOLS) {
        return;
    }
    let t0 = Instant::now();
    let g = Gateway::new("mbip");
    let (srv, cli1, inet) = (&g.srv, &g.cli1, &g.inet);
    let (admin_host, admin_addr) = g.remote("mbir", 2);
    // SSH, HTTP and HTTPS stand-ins on every address of the server; a DNS stand-in on its
    // external address (Mistborn's resolver serves the tunnel address).
    let _tcp = srv.tcp_listen("0.0.0.0", &[22, 80, 443]);
    let _dns = srv.udp_echo(SERVER_EXT, 53);
    let _dns_tcp = srv.tcp_listen(SERVER_EXT, &[53]);
    // Without a firewall all of it answers the internet (checked from a third host, so that
    // the probers' counts below are theirs alone).
    let (before, _) = g.remote("mbiq", 3);
    eventually("SSH stand-in answers", true, || {
        before.tcp_answers(SERVER_EXT, 22)
    });
    eventually("TCP DNS stand-in answers", true, || {
        before.tcp_answers(SERVER_EXT, 53)
    });
    for port in [80, 443] {
        assert!(before.tcp_answers(SERVER_EXT, port), "stand-in on {port}");
    }
    assert!(before.udp_answers(SERVER_EXT, 53), "DNS stand-in");

    let iface = unique("mbi");
    let mut settings = DaemonSettings::new(&iface, "10.231.1.1");
    settings.firewall = true;
    settings.dns = true;
    settings.extra = format!("admin_source = \"{admin_addr}/32\"\n");
    let d = Daemon::start(srv, settings);
    let admin = d.token("admin");
    profile(&d, &admin, json!({"name": "laptop"}));
    let tmp = tempfile::tempdir().unwrap();
    let conf = d.cli_ok(&["getconf", "laptop", "--no-qr"]);
    let _c1 = client_from_config(cli1, &conf, tmp.path(), &SUBNETS);
    eventually("the tunnel is up", true, || cli1.ping(SERVER_TUNNEL, 1, 1));

    // From the internet: SSH, web and DNS are dropped.
    for port in [22, 80, 443] {
        assert!(
            !inet.tcp_answers(SERVER_EXT, port),
            "tcp/{port} open to the internet"
        );
    }
    assert!(
        !inet.udp_answers(SERVER_EXT, 53),
        "DNS open to the internet"
    );
    assert!(
        !inet.tcp_answers(SERVER_EXT, 53),
        "TCP DNS open to the internet"
    );
    // The admin source gets SSH, and only SSH.
    assert!(
        admin_host.tcp_answers(SERVER_EXT, 22),
        "SSH closed to the admin source"
    );
    assert!(
        !admin_host.tcp_answers(SERVER_EXT, 80),
        "the admin source got more than SSH"
    );
    // From the tunnel: SSH, web and Mistborn's resolver.
    for port in [22, 80, 443] {
        assert!(
            cli1.tcp_answers(SERVER_TUNNEL, port),
            "tcp/{port} closed to the tunnel"
        );
    }
    assert_eq!(dig_home(cli1, SERVER_TUNNEL), SERVER_TUNNEL, "resolver");
    let tcp_answer = cli1.exec_ok(&[
        "dig",
        "+tcp",
        "+short",
        "+time=1",
        "+tries=2",
        &format!("@{SERVER_TUNNEL}"),
        "home.mistborn",
    ]);
    assert_eq!(tcp_answer.trim(), SERVER_TUNNEL, "resolver over TCP");

    // WireGuard stays silent to strangers: junk gets no answer, and a device with a key the
    // server does not know never completes a handshake.
    assert!(
        !inet.udp_answers(SERVER_EXT, 51820),
        "WireGuard answered junk"
    );
    let server_key = srv
        .exec_ok(&["wg", "show", &iface, "public-key"])
        .trim()
        .to_string();
    let stranger = WireguardGo::start(inet, "mbis");
    let key_file = tmp.path().join("stranger.key");
    std::fs::write(&key_file, run_ok(&["wg", "genkey"])).unwrap();
    inet.exec_ok(&[
        "wg",
        "set",
        &stranger.name,
        "private-key",
        key_file.to_str().unwrap(),
        "peer",
        &server_key,
        "endpoint",
        &format!("{SERVER_EXT}:51820"),
        "allowed-ips",
        "10.15.91.1/32",
    ]);
    inet.exec_ok(&[
        "ip",
        "addr",
        "add",
        "10.15.91.250/32",
        "dev",
        &stranger.name,
    ]);
    inet.exec_ok(&["ip", "link", "set", &stranger.name, "up"]);
    inet.exec_ok(&["ip", "route", "add", "10.15.91.1/32", "dev", &stranger.name]);
    assert!(
        !inet.ping(SERVER_TUNNEL, 3, 2),
        "a stranger's tunnel reached the server"
    );
    let handshakes = inet.exec_ok(&["wg", "show", &stranger.name, "latest-handshakes"]);
    assert!(
        handshakes.trim().ends_with("\t0"),
        "the stranger got a handshake: {handshakes}"
    );

    // The dropped ones are counted per source and port; SSH from the admin source, accepted
    // WireGuard packets and tunnel traffic are not.
    let deadline = Instant::now() + Duration::from_secs(5);
    let m = loop {
        let m = d.api_ok("GET", "/api/v1/firewall/metrics", &admin, None, 200);
        if [
            ("tcp", 22),
            ("tcp", 80),
            ("tcp", 443),
            ("udp", 53),
            ("tcp", 53),
        ]
        .iter()
        .all(|(proto, port)| has_probe(&m, INET, proto, *port))
            && has_probe(&m, &admin_addr, "tcp", 80)
        {
            break m;
        }
        assert!(
            Instant::now() < deadline,
            "dropped packets missing from the metrics: {m}"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(!has_probe(&m, &admin_addr, "tcp", 22), "{m}");
    assert!(!has_probe(&m, INET, "udp", 51820), "{m}");
    assert!(
        !m["probes"].as_array().unwrap().iter().any(|p| p["source"]
            .as_str()
            .is_some_and(|s| s.starts_with("10.15.91."))),
        "tunnel traffic counted as probes: {m}"
    );
    drop(d);
    eprintln!("input policy test took {:?}", t0.elapsed());
}

/// CPU seconds (user + system) and resident memory (KiB) of process `pid`.
fn usage(pid: u32) -> (f64, u64) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // Fields after the command (which may hold spaces) in parentheses; utime and stime are the
    // 14th and 15th fields of the whole line.
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap();
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let rss = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    // USER_HZ is 100 on Linux.
    (ticks as f64 / 100.0, rss)
}

/// Sends one UDP datagram from `source` (an address of the internet namespace) to every port of
/// the server; returns how many were sent.
fn scan_all_ports(inet: &Netns, source: &str) -> u64 {
    let s = inet
        .udp_socket(format!("{source}:0").parse().unwrap())
        .unwrap();
    let mut sent = 0;
    for port in 1..=65535u16 {
        s.send_to(b"probe", (SERVER_EXT, port)).unwrap();
        sent += 1;
    }
    sent
}

#[test]
fn daemon_probe_metrics_survive_a_scan_of_every_port() {
    if !require("daemon_probe_metrics_survive_a_scan_of_every_port", &TOOLS) {
        return;
    }
    let t0 = Instant::now();
    let g = Gateway::new("mbsc");
    let (srv, inet) = (&g.srv, &g.inet);
    // Scanners: three sources in two /24s, then a newcomer, all on the internet side.
    let sources = ["198.51.100.7", "198.51.100.8", "198.51.101.7"];
    let newcomer = "198.51.103.9";
    for a in sources.iter().chain([&newcomer]) {
        inet.exec_ok(&["ip", "addr", "add", &format!("{a}/32"), "dev", "lo"]);
    }
    let iface = unique("mbsc");
    let mut settings = DaemonSettings::new(&iface, SERVER_EXT);
    settings.firewall = true;
    settings.extra = "metrics_sample_secs = 1\n".into();
    let d = Daemon::start(srv, settings);
    let admin = d.token("admin");
    let history = || {
        d.api_ok(
            "GET",
            "/api/v1/firewall/metrics/history?since=0&bucket=3600&top=100",
            &admin,
            None,
            200,
        )
    };
    // The sampler's first reading is its baseline: scan once a sample was stored after it.
    let deadline = Instant::now() + Duration::from_secs(10);
    while history()["buckets"].as_array().is_none_or(Vec::is_empty) {
        assert!(Instant::now() < deadline, "no metrics sample stored");
        std::thread::sleep(Duration::from_millis(200));
    }
    let pid = d.pid().unwrap();
    let (cpu0, _) = usage(pid);

    let scan = Instant::now();
    let mut sent = 0;
    for s in sources {
        sent += scan_all_ports(inet, s);
    }
    eprintln!(
        "scanned 65,535 ports from {} sources: {sent} datagrams in {:?}",
        sources.len(),
        scan.elapsed()
    );
    // The WireGuard port is open to everyone (not a probe); every other datagram is one.
    let probes = sent - sources.len() as u64;
    let metrics = || {
        d.api_ok(
            "GET",
            "/api/v1/firewall/metrics?top=1000",
            &admin,
            None,
            200,
        )
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    let m = loop {
        let m = metrics();
        if m["total"].as_u64() == Some(probes) {
            break m;
        }
        assert!(
            Instant::now() < deadline,
            "total {} of {probes}",
            m["total"]
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    // Every port counted from every source, whatever filled up.
    let ports = m["top_ports"].as_array().unwrap();
    assert_eq!(ports.len(), 1000);
    assert!(ports.iter().all(|p| p["packets"] == 3), "{:?}", &ports[..3]);
    let per_source: Vec<(String, u64)> = m["top_sources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["source"].as_str().unwrap().to_string(),
                s["packets"].as_u64().unwrap(),
            )
        })
        .collect();
    let mut want: Vec<(String, u64)> = sources.iter().map(|s| (s.to_string(), 65534)).collect();
    want.sort();
    let mut got = per_source.clone();
    got.sort();
    assert_eq!(got, want);
    let nets: Vec<(&str, u64)> = m["top_networks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            (
                n["network"].as_str().unwrap(),
                n["packets"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        nets,
        [("198.51.100.0/24", 2 * 65534), ("198.51.101.0/24", 65534),]
    );
    // The (source, port) set filled up: what it could not keep is counted, nothing else lost.
    assert_eq!(
        m["unkept"]["probes"].as_u64(),
        Some(probes - 65535),
        "{}",
        m["unkept"]
    );
    assert_eq!(m["unkept"]["sources"], 0);
    assert_eq!(m["unkept"]["networks"], 0);

    // The history has the same totals (the sampler moved them there within a few samples).
    let deadline = Instant::now() + Duration::from_secs(10);
    let h = loop {
        let h = history();
        if h["total_probes"].as_u64() == Some(probes) {
            break h;
        }
        assert!(
            Instant::now() < deadline,
            "history: {} of {probes}",
            h["total_probes"]
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    let in_history = |kind: &str, key: &str| {
        h[kind]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["key"] == key)
            .and_then(|c| c["packets"].as_u64())
    };
    for s in sources {
        assert_eq!(in_history("top_sources", s), Some(65534), "{h}");
    }
    assert_eq!(
        in_history("top_networks", "198.51.100.0/24"),
        Some(2 * 65534)
    );
    assert_eq!(in_history("unkept", "probes"), Some(probes - 65535));
    let (cpu1, rss) = usage(pid);
    eprintln!(
        "daemon during the scan and its samples: {:.2} s CPU, {} MiB resident",
        cpu1 - cpu0,
        rss / 1024
    );
    assert!(rss < 256 * 1024, "daemon resident memory {rss} KiB");
    assert!(cpu1 - cpu0 < 20.0, "daemon CPU {:.1} s", cpu1 - cpu0);

    // A probe from a new source after the scan: counted, as a source and in the history.
    let s = inet
        .udp_socket(format!("{newcomer}:0").parse().unwrap())
        .unwrap();
    for _ in 0..3 {
        s.send_to(b"probe", (SERVER_EXT, 7777)).unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let m = metrics();
        let seen = m["top_sources"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["source"] == newcomer && s["packets"] == 3);
        if seen && m["total"].as_u64() == Some(probes + 3) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the newcomer is not counted: {}",
            m["top_sources"]
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let h = history();
        let seen = h["top_sources"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["key"] == newcomer && s["packets"] == 3);
        if seen && h["total_probes"].as_u64() == Some(probes + 3) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the newcomer is not in the history: {h}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    drop(d);
    eprintln!("scan metrics test took {:?}", t0.elapsed());
}
