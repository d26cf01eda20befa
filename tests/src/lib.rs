//! Shared helpers for Mistborn's system tests: root checks, globally unique names, network
//! namespaces, veth pairs and wireguard-go processes, each cleaned up by `Drop` even when a test
//! fails. Tests run in parallel: every helper takes names from [`unique`] (the WireGuard socket
//! directory /run/wireguard is shared by all namespaces, so interface names must be unique on
//! the host, and at most 15 characters).
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// Whether this run must not skip (CI).
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "0" && v != "false")
}

/// `true` when the test can run. Without root or a needed tool it prints why and returns
/// `false` (skip), but panics when `CI` is set: CI must never skip a system test.
pub fn require(test: &str, tools: &[&str]) -> bool {
    let mut missing = Vec::new();
    if !is_root() {
        missing.push("root".to_string());
    }
    for t in tools {
        if !on_path(t) {
            missing.push(format!("the '{t}' program"));
        }
    }
    if missing.is_empty() {
        return true;
    }
    let msg = format!("{test}: needs {}", missing.join(", "));
    if in_ci() {
        panic!("{msg} (CI is set, so this is a failure, not a skip)");
    }
    eprintln!("SKIP {msg}");
    false
}

fn is_root() -> bool {
    // /proc/self/status "Uid: real effective ...".
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|e| e == "0"))
        })
        .unwrap_or(false)
}

fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .any(|d| d.join(program).is_file())
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A name unique on the host: `prefix` + pid + counter, at most 15 characters.
pub fn unique(prefix: &str) -> String {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let name = format!("{prefix}{}x{n}", std::process::id() % 100_000);
    assert!(name.len() <= 15, "name {name} too long for an interface");
    name
}

/// Runs a command, returning its output (never panics on failure).
pub fn run(args: &[&str]) -> Output {
    Command::new(args[0])
        .args(&args[1..])
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {args:?}: {e}"))
}

/// Runs a command and panics with its stderr when it fails.
pub fn run_ok(args: &[&str]) -> String {
    let out = run(args);
    assert!(
        out.status.success(),
        "{args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A network namespace, deleted (with everything still running in it) on drop.
#[derive(Debug)]
pub struct Netns {
    /// Its name (`ip netns` name).
    pub name: String,
}

impl Netns {
    /// A fresh namespace with loopback up.
    pub fn new(prefix: &str) -> Self {
        let ns = Self {
            name: unique(prefix),
        };
        run_ok(&["ip", "netns", "add", &ns.name]);
        ns.exec_ok(&["ip", "link", "set", "lo", "up"]);
        ns
    }

    /// The path to hand to setns.
    pub fn path(&self) -> PathBuf {
        PathBuf::from(format!("/run/netns/{}", self.name))
    }

    fn argv<'a>(&'a self, args: &[&'a str]) -> Vec<&'a str> {
        let mut v = vec!["ip", "netns", "exec", self.name.as_str()];
        v.extend_from_slice(args);
        v
    }

    /// Runs a command inside.
    pub fn exec(&self, args: &[&str]) -> Output {
        run(&self.argv(args))
    }

    /// Runs a command inside; panics when it fails.
    pub fn exec_ok(&self, args: &[&str]) -> String {
        run_ok(&self.argv(args))
    }

    /// Whether `ping` of `addr` gets an answer within `wait_s` seconds.
    pub fn ping(&self, addr: &str, count: u32, wait_s: u32) -> bool {
        self.exec(&[
            "ping",
            "-n",
            "-q",
            "-c",
            &count.to_string(),
            "-i",
            "0.2",
            "-W",
            &wait_s.to_string(),
            addr,
        ])
        .status
        .success()
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        // Deleting a namespace does not kill what runs in it.
        let pids = run(&["ip", "netns", "pids", &self.name]);
        for pid in String::from_utf8_lossy(&pids.stdout).split_whitespace() {
            let _ = run(&["kill", pid]);
        }
        let _ = run(&["ip", "netns", "del", &self.name]);
    }
}

/// Joins two namespaces by a veth pair and gives each side an IPv4 /24 address.
pub fn veth(a: &Netns, a_addr: &str, b: &Netns, b_addr: &str) {
    let (an, bn) = (unique("va"), unique("vb"));
    run_ok(&[
        "ip", "link", "add", &an, "netns", &a.name, "type", "veth", "peer", "name", &bn, "netns",
        &b.name,
    ]);
    a.exec_ok(&["ip", "addr", "add", a_addr, "dev", &an]);
    a.exec_ok(&["ip", "link", "set", &an, "up"]);
    b.exec_ok(&["ip", "addr", "add", b_addr, "dev", &bn]);
    b.exec_ok(&["ip", "link", "set", &bn, "up"]);
}

/// A wireguard-go process in a namespace, killed and reaped on drop.
#[derive(Debug)]
pub struct WireguardGo {
    /// Interface name.
    pub name: String,
    child: Child,
}

impl WireguardGo {
    /// Starts `wireguard-go -f <unique name>` in `ns` and waits for its UAPI socket.
    pub fn start(ns: &Netns, prefix: &str) -> Self {
        let name = unique(prefix);
        // `ip netns exec` execs the program, so the child is wireguard-go itself (ours to reap).
        let child = Command::new("ip")
            .args(["netns", "exec", &ns.name, "wireguard-go", "-f", &name])
            .env("WG_PROCESS_FOREGROUND", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let wg = Self { name, child };
        let deadline = Instant::now() + Duration::from_secs(5);
        while ns.exec(&["wg", "show", &wg.name]).status.code() != Some(0) {
            assert!(
                Instant::now() < deadline,
                "wireguard-go {} did not start",
                wg.name
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        wg
    }
}

impl Drop for WireguardGo {
    fn drop(&mut self) {
        // SIGTERM lets wireguard-go remove its socket from the shared /run/wireguard.
        let _ = run(&["kill", &self.child.id().to_string()]);
        let deadline = Instant::now() + Duration::from_secs(1);
        while matches!(self.child.try_wait(), Ok(None)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(format!("/run/wireguard/{}.sock", self.name));
    }
}

/// The peer public keys `wg show <iface> peers` lists, sorted.
pub fn wg_peers(ns: &Netns, iface: &str) -> Vec<String> {
    let mut v: Vec<String> = ns
        .exec_ok(&["wg", "show", iface, "peers"])
        .lines()
        .map(str::to_string)
        .filter(|l| !l.is_empty())
        .collect();
    v.sort();
    v
}

/// A client config made fit for `wg setconf`: wg-quick's `Address`/`DNS` lines dropped.
pub fn setconf_text(rendered: &str) -> String {
    rendered
        .lines()
        .filter(|l| {
            let key = l.split('=').next().unwrap_or("").trim();
            !matches!(key, "Address" | "DNS")
        })
        .map(|l| format!("{l}\n"))
        .collect()
}

/// Brings up a client interface in `ns` from a rendered client config: wireguard-go, `wg
/// setconf`, the tunnel addresses and routes to the tunnel subnets. Returns the process guard.
pub fn client_from_config(
    ns: &Netns,
    rendered: &str,
    dir: &std::path::Path,
    subnets: &[&str],
) -> WireguardGo {
    let wg = WireguardGo::start(ns, "mbc");
    let path = dir.join(format!("{}.conf", wg.name));
    std::fs::write(&path, setconf_text(rendered)).unwrap();
    ns.exec_ok(&["wg", "setconf", &wg.name, path.to_str().unwrap()]);
    for line in rendered.lines() {
        if let Some(v) = line.strip_prefix("Address = ") {
            for a in v.split(',') {
                ns.exec_ok(&["ip", "addr", "add", a.trim(), "dev", &wg.name]);
            }
        }
    }
    ns.exec_ok(&["ip", "link", "set", &wg.name, "up"]);
    for s in subnets {
        ns.exec_ok(&["ip", "route", "add", s, "dev", &wg.name]);
    }
    wg
}
