//! Benchmark: reconcile 1k / 10k peers onto a wireguard-go interface, from empty and after one
//! change, beside `wg syncconf` of the same config. Run inside a throwaway network namespace as
//! root through `bench/wireguard-reconcile.sh` (it prints the table).
//!
//! Rows:
//! - `plan+apply`: the reconciler's work once the desired state is known: from empty, one plan
//!   and one apply of every peer; on a profile change, the changed profile put into the desired
//!   state, a plan of just that peer against the cached device state, one small apply;
//! - `read+plan+apply`: the same with a full read of the device first (the timer's drift check);
//! - `daemon`: the whole pipeline with N profiles in SQLite: start to first full reconcile, and a
//!   profile created through the API until its peer is in the status stream;
//! - `wg syncconf`: wireguard-tools doing the same change from a config file;
//! - `raw UAPI set`: the floor: a pre-rendered `set=1` buffer with every peer written straight to
//!   wireguard-go's socket (what any client must at least wait for).
//!
//! The `wireguard-go CPU` column is the CPU time (user + system) wireguard-go spent during the
//! from-empty step: on a loaded machine the wall time is that plus waiting for a core.
#![allow(clippy::unwrap_used, clippy::print_stdout)]

use std::collections::HashMap;
use std::fmt::Write as _;
use std::process::Command;
use std::time::{Duration, Instant};

use mistborn_core::crypto::{KeyPair, WgKey};
use mistborn_core::peers::{AddressPool, NewPeer, StoredProfile};
use mistborn_core::wireguard::{
    DataPlane, DataPlaneOptions, DesiredInterface, DesiredPeer, Diff, ObservedInterface,
    ServerSide, WgControlBackend, WireGuardBackend, plan, plan_peers,
};
use mistborn_core::{Actor, Config, Mistborn};

fn pool() -> AddressPool {
    AddressPool::new(
        "10.16.0.0/16".parse().unwrap(),
        "fd16::/64".parse().unwrap(),
    )
}

fn server(name: &str) -> ServerSide {
    let p = pool();
    let (v4, v6) = p.server_addresses();
    ServerSide {
        interface: name.into(),
        private_key: KeyPair::generate().private,
        listen_port: 51999,
        address_v4: ipnet::Ipv4Net::new(v4, 16).unwrap(),
        address_v6: ipnet::Ipv6Net::new(v6, 64).unwrap(),
    }
}

fn desired_n(server: &ServerSide, n: usize) -> DesiredInterface {
    desired_range(server, 0..n)
}

/// Profiles number `range` (ids and addresses follow the number).
fn desired_range(server: &ServerSide, range: std::ops::Range<usize>) -> DesiredInterface {
    let p = pool();
    let rows = range
        .map(|i| {
            let (v4, v6) = p.addresses(i as u64 + 2);
            Ok(StoredProfile {
                peer: mistborn_core::peers::Peer {
                    id: format!("00000000-0000-4000-8000-{i:012}").parse().unwrap(),
                    user_id: "00000000-0000-4000-8000-000000000000".parse().unwrap(),
                    username: "bench".parse().unwrap(),
                    name: format!("p{i}").parse().unwrap(),
                    kind: Default::default(),
                    client_to_client: false,
                    listen_port: Default::default(),
                    address_v4: v4,
                    address_v6: v6,
                    public_key: KeyPair::generate().public,
                    server_generated_key: false,
                    created_at: 0,
                },
                preshared_key: Some(WgKey::generate_preshared()),
            })
        })
        .collect();
    mistborn_core::wireguard::desired(server.clone(), rows)
}

/// What the reconciler does when one profile is created: put it into the desired state and plan
/// just that peer against the cached device state.
fn one_more(d: &mut DesiredInterface, cache: &ObservedInterface, p: &DesiredPeer) -> Diff {
    let stored = StoredProfile {
        peer: p.profile.clone(),
        preshared_key: p.spec.preshared_key.clone(),
    };
    let keys = d.replace_profile(&p.profile.id, Some(Ok(stored))).unwrap();
    plan_peers(d, cache, &keys)
}

fn conf_text(d: &DesiredInterface) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "[Interface]\nPrivateKey = {}\nListenPort = {}\n",
        d.server.private_key, d.server.listen_port
    );
    for p in d.peers.values() {
        let ips: Vec<String> = p.spec.allowed_ips.iter().map(ToString::to_string).collect();
        let _ = writeln!(
            s,
            "[Peer]\nPublicKey = {}\nPresharedKey = {}\nAllowedIPs = {}\n",
            p.spec.public_key,
            p.spec.preshared_key.as_ref().unwrap(),
            ips.join(", ")
        );
    }
    s
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn syncconf(iface: &str, text: &str, dir: &std::path::Path) -> Duration {
    let path = dir.join(format!("{iface}.conf"));
    std::fs::write(&path, text).unwrap();
    let t = Instant::now();
    let out = Command::new("wg")
        .args(["syncconf", iface, path.to_str().unwrap()])
        .output()
        .unwrap();
    let d = t.elapsed();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    d
}

fn peer_count(iface: &str) -> usize {
    let out = Command::new("wg")
        .args(["show", iface, "peers"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).lines().count()
}

struct Row {
    what: String,
    n: usize,
    from_empty: f64,
    wg_cpu: Option<f64>,
    one_change: f64,
}

/// CPU time (user + system, ms) of the wireguard-go serving `iface`, found by its command line.
fn wg_go_cpu_ms(iface: &str) -> Option<f64> {
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
        let ours = args.first().is_some_and(|a| a.ends_with(b"wireguard-go"))
            && args.contains(&iface.as_bytes());
        if !ours {
            continue;
        }
        let stat = std::fs::read_to_string(entry.path().join("stat")).ok()?;
        // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
        let rest = &stat[stat.rfind(')')? + 2..];
        let f: Vec<&str> = rest.split(' ').collect();
        let ticks: u64 = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
        return Some(ticks as f64 * 10.0); // CLK_TCK is 100 on Linux
    }
    None
}

fn cpu_delta(before: Option<f64>, iface: &str) -> Option<f64> {
    Some(wg_go_cpu_ms(iface)? - before?)
}

/// The UAPI `set` request for `specs` (what wireguard-control sends), pre-rendered.
fn uapi_request(server: Option<&ServerSide>, d: &DesiredInterface) -> String {
    let hex = |k: &WgKey| {
        k.as_bytes()
            .iter()
            .fold(String::with_capacity(64), |mut s, b| {
                let _ = write!(s, "{b:02x}");
                s
            })
    };
    let mut s = String::from("set=1\n");
    if let Some(server) = server {
        let _ = writeln!(
            s,
            "private_key={}\nlisten_port={}",
            hex(&server.private_key),
            server.listen_port
        );
    }
    for p in d.peers.values() {
        let _ = writeln!(
            s,
            "public_key={}\nreplace_allowed_ips=true",
            hex(&p.spec.public_key)
        );
        if let Some(k) = &p.spec.preshared_key {
            let _ = writeln!(s, "preshared_key={}", hex(k));
        }
        for ip in &p.spec.allowed_ips {
            let _ = writeln!(s, "allowed_ip={ip}");
        }
    }
    s.push('\n');
    s
}

/// Writes a pre-rendered request to `iface`'s UAPI socket and waits for its answer.
fn uapi_raw(iface: &str, request: &str) -> Duration {
    use std::io::{BufRead, Write};
    let mut sock =
        std::os::unix::net::UnixStream::connect(format!("/var/run/wireguard/{iface}.sock"))
            .unwrap();
    let t = Instant::now();
    sock.write_all(request.as_bytes()).unwrap();
    let mut line = String::new();
    std::io::BufReader::new(sock).read_line(&mut line).unwrap();
    let d = t.elapsed();
    assert_eq!(line.trim(), "errno=0");
    d
}

fn bench_backend(n: usize, dir: &std::path::Path, rows: &mut Vec<Row>) {
    let tag = std::process::id() % 10000;
    // Mistborn's reconciler onto a fresh wireguard-go interface.
    let name = format!("mbbm{tag}n{n}");
    let s = server(&name);
    let mut d = desired_n(&s, n);
    let mut b = WgControlBackend::userspace(&name, dir).unwrap();
    b.ensure_interface(&s).unwrap();

    let t = Instant::now();
    let observed = b.read().unwrap();
    let diff = plan(&d, &observed);
    b.apply(&diff).unwrap();
    let full_empty = t.elapsed();
    let mut cache = observed;
    cache.apply_diff(&diff);
    assert_eq!(peer_count(&name), n);

    // One change: a new profile.
    let extra = desired_range(&s, n..n + 1)
        .peers
        .into_iter()
        .next()
        .unwrap();
    let t = Instant::now();
    let diff = one_more(&mut d, &cache, &extra.1);
    b.apply(&diff).unwrap();
    let one = t.elapsed();
    cache.apply_diff(&diff);
    assert_eq!(diff.add.len(), 1);
    assert_eq!(peer_count(&name), n + 1);

    // Same change again (remove, then add back) but with a full device read first.
    d.peers.remove(&extra.0);
    let diff = plan(&d, &cache);
    b.apply(&diff).unwrap();
    cache.apply_diff(&diff);
    d.peers.insert(extra.0.clone(), extra.1);
    let t = Instant::now();
    let observed: ObservedInterface = b.read().unwrap();
    let diff = plan(&d, &observed);
    b.apply(&diff).unwrap();
    let one_full = t.elapsed();
    assert_eq!(diff.add.len(), 1);

    // plan+apply from empty without the (empty) read, for the table.
    let name2 = format!("mbbp{tag}n{n}");
    let s2 = ServerSide {
        interface: name2.clone(),
        listen_port: 51997,
        ..s.clone()
    };
    let mut b2 = WgControlBackend::userspace(&name2, dir).unwrap();
    b2.ensure_interface(&s2).unwrap();
    let d2 = DesiredInterface {
        server: s2.clone(),
        ..d.clone()
    };
    let cpu = wg_go_cpu_ms(&name2);
    let t = Instant::now();
    let diff = plan(&d2, &ObservedInterface::default());
    b2.apply(&diff).unwrap();
    let pa_empty = t.elapsed();
    let pa_cpu = cpu_delta(cpu, &name2);
    assert_eq!(peer_count(&name2), n + 1);
    b2.shutdown();

    rows.push(Row {
        what: "mistborn plan+apply".into(),
        n,
        from_empty: ms(pa_empty),
        wg_cpu: pa_cpu,
        one_change: ms(one),
    });
    rows.push(Row {
        what: "mistborn read+plan+apply".into(),
        n,
        from_empty: ms(full_empty),
        wg_cpu: None,
        one_change: ms(one_full),
    });
    b.shutdown();

    // wg syncconf of the same config onto a fresh wireguard-go interface.
    let name = format!("mbbw{tag}n{n}");
    let s3 = ServerSide {
        interface: name.clone(),
        listen_port: 51996,
        ..s
    };
    let mut b3 = WgControlBackend::userspace(&name, dir).unwrap();
    b3.ensure_interface(&s3).unwrap();
    d.peers.remove(&extra.0);
    d.server = s3.clone();
    let cpu = wg_go_cpu_ms(&name);
    let empty = syncconf(&name, &conf_text(&d), dir);
    let sync_cpu = cpu_delta(cpu, &name);
    assert_eq!(peer_count(&name), n);
    let mut d1: HashMap<_, _> = d.peers.clone();
    let extra2 = desired_n(&s3, 1).peers.into_iter().next().unwrap();
    d1.insert(extra2.0, extra2.1);
    let d1 = DesiredInterface {
        peers: d1,
        ..d.clone()
    };
    let one = syncconf(&name, &conf_text(&d1), dir);
    assert_eq!(peer_count(&name), n + 1);
    rows.push(Row {
        what: "wg syncconf".into(),
        n,
        from_empty: ms(empty),
        wg_cpu: sync_cpu,
        one_change: ms(one),
    });
    b3.shutdown();

    // The floor: the same peers as one pre-rendered UAPI request, straight onto the socket.
    let name = format!("mbbr{tag}n{n}");
    let s4 = ServerSide {
        interface: name.clone(),
        listen_port: 51995,
        ..s3
    };
    let mut b4 = WgControlBackend::userspace(&name, dir).unwrap();
    b4.ensure_interface(&s4).unwrap();
    let request = uapi_request(Some(&s4), &d);
    let cpu = wg_go_cpu_ms(&name);
    let empty = uapi_raw(&name, &request);
    let raw_cpu = cpu_delta(cpu, &name);
    assert_eq!(peer_count(&name), n);
    let one_peer = DesiredInterface {
        peers: desired_n(&s4, 1).peers,
        ..d.clone()
    };
    let one = uapi_raw(&name, &uapi_request(None, &one_peer));
    assert_eq!(peer_count(&name), n + 1);
    rows.push(Row {
        what: "raw UAPI set (pre-rendered)".into(),
        n,
        from_empty: ms(empty),
        wg_cpu: raw_cpu,
        one_change: ms(one),
    });
    b4.shutdown();
}

/// The kernel module, when this kernel has it: plan+apply from empty and one change. Returns
/// why not otherwise.
fn bench_kernel(n: usize, rows: &mut Vec<Row>) -> Result<(), String> {
    let name = format!("mbbk{}n{n}", std::process::id() % 10000);
    WgControlBackend::kernel_available(&name).map_err(|e| e.to_string())?;
    let s = ServerSide {
        listen_port: 51994,
        ..server(&name)
    };
    let mut d = desired_n(&s, n);
    let mut b = WgControlBackend::kernel(&name).unwrap();
    b.ensure_interface(&s).unwrap();
    let t = Instant::now();
    let diff = plan(&d, &ObservedInterface::default());
    b.apply(&diff).unwrap();
    let empty = t.elapsed();
    let mut cache = ObservedInterface::default();
    cache.apply_diff(&diff);
    let extra = desired_range(&s, n..n + 1)
        .peers
        .into_iter()
        .next()
        .unwrap();
    let t = Instant::now();
    let diff = one_more(&mut d, &cache, &extra.1);
    b.apply(&diff).unwrap();
    let one = t.elapsed();
    assert_eq!(peer_count(&name), n + 1);
    rows.push(Row {
        what: "mistborn plan+apply, kernel module".into(),
        n,
        from_empty: ms(empty),
        wg_cpu: None,
        one_change: ms(one),
    });
    let _ = Command::new("ip").args(["link", "del", &name]).status();
    Ok(())
}

async fn bench_daemon(n: usize, dir: &std::path::Path, rows: &mut Vec<Row>) {
    let data = dir.join(format!("daemon-{n}"));
    let mut config = Config {
        data_dir: data.clone(),
        ..Config::default()
    };
    config.wireguard.interface = format!("mbbd{}n{n}", std::process::id() % 10000);
    config.wireguard.subnet_v4 = "10.16.0.0/16".parse().unwrap();
    config.wireguard.subnet_v6 = "fd16::/64".parse().unwrap();
    config.wireguard.listen_port = 51998;
    config.wireguard.backend = mistborn_core::config::DataplaneBackend::Userspace;
    config.wireguard.status_interval_ms = 3_600_000;
    config.wireguard.keep_on_stop = false;
    let m = Mistborn::open(config).await.unwrap();
    bulk_insert(&m, &data, n - 1).await; // + admin's default = n
    let t = Instant::now();
    let dp = DataPlane::start_with(&m, DataPlaneOptions::from_config(m.config()));
    let st = dp.settled().await;
    let start = t.elapsed();
    // wireguard-go started with the data plane: all its CPU so far is the start.
    let start_cpu = wg_go_cpu_ms(&m.config().wireguard.interface);
    assert!(st.on, "{st:?}");
    assert_eq!(peer_count(&m.config().wireguard.interface), n);
    let mut stream = m.status().subscribe(Actor::System);
    stream.next().await;
    // One change, five times: the API's create, then until the status stream shows the peer
    // (event, one row read, plan, apply, publish). Medians.
    let (mut creates, mut changes) = (Vec::new(), Vec::new());
    for i in 0..5 {
        let t = Instant::now();
        let p = m
            .peers()
            .create(
                &Actor::System,
                NewPeer {
                    user: Some("admin".into()),
                    name: format!("bench-extra{i}"),
                    ..NewPeer::default()
                },
            )
            .await
            .unwrap();
        creates.push(ms(t.elapsed()));
        let t = Instant::now();
        loop {
            let v = stream.next().await.unwrap();
            if v.peers.iter().any(|x| x.peer_id == p.id) {
                break;
            }
        }
        changes.push(ms(t.elapsed()));
    }
    assert_eq!(peer_count(&m.config().wireguard.interface), n + 5);
    rows.push(Row {
        what: format!(
            "daemon: store->interface (API create before it: {:.1} ms)",
            median(&mut creates)
        ),
        n,
        from_empty: ms(start),
        wg_cpu: start_cpu,
        one_change: median(&mut changes),
    });
    dp.stop().await;
    m.close().await;
}

/// Inserts `n` profiles for admin straight into SQLite (creating them one by one through the API
/// is not what is measured here).
async fn bulk_insert(m: &Mistborn, data: &std::path::Path, n: usize) {
    let admin = m.users().get(&Actor::System, "admin").await.unwrap();
    let secrets =
        mistborn_core::crypto::SecretBox::open_or_create(&data.join("secret.key")).unwrap();
    let db = sqlx::SqlitePool::connect(&format!("sqlite://{}", data.join("mistborn.db").display()))
        .await
        .unwrap();
    let mut tx = db.begin().await.unwrap();
    for i in 0..n {
        let psk = secrets
            .seal(WgKey::generate_preshared().as_bytes())
            .unwrap();
        sqlx::query(
            "INSERT INTO peers (id, user_id, name, kind, client_to_client, listen_port, addr_index, public_key, private_key, preshared_key, created_at) \
             VALUES (?, ?, ?, 'wireguard', 0, 'default', ?, ?, NULL, ?, 0)",
        )
        .bind(format!("00000000-0000-4000-9000-{i:012}"))
        .bind(admin.id.as_str())
        .bind(format!("bench{i}"))
        .bind(i as i64 + 3)
        .bind(KeyPair::generate().public.to_base64())
        .bind(psk)
        .execute(&mut *tx)
        .await
        .unwrap();
    }
    tx.commit().await.unwrap();
    db.close().await;
}

#[tokio::main]
async fn main() {
    // BENCH_LOG=info shows the data plane's own timings (profiles loaded, peers reconciled).
    if let Ok(filter) = std::env::var("BENCH_LOG") {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
            .init();
    }
    let sizes: Vec<usize> = std::env::args()
        .skip(1)
        .map(|a| a.parse().unwrap())
        .collect();
    let sizes = if sizes.is_empty() {
        vec![1000, 10000]
    } else {
        sizes
    };
    let dir = tempfile::tempdir().unwrap();
    let mut rows = Vec::new();
    // BENCH_ONLY=daemon skips the backend rows (for profiling the daemon path alone).
    let only_daemon = std::env::var("BENCH_ONLY").is_ok_and(|v| v == "daemon");
    for &n in &sizes {
        if !only_daemon {
            bench_backend(n, dir.path(), &mut rows);
            if let Err(why) = bench_kernel(n, &mut rows) {
                if n == sizes[0] {
                    println!("kernel backend not measured: {why}");
                }
            }
        }
        bench_daemon(n, dir.path(), &mut rows).await;
    }
    println!("| what | peers | from empty (ms) | wireguard-go CPU (ms) | one change (ms) |");
    println!("|---|---:|---:|---:|---:|");
    for r in &rows {
        let cpu = r.wg_cpu.map_or("".into(), |c| format!("{c:.0}"));
        println!(
            "| {} | {} | {:.1} | {cpu} | {:.2} |",
            r.what, r.n, r.from_empty, r.one_change
        );
    }
}
