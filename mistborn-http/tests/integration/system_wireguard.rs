//! The WireGuard data plane through the real daemon: `mistborn serve` (userspace backend, it
//! starts wireguard-go itself) in a server namespace, clients in their own namespaces joined by
//! veth pairs and configured from `mistborn getconf` output. Users, tokens and profiles are made
//! through the REST API; status is read over REST and the WebSocket. Needs root, wireguard-go,
//! wg and ping (skipped locally without them, failing under CI).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures_util::StreamExt;
use mistborn_system_tests::{
    Netns, client_from_config, eventually, reap, require, unique, veth, wg_new_public_key,
    wg_peers, wg_set_peer, wireguard_go_pid,
};
use serde_json::{Value, json};

use crate::daemon::{Daemon, DaemonSettings, Ws};

const SUBNETS: [&str; 2] = ["10.15.91.0/24", "fd15:91::/64"];
const SERVER_V4: &str = "10.15.91.1";
const SERVER_V6: &str = "fd15:91::1";
const TOOLS: [&str; 4] = ["ip", "wg", "wireguard-go", "ping"];

/// `user/profile` names in a status view.
fn names(v: &Value) -> Vec<String> {
    let mut n: Vec<String> = v["peers"]
        .as_array()
        .unwrap_or(&Vec::new())
        .iter()
        .map(|p| {
            format!(
                "{}/{}",
                p["username"].as_str().unwrap_or("?"),
                p["name"].as_str().unwrap_or("?")
            )
        })
        .collect();
    n.sort();
    n
}

/// The entry of profile `id` in a status view.
fn peer<'a>(v: &'a Value, id: &str) -> Option<&'a Value> {
    v["peers"]
        .as_array()?
        .iter()
        .find(|p| p["profile_id"] == id)
}

/// Whether a status entry shows a handshake and traffic both ways.
fn live(p: &Value) -> bool {
    p["latest_handshake"].as_i64().is_some_and(|t| t > 0)
        && p["rx_bytes"].as_u64().is_some_and(|n| n > 0)
        && p["tx_bytes"].as_u64().is_some_and(|n| n > 0)
}

/// Records every view a WebSocket pushes until the test ends.
fn record(mut ws: Ws) -> (Arc<Mutex<Vec<Value>>>, tokio::task::JoinHandle<()>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let out = seen.clone();
    let task = tokio::spawn(async move {
        while let Some(Ok(msg)) = ws.next().await {
            if let Ok(text) = msg.to_text() {
                if let Ok(v) = serde_json::from_str::<Value>(text) {
                    out.lock().unwrap().push(v);
                }
            }
        }
    });
    (seen, task)
}

/// Waits until `check` holds for one of the recorded views (or panics after `secs`).
async fn wait_for_view(
    views: &Mutex<Vec<Value>>,
    secs: u64,
    what: &str,
    check: impl Fn(&Value) -> bool,
) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if views.lock().unwrap().iter().any(&check) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "WebSocket never showed {what}; last: {:?}",
            views.lock().unwrap().last()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// The `[unix time]` stamps of the echo replies in `ping -D` output.
fn reply_times(ping_output: &str) -> Vec<f64> {
    ping_output
        .lines()
        .filter(|l| l.contains("bytes from"))
        .filter_map(|l| l.strip_prefix('[')?.split(']').next()?.parse().ok())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn daemon_tunnel_status_per_user_and_delete_cuts_off() {
    if !require("daemon_tunnel_status_per_user_and_delete_cuts_off", &TOOLS) {
        return;
    }
    let srv = Netns::new("mbdsrv");
    let cli = Netns::new("mbdcli");
    let cli2 = Netns::new("mbdcl2");
    veth(&srv, "10.231.0.1/24", &cli, "10.231.0.2/24");
    veth(&srv, "10.232.0.1/24", &cli2, "10.232.0.2/24");
    // Both clients dial the endpoint 10.231.0.1; the second one through its own veth.
    cli2.exec_ok(&["ip", "route", "add", "10.231.0.0/24", "via", "10.232.0.1"]);
    let iface = unique("mbd");
    let d = Daemon::start(&srv, DaemonSettings::new(&iface, "10.231.0.1"));
    let out = d.run_output();
    assert!(
        out.contains("first start: created the superuser 'admin'"),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "WireGuard data plane: ON (userspace backend, interface {iface}"
        )),
        "{out}"
    );
    let password = std::fs::read_to_string(d.data_dir().join("admin-password")).unwrap();
    assert!(
        password.trim().len() >= 12,
        "admin password file: {password:?}"
    );

    // Users, tokens and profiles through the REST API (the first token from the CLI).
    let admin = d.token("admin");
    let mut tokens = Vec::new();
    for user in ["alice", "bob"] {
        d.api_ok(
            "POST",
            "/api/v1/users",
            &admin,
            Some(json!({"username": user, "password": "a long password"})),
            201,
        );
        let t = d.api_ok(
            "POST",
            "/api/v1/tokens",
            &admin,
            Some(json!({"name": "system-test", "user": user})),
            201,
        );
        tokens.push(t["secret"].as_str().unwrap().to_string());
    }
    let (alice, bob) = (tokens[0].clone(), tokens[1].clone());
    let laptop = d.api_ok(
        "POST",
        "/api/v1/profiles",
        &alice,
        Some(json!({"name": "laptop"})),
        201,
    );
    let phone = d.api_ok(
        "POST",
        "/api/v1/profiles",
        &bob,
        Some(json!({"name": "phone"})),
        201,
    );
    let laptop_id = laptop["id"].as_str().unwrap().to_string();
    let phone_id = phone["id"].as_str().unwrap().to_string();
    // The data plane picked both up at once (REST change -> reconcile).
    let deadline = Instant::now() + Duration::from_secs(2);
    while wg_peers(&srv, &iface).len() < 3 {
        assert!(
            Instant::now() < deadline,
            "profiles not on {iface}: {:?}",
            wg_peers(&srv, &iface)
        );
        std::thread::sleep(Duration::from_millis(20));
    }

    // WebSockets open before any traffic: they must show each user only their own.
    let (alice_views, alice_task) = record(d.status_ws(&alice).await);
    let (bob_views, bob_task) = record(d.status_ws(&bob).await);
    let (admin_views, admin_task) = record(d.status_ws(&admin).await);

    // Clients configured from `mistborn getconf` output.
    let conf_laptop = d.cli_ok(&["getconf", "laptop", "--user", "alice", "--no-qr"]);
    let conf_phone = d.cli_ok(&["getconf", &phone_id, "--no-qr"]);
    assert!(
        conf_laptop.contains("Endpoint = 10.231.0.1:51820"),
        "{conf_laptop}"
    );
    assert!(!conf_laptop.contains('█'), "--no-qr printed a QR code");
    let tmp = tempfile::tempdir().unwrap();
    let _c1 = client_from_config(&cli, &conf_laptop, tmp.path(), &SUBNETS);
    let _c2 = client_from_config(&cli2, &conf_phone, tmp.path(), &SUBNETS);
    for (ns, who) in [(&cli, "alice/laptop"), (&cli2, "bob/phone")] {
        assert!(
            ns.ping(SERVER_V4, 3, 2),
            "{who}: no IPv4 ping through the tunnel"
        );
        assert!(
            ns.ping(SERVER_V6, 3, 2),
            "{who}: no IPv6 ping through the tunnel"
        );
    }

    // REST status: the superuser sees both profiles live, with the client's endpoint.
    let deadline = Instant::now() + Duration::from_secs(5);
    let admin_view = loop {
        let v = d.api_ok("GET", "/api/v1/status", &admin, None, 200);
        if peer(&v, &laptop_id).is_some_and(live) && peer(&v, &phone_id).is_some_and(live) {
            break v;
        }
        assert!(
            Instant::now() < deadline,
            "no handshake/transfer in GET /status: {v}"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(admin_view["dataplane"]["on"], true, "{admin_view}");
    assert_eq!(admin_view["dataplane"]["backend"], "userspace");
    let l = peer(&admin_view, &laptop_id).unwrap();
    assert_eq!(l["connected"], true, "{l}");
    assert!(
        l["endpoint"].as_str().unwrap().starts_with("10.231.0.2:"),
        "{l}"
    );
    assert_eq!(
        names(&admin_view),
        vec!["admin/default", "alice/laptop", "bob/phone"]
    );
    // A regular user's REST view: their own profile only (with its live statistics).
    let bob_rest = d.api_ok("GET", "/api/v1/status", &bob, None, 200);
    assert_eq!(names(&bob_rest), vec!["bob/phone"], "{bob_rest}");
    assert!(peer(&bob_rest, &phone_id).is_some_and(live), "{bob_rest}");
    let alice_rest = d.api_ok("GET", "/api/v1/status", &alice, None, 200);
    assert_eq!(names(&alice_rest), vec!["alice/laptop"], "{alice_rest}");

    // The WebSockets push the handshake and transfer.
    let lid = laptop_id.clone();
    wait_for_view(&admin_views, 5, "alice's laptop live to admin", |v| {
        peer(v, &lid).is_some_and(live)
    })
    .await;
    wait_for_view(&alice_views, 5, "alice's laptop live to alice", |v| {
        peer(v, &lid).is_some_and(live)
    })
    .await;
    let pid = phone_id.clone();
    wait_for_view(&bob_views, 5, "bob's phone live to bob", |v| {
        peer(v, &pid).is_some_and(live)
    })
    .await;

    // Deleting the profile over REST cuts the device off: a fast ping runs across the delete.
    let cli_ns = cli.handle();
    let pinger = std::thread::spawn(move || {
        let out = cli_ns.exec(&["ping", "-n", "-D", "-i", "0.01", "-w", "3", SERVER_V4]);
        String::from_utf8_lossy(&out.stdout).into_owned()
    });
    std::thread::sleep(Duration::from_millis(1000));
    let sent = unix_now();
    d.api_ok(
        "DELETE",
        &format!("/api/v1/profiles/{laptop_id}"),
        &alice,
        None,
        204,
    );
    let answered = unix_now();
    let key = laptop["public_key"].as_str().unwrap().to_string();
    let gone = loop {
        if !wg_peers(&srv, &iface).contains(&key) {
            break unix_now();
        }
        assert!(
            unix_now() - sent < 2.0,
            "peer still on {iface} 2 s after DELETE"
        );
        std::thread::sleep(Duration::from_millis(2));
    };
    let ping_out = pinger.join().unwrap();
    let replies = reply_times(&ping_out);
    let before = replies.iter().filter(|t| **t < sent).count();
    let last = replies.iter().copied().fold(f64::MIN, f64::max);
    assert!(
        before > 20,
        "the ping did not flow before the delete:\n{ping_out}"
    );
    let late: Vec<&f64> = replies.iter().filter(|t| **t > answered + 1.0).collect();
    assert!(
        late.is_empty(),
        "{} replies more than 1 s after DELETE answered:\n{ping_out}",
        late.len()
    );
    eprintln!(
        "DELETE /profiles answered in {:.1} ms; peer gone from `wg show` {:.1} ms after the \
         request; last ping reply {:.1} ms after the request ({} replies before it)",
        (answered - sent) * 1e3,
        (gone - sent) * 1e3,
        (last - sent) * 1e3,
        before
    );
    assert!(
        !cli.ping(SERVER_V4, 2, 1),
        "traffic still flows after the delete"
    );
    // Bob is untouched.
    assert!(cli2.ping(SERVER_V4, 2, 2), "bob's phone lost its tunnel");

    // Over the whole run, each regular user's socket only ever showed their own profiles.
    wait_for_view(&admin_views, 5, "the delete to admin", |v| {
        !names(v).contains(&"alice/laptop".to_string()) && names(v).len() == 2
    })
    .await;
    for (views, who, own) in [
        (&alice_views, "alice", "alice/"),
        (&bob_views, "bob", "bob/"),
    ] {
        let views = views.lock().unwrap();
        assert!(views.len() >= 2, "{who}'s socket got {} views", views.len());
        for v in views.iter() {
            assert!(
                names(v).iter().all(|n| n.starts_with(own)),
                "{who} was shown {:?}",
                names(v)
            );
        }
    }
    eprintln!(
        "WebSocket views pushed: admin {}, alice {}, bob {}",
        admin_views.lock().unwrap().len(),
        alice_views.lock().unwrap().len(),
        bob_views.lock().unwrap().len()
    );
    for t in [alice_task, bob_task, admin_task] {
        t.abort();
    }
    drop(d);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn daemon_restart_restores_stored_peers_and_skips_a_corrupt_key() {
    if !require(
        "daemon_restart_restores_stored_peers_and_skips_a_corrupt_key",
        &TOOLS,
    ) {
        return;
    }
    let srv = Netns::new("mbdsrv");
    let cli = Netns::new("mbdcli");
    veth(&srv, "10.231.0.1/24", &cli, "10.231.0.2/24");
    let iface = unique("mbd");
    let mut d = Daemon::start(&srv, DaemonSettings::new(&iface, "10.231.0.1"));
    let admin = d.token("admin");
    let mut ids = Vec::new();
    for name in ["good", "other", "bad"] {
        let p = d.api_ok(
            "POST",
            "/api/v1/profiles",
            &admin,
            Some(json!({"name": name})),
            201,
        );
        ids.push((
            p["id"].as_str().unwrap().to_string(),
            p["public_key"].as_str().unwrap().to_string(),
        ));
    }
    // One more written by the CLI on the data dir while serve runs: picked up within a tick.
    d.cli_ok(&["peer", "add", "cli-made"]);
    let profiles = d.api_ok("GET", "/api/v1/profiles", &admin, None, 200);
    let mut stored: Vec<String> = profiles
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["public_key"].as_str().unwrap().to_string())
        .collect();
    stored.sort();
    assert_eq!(stored.len(), 5, "admin's default + 4: {profiles}");
    let took = eventually("the interface carries the stored profiles", true, || {
        wg_peers(&srv, &iface) == stored
    });
    eprintln!("profile added by the CLI on {iface} after {took:?}");

    // Drift while running: a peer added by hand is removed by the next status tick.
    let stray = wg_new_public_key();
    let add_stray = || wg_set_peer(&srv, &iface, &stray, "10.15.91.200/32");
    add_stray();
    let took = eventually("stray peer removed while running", false, || {
        wg_peers(&srv, &iface).contains(&stray)
    });
    eprintln!("stray peer removed by the running daemon after {took:?}");

    // A client on the good profile pings without pause across the whole restart below.
    let conf = d.cli_ok(&["getconf", "good", "--no-qr"]);
    let tmp = tempfile::tempdir().unwrap();
    let _client = client_from_config(&cli, &conf, tmp.path(), &SUBNETS);
    assert!(cli.ping(SERVER_V4, 3, 2), "no IPv4 ping before the restart");
    let wg_pid = wireguard_go_pid(&srv, &iface).expect("serve started wireguard-go");
    let pinger = Pinger::start(&cli, SERVER_V4, PING_INTERVAL);
    std::thread::sleep(Duration::from_millis(500));

    // SIGTERM: serve stops cleanly and leaves its wireguard-go (interface, peers, sessions)
    // running for the next start (wireguard.keep_on_stop, the default).
    let stop_sent = unix_now();
    d.stop();
    let out = d.run_output();
    assert!(out.contains("SIGTERM: shutting down"), "{out}");
    assert!(
        out.contains(&format!("WireGuard interface {iface} left up")),
        "{out}"
    );
    assert_eq!(
        wireguard_go_pid(&srv, &iface),
        Some(wg_pid),
        "wireguard-go did not outlive serve"
    );

    // While it is down: a stray peer is added by hand and one stored key is corrupted.
    add_stray();
    assert!(wg_peers(&srv, &iface).contains(&stray));
    let (bad_id, bad_key) = ids[2].clone();
    let db = format!("sqlite://{}", d.data_dir().join("mistborn.db").display());
    let pool = sqlx::SqlitePool::connect(&db).await.unwrap();
    let changed = sqlx::query("UPDATE peers SET public_key = 'corrupt!' WHERE id = ?")
        .bind(&bad_id)
        .execute(&pool)
        .await
        .unwrap();
    assert_eq!(changed.rows_affected(), 1);
    pool.close().await;
    // An upgrade takes a moment: the daemon stays down for a second.
    std::thread::sleep(Duration::from_secs(1));

    // Restart: it adopts the running wireguard-go and puts exactly the stored, readable peers on
    // it; the client never notices.
    d.restart();
    let restarted = unix_now();
    std::thread::sleep(Duration::from_millis(1000));
    let ping_out = pinger.finish();
    let out = d.run_output();
    assert!(out.contains("WireGuard data plane: ON"), "{out}");
    assert!(
        out.contains(&format!("skipped profile {bad_id}")),
        "the corrupt profile is not reported:\n{out}"
    );
    assert_eq!(
        wireguard_go_pid(&srv, &iface),
        Some(wg_pid),
        "the restart replaced wireguard-go instead of adopting it"
    );
    let status = d.api_ok("GET", "/api/v1/status", &admin, None, 200);
    let skipped = status["dataplane"]["skipped"].as_array().unwrap();
    assert_eq!(skipped.len(), 1, "{status}");
    assert_eq!(skipped[0]["id"], bad_id.as_str());
    assert!(
        skipped[0]["reason"]
            .as_str()
            .unwrap()
            .contains("public key"),
        "{status}"
    );
    let want: Vec<String> = stored.iter().filter(|k| **k != bad_key).cloned().collect();
    assert_eq!(
        wg_peers(&srv, &iface),
        want,
        "stray left or stored peer missing"
    );

    // The ping ran on through the restart: at most a couple of replies missing.
    let replies = reply_times(&ping_out);
    let gap = replies
        .windows(2)
        .map(|w| w[1] - w[0])
        .fold(0.0_f64, f64::max);
    let (sent, received) = ping_counts(&ping_out);
    eprintln!(
        "serve down and back for {:.2} s (SIGTERM to API answering again); a client pinging \
         every {:.0} ms across it: {received}/{sent} replies, longest gap between replies {:.0} ms",
        restarted - stop_sent,
        PING_INTERVAL * 1e3,
        gap * 1e3
    );
    assert!(
        replies.iter().any(|t| *t > restarted),
        "no reply after the restart:\n{ping_out}"
    );
    assert!(
        sent >= received && sent - received <= 2,
        "{} pings lost across the restart:\n{ping_out}",
        sent - received
    );
    assert!(
        gap < 3.5 * PING_INTERVAL,
        "the tunnel paused {:.0} ms across the restart:\n{ping_out}",
        gap * 1e3
    );

    assert!(cli.ping(SERVER_V4, 3, 2), "no IPv4 ping after the restart");
    assert!(cli.ping(SERVER_V6, 3, 2), "no IPv6 ping after the restart");

    // A second restart changes nothing on the interface.
    d.stop();
    d.restart();
    assert_eq!(wg_peers(&srv, &iface), want);
    assert_eq!(wireguard_go_pid(&srv, &iface), Some(wg_pid));

    // Taken down on purpose: with keep_on_stop = false the stop removes the interface, and
    // the (adopted) wireguard-go exits with it.
    d.stop();
    let cfg = std::fs::read_to_string(&d.config_file).unwrap();
    std::fs::write(
        &d.config_file,
        cfg.replace("[wireguard]\n", "[wireguard]\nkeep_on_stop = false\n"),
    )
    .unwrap();
    d.restart();
    d.stop();
    assert!(
        d.run_output()
            .contains(&format!("WireGuard interface {iface} taken down")),
        "{}",
        d.run_output()
    );
    assert!(
        reap(wg_pid, Duration::from_secs(3)),
        "wireguard-go still runs after the interface was taken down"
    );
    assert!(srv.exec(&["ip", "link", "show", &iface]).status.code() != Some(0));
    assert!(!std::path::Path::new(&format!("/run/wireguard/{iface}.sock")).exists());
    assert!(!cli.ping(SERVER_V4, 1, 1), "the tunnel is still up");
    drop(d);
}

/// `(transmitted, received)` from ping's summary line.
fn ping_counts(ping_output: &str) -> (u64, u64) {
    let line = ping_output
        .lines()
        .find(|l| l.contains("packets transmitted"))
        .unwrap_or_else(|| panic!("no ping summary:\n{ping_output}"));
    let nums: Vec<u64> = line
        .split(',')
        .filter_map(|part| part.split_whitespace().next()?.parse().ok())
        .collect();
    (nums[0], nums[1])
}

/// Ping interval of [`Pinger`], in seconds.
const PING_INTERVAL: f64 = 0.1;

/// A `ping -D` running in the background until [`Pinger::finish`] (SIGINT), output captured.
struct Pinger {
    child: Option<std::process::Child>,
}

impl Pinger {
    fn start(ns: &Netns, addr: &str, interval: f64) -> Self {
        // `ip netns exec` execs ping, so the child is ping itself.
        let child = ns
            .command(&["ping", "-n", "-D", "-i", &interval.to_string(), addr])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        Self { child: Some(child) }
    }

    /// Stops it (SIGINT: it prints its summary) and returns what it printed.
    fn finish(mut self) -> String {
        let child = self.child.take().unwrap();
        mistborn_system_tests::run(&["kill", "-INT", &child.id().to_string()]);
        let out = child.wait_with_output().unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for Pinger {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
