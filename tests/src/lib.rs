//! Shared helpers for Mistborn's system tests: root checks, globally unique names, network
//! namespaces, veth pairs and wireguard-go processes, each cleaned up by `Drop` even when a test
//! fails. Tests run in parallel: every helper takes names from [`unique`] (the WireGuard socket
//! directory /run/wireguard is shared by all namespaces, so interface names must be unique on
//! the host, and at most 15 characters).
#![allow(clippy::unwrap_used)]

use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// A UDP server answering `pong` to every datagram: `python3 -c ECHO <addr> <port>`.
const UDP_ECHO: &str = "import socket,sys\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\ns.bind((sys.argv[1],int(sys.argv[2])))\nwhile True:\n d,a=s.recvfrom(2048); s.sendto(b'pong',a)\n";
/// Sends one datagram and prints the answer or `timeout`: `python3 -c ASK <addr> <port>`.
const UDP_ASK: &str = "import socket,sys\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM); s.settimeout(1.5)\ns.sendto(b'hi',(sys.argv[1],int(sys.argv[2])))\ntry:\n print(s.recvfrom(2048)[0].decode())\nexcept socket.timeout:\n print('timeout')\n";

/// A TCP server on every `port` of `argv[1]` that greets each connection with `hi` and closes
/// it: `python3 -c LISTEN <addr> <port>...`.
const TCP_LISTEN: &str = "import socket,sys,threading\ndef serve(p):\n s=socket.socket(); s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1); s.bind((sys.argv[1],p)); s.listen(16)\n while True:\n  c,_=s.accept(); c.sendall(b'hi'); c.close()\nfor p in sys.argv[2:]:\n threading.Thread(target=serve,args=(int(p),)).start()\n";
/// Connects to `addr:port` and prints the greeting or why not: `python3 -c KNOCK <addr> <port>`.
const TCP_KNOCK: &str = "import socket,sys\ntry:\n s=socket.create_connection((sys.argv[1],int(sys.argv[2])),timeout=1); print(s.recv(16).decode() or 'closed')\nexcept Exception as e:\n print(type(e).__name__)\n";

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
    /// Whether dropping this handle deletes the namespace.
    owned: bool,
}

impl Netns {
    /// A fresh namespace with loopback up.
    pub fn new(prefix: &str) -> Self {
        let ns = Self {
            name: unique(prefix),
            owned: true,
        };
        run_ok(&["ip", "netns", "add", &ns.name]);
        ns.exec_ok(&["ip", "link", "set", "lo", "up"]);
        ns
    }

    /// A second handle on the same namespace that does not delete it (for helpers that outlive
    /// a borrow, such as a daemon guard).
    pub fn handle(&self) -> Self {
        Self {
            name: self.name.clone(),
            owned: false,
        }
    }

    /// The path to hand to setns.
    pub fn path(&self) -> PathBuf {
        PathBuf::from(format!("/run/netns/{}", self.name))
    }

    /// A command that runs `args` inside (to spawn in the background, with its own env/stdio).
    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name]).args(args);
        c
    }

    /// Starts `args` inside in the background, output discarded; stopped on drop of the guard.
    pub fn spawn(&self, args: &[&str]) -> Process {
        let child = self
            .command(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {args:?} in {}: {e}", self.name));
        Process::new(child)
    }

    /// A TCP connection to `addr` made from inside the namespace: the socket is created by a
    /// thread that entered the namespace and keeps it after the thread ends, so the test's own
    /// process (in the host namespace) can talk to servers in here without any route to them.
    pub fn connect(&self, addr: SocketAddr) -> std::io::Result<TcpStream> {
        let path = self.path();
        std::thread::spawn(move || {
            use std::os::fd::AsRawFd;
            let ns = std::fs::File::open(&path)?;
            // SAFETY: setns on a valid namespace fd; it changes only this short-lived thread.
            if unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
                return Err(std::io::Error::last_os_error());
            }
            TcpStream::connect_timeout(&addr, Duration::from_secs(5))
        })
        .join()
        .map_err(|_| std::io::Error::other("connect thread panicked"))?
    }

    /// A TCP listener on `addr` inside the namespace (made the same way as [`Netns::connect`]),
    /// for servers the test itself runs.
    pub fn listen(&self, addr: SocketAddr) -> std::io::Result<std::net::TcpListener> {
        let path = self.path();
        std::thread::spawn(move || {
            use std::os::fd::AsRawFd;
            let ns = std::fs::File::open(&path)?;
            // SAFETY: setns on a valid namespace fd; it changes only this short-lived thread.
            if unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
                return Err(std::io::Error::last_os_error());
            }
            std::net::TcpListener::bind(addr)
        })
        .join()
        .map_err(|_| std::io::Error::other("listen thread panicked"))?
    }

    /// A UDP socket bound to `addr` inside the namespace (made like [`Netns::connect`]), to send
    /// from the test itself (a scanner, say) without a process per packet.
    pub fn udp_socket(&self, addr: SocketAddr) -> std::io::Result<std::net::UdpSocket> {
        let path = self.path();
        std::thread::spawn(move || {
            use std::os::fd::AsRawFd;
            let ns = std::fs::File::open(&path)?;
            // SAFETY: setns on a valid namespace fd; it changes only this short-lived thread.
            if unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
                return Err(std::io::Error::last_os_error());
            }
            std::net::UdpSocket::bind(addr)
        })
        .join()
        .map_err(|_| std::io::Error::other("socket thread panicked"))?
    }

    /// A plain HTTP/1.0 request to `addr` from inside the namespace: `(status, body)`. HTTP/1.0
    /// so the server closes the connection after one whole (never chunked) response.
    pub fn http(
        &self,
        addr: SocketAddr,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&str>,
    ) -> std::io::Result<(u16, String)> {
        let s = self.connect(addr)?;
        s.set_read_timeout(Some(Duration::from_secs(10)))?;
        http_over(s, &addr.to_string(), method, path, headers, body)
    }

    /// Whether an HTTP GET of `url` from inside succeeds within a second (curl).
    pub fn fetch_ok(&self, url: &str) -> bool {
        self.exec(&["curl", "-s", "-o", "/dev/null", "--max-time", "1", url])
            .status
            .success()
    }

    /// Starts a UDP echo server (answers `pong`) on `addr:port` inside.
    pub fn udp_echo(&self, addr: &str, port: u16) -> Process {
        self.spawn(&["python3", "-c", UDP_ECHO, addr, &port.to_string()])
    }

    /// Sends one UDP datagram to `addr:port` from inside; whether a [`Netns::udp_echo`] answer
    /// came back within 1.5 s.
    pub fn udp_answers(&self, addr: &str, port: u16) -> bool {
        self.exec_ok(&["python3", "-c", UDP_ASK, addr, &port.to_string()])
            .contains("pong")
    }

    /// Starts a TCP server on each of `ports` at `addr` inside (greets with `hi`).
    pub fn tcp_listen(&self, addr: &str, ports: &[u16]) -> Process {
        let ports: Vec<String> = ports.iter().map(u16::to_string).collect();
        let mut args = vec!["python3", "-c", TCP_LISTEN, addr];
        args.extend(ports.iter().map(String::as_str));
        self.spawn(&args)
    }

    /// Whether a TCP connection to `addr:port` from inside gets a [`Netns::tcp_listen`] greeting
    /// within a second.
    pub fn tcp_answers(&self, addr: &str, port: u16) -> bool {
        self.exec_ok(&["python3", "-c", TCP_KNOCK, addr, &port.to_string()])
            .contains("hi")
    }

    /// The pids of the processes running inside.
    pub fn pids(&self) -> Vec<u32> {
        String::from_utf8_lossy(&run(&["ip", "netns", "pids", &self.name]).stdout)
            .split_whitespace()
            .filter_map(|p| p.parse().ok())
            .collect()
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
        if !self.owned {
            return;
        }
        // Deleting a namespace does not kill what runs in it.
        let pids = run(&["ip", "netns", "pids", &self.name]);
        for pid in String::from_utf8_lossy(&pids.stdout).split_whitespace() {
            let _ = run(&["kill", pid]);
        }
        let _ = run(&["ip", "netns", "del", &self.name]);
    }
}

/// A background process, stopped on drop: SIGTERM, up to two seconds to exit, then SIGKILL;
/// always reaped.
#[derive(Debug)]
pub struct Process {
    child: Child,
}

impl Process {
    /// Guards `child`.
    pub fn new(child: Child) -> Self {
        Self { child }
    }

    /// Its pid.
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// Whether it has exited (reaping it if so).
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// SIGTERM, then waits up to `grace` for it to exit (SIGKILL after that); its exit status
    /// (`None` when it had to be killed).
    pub fn stop(&mut self, grace: Duration) -> Option<std::process::ExitStatus> {
        if self.exited().is_none() {
            let _ = run(&["kill", &self.child.id().to_string()]);
        }
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if let Some(status) = self.exited() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        None
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.stop(Duration::from_secs(2));
    }
}

/// Makes this test process the reaper of its orphaned descendants (`PR_SET_CHILD_SUBREAPER`):
/// a wireguard-go that `mistborn serve` leaves running when it stops (`wireguard.keep_on_stop`)
/// is reparented here rather than to PID 1, which does not reap everywhere (containers, this
/// VM), so [`kill_wireguard_go`] and [`reap`] can collect it and no zombie is left behind.
pub fn adopt_orphans() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // SAFETY: prctl with integer arguments; it sets one attribute of this process.
        let r = unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
        assert_eq!(
            r,
            0,
            "PR_SET_CHILD_SUBREAPER: {}",
            std::io::Error::last_os_error()
        );
    });
}

/// Whether `pid` has exited: reaped here when it is our child (see [`adopt_orphans`]), else
/// gone from /proc or a zombie someone else has to reap.
fn exited(pid: u32) -> bool {
    let Ok(raw) = i32::try_from(pid) else {
        return true;
    };
    let mut status = 0;
    // SAFETY: waitpid on one pid without blocking; `status` is a valid out pointer.
    if unsafe { libc::waitpid(raw, &mut status, libc::WNOHANG) } == raw {
        return true;
    }
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        // "pid (comm) S ...": the state follows the last ')'.
        Ok(stat) => {
            stat.rsplit(')')
                .next()
                .and_then(|rest| rest.split_whitespace().next())
                == Some("Z")
        }
    }
}

/// Waits up to `within` for `pid` to exit (reaping it when it is our child); whether it did.
pub fn reap(pid: u32, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    loop {
        if exited(pid) {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The pid of the wireguard-go serving `iface` inside `ns`, if one runs.
pub fn wireguard_go_pid(ns: &Netns, iface: &str) -> Option<u32> {
    ns.pids().into_iter().find(|pid| {
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
        args.first().is_some_and(|a| a.ends_with(b"wireguard-go"))
            && args.contains(&iface.as_bytes())
    })
}

/// Kills the wireguard-go serving `iface` inside `ns` (one a daemon under test left behind),
/// waits until it is gone (reaping it when it was reparented here) and removes its socket from
/// the shared /run/wireguard.
pub fn kill_wireguard_go(ns: &Netns, iface: &str) {
    if let Some(pid) = wireguard_go_pid(ns, iface) {
        let _ = run(&["kill", &pid.to_string()]);
        if !reap(pid, Duration::from_secs(2)) {
            let _ = run(&["kill", "-9", &pid.to_string()]);
            reap(pid, Duration::from_secs(2));
        }
    }
    let _ = std::fs::remove_file(format!("/run/wireguard/{iface}.sock"));
}

/// Joins two namespaces by a veth pair and gives each side an IPv4 /24 address; returns the
/// interface names (`a`'s side, `b`'s side).
pub fn veth(a: &Netns, a_addr: &str, b: &Netns, b_addr: &str) -> (String, String) {
    let (an, bn) = (unique("va"), unique("vb"));
    run_ok(&[
        "ip", "link", "add", &an, "netns", &a.name, "type", "veth", "peer", "name", &bn, "netns",
        &b.name,
    ]);
    a.exec_ok(&["ip", "addr", "add", a_addr, "dev", &an]);
    a.exec_ok(&["ip", "link", "set", &an, "up"]);
    b.exec_ok(&["ip", "addr", "add", b_addr, "dev", &bn]);
    b.exec_ok(&["ip", "link", "set", &bn, "up"]);
    (an, bn)
}

/// A gateway layout for firewall tests: a server namespace, two client namespaces each on its
/// own veth (10.231.1.0/24 and 10.231.2.0/24, the server is `.1`), and an "internet" namespace
/// behind the server (server 203.0.113.1, internet [`Gateway::INET`]) that the server's default
/// route leads to. Forwarding stays off in the server: Mistborn's firewall turns it on.
#[derive(Debug)]
pub struct Gateway {
    /// The server (Mistborn's host).
    pub srv: Netns,
    /// First client, dials 10.231.1.1.
    pub cli1: Netns,
    /// Second client, dials 10.231.2.1 (or 10.231.1.1, routed through its veth).
    pub cli2: Netns,
    /// The internet.
    pub inet: Netns,
    /// The server's interface towards the internet (its default route).
    pub ext: String,
}

impl Gateway {
    /// The internet host's address.
    pub const INET: &str = "203.0.113.80";
    /// The URL of [`Gateway::web_server`].
    pub const WEB: &str = "http://203.0.113.80:8080/";
    /// The server's address on the internet side.
    pub const SERVER_EXT: &str = "203.0.113.1";

    /// Builds it; `prefix` (at most 5 characters) starts every namespace name.
    pub fn new(prefix: &str) -> Self {
        let srv = Netns::new(&format!("{prefix}s"));
        let cli1 = Netns::new(&format!("{prefix}a"));
        let cli2 = Netns::new(&format!("{prefix}b"));
        let inet = Netns::new(&format!("{prefix}i"));
        veth(&srv, "10.231.1.1/24", &cli1, "10.231.1.2/24");
        veth(&srv, "10.231.2.1/24", &cli2, "10.231.2.2/24");
        let (ext, _) = veth(
            &srv,
            &format!("{}/24", Self::SERVER_EXT),
            &inet,
            &format!("{}/24", Self::INET),
        );
        srv.exec_ok(&["ip", "route", "add", "default", "via", Self::INET]);
        // Forwarding is per namespace and off in a new one: left off here, the firewall plane
        // turns it on (the tests prove it does).
        Self {
            srv,
            cli1,
            cli2,
            inet,
            ext,
        }
    }

    /// A namespace elsewhere on the internet (behind the internet namespace, which routes for
    /// it): `198.51.(100 + n).2/24`, its default route via `.1`. Traffic from it reaches the
    /// server on its external interface, like a roaming device or an admin's machine.
    pub fn remote(&self, prefix: &str, n: u8) -> (Netns, String) {
        let ns = Netns::new(prefix);
        let net = format!("198.51.{}", 100 + u16::from(n));
        veth(
            &self.inet,
            &format!("{net}.1/24"),
            &ns,
            &format!("{net}.2/24"),
        );
        ns.exec_ok(&["ip", "route", "add", "default", "via", &format!("{net}.1")]);
        self.inet
            .exec_ok(&["sysctl", "-q", "-w", "net.ipv4.ip_forward=1"]);
        (ns, format!("{net}.2"))
    }

    /// Serves `dir` over HTTP on [`Gateway::WEB`] from the internet namespace.
    pub fn web_server(&self, dir: &std::path::Path) -> Process {
        let dir = dir.to_str().unwrap();
        self.inet.spawn(&[
            "python3",
            "-m",
            "http.server",
            "--bind",
            Self::INET,
            "8080",
            "--directory",
            dir,
        ])
    }
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
        Self::start_named(ns, &unique(prefix))
    }

    /// Starts `wireguard-go -f name` in `ns` (a name from [`unique`]) and waits for its socket.
    pub fn start_named(ns: &Netns, name: &str) -> Self {
        let name = name.to_string();
        // Its errors go to a file so that a failed start says why.
        let log = wireguard_go_log(&name);
        let err = std::fs::File::create(&log).unwrap();
        // `ip netns exec` execs the program, so the child is wireguard-go itself (ours to reap).
        let child = Command::new("ip")
            .args(["netns", "exec", &ns.name, "wireguard-go", "-f", &name])
            .env("WG_PROCESS_FOREGROUND", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(err)
            .spawn()
            .unwrap();
        let mut wg = Self { name, child };
        // Generous: many system tests start processes at once on a small CI machine.
        let deadline = Instant::now() + Duration::from_secs(15);
        while ns.exec(&["wg", "show", &wg.name]).status.code() != Some(0) {
            let exited = wg.child.try_wait().ok().flatten();
            assert!(
                exited.is_none() && Instant::now() < deadline,
                "wireguard-go {} did not start ({}): {}",
                wg.name,
                exited.map_or("still running after 15 s".into(), |s| s.to_string()),
                std::fs::read_to_string(&log).unwrap_or_default()
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
        let _ = std::fs::remove_file(wireguard_go_log(&self.name));
    }
}

/// Where a test's wireguard-go writes its errors.
fn wireguard_go_log(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("mistborn-test-wireguard-go-{name}.log"))
}

/// A fresh random WireGuard public key (`wg genkey | wg pubkey`), e.g. for a stray peer.
pub fn wg_new_public_key() -> String {
    use std::io::Write;
    let private = run_ok(&["wg", "genkey"]);
    let mut c = Command::new("wg")
        .arg("pubkey")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    c.stdin
        .take()
        .unwrap()
        .write_all(private.as_bytes())
        .unwrap();
    let out = c.wait_with_output().unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// Puts a peer on `iface` by hand (`wg set`), as an admin editing the interface would.
pub fn wg_set_peer(ns: &Netns, iface: &str, public_key: &str, allowed_ips: &str) {
    ns.exec_ok(&[
        "wg",
        "set",
        iface,
        "peer",
        public_key,
        "allowed-ips",
        allowed_ips,
    ]);
}

/// Polls `f` until it returns `want` (data planes react asynchronously), panicking after 5 s.
/// Returns when the deciding check started, counted from the first one (zero: the first check
/// already saw it), so a slow failing probe (a timeout) does not count as reaction time.
#[track_caller]
pub fn eventually(what: &str, want: bool, mut f: impl FnMut() -> bool) -> Duration {
    let t0 = Instant::now();
    loop {
        let started = t0.elapsed();
        if f() == want {
            return started;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(5),
            "{what}: still {}",
            !want
        );
        std::thread::sleep(Duration::from_millis(20));
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

/// A plain HTTP/1.0 request over an open stream (TCP, or a unix socket such as Mistborn's proxy
/// socket): `(status, body)`. HTTP/1.0 so the server closes the connection after one whole (never
/// chunked) response.
pub fn http_over(
    mut s: impl std::io::Read + std::io::Write,
    host: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
) -> std::io::Result<(u16, String)> {
    let mut req = format!("{method} {path} HTTP/1.0\r\nHost: {host}\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    if let Some(b) = body {
        req.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            b.len()
        ));
    }
    req.push_str("\r\n");
    req.push_str(body.unwrap_or(""));
    s.write_all(req.as_bytes())?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("not an HTTP response: {head:?}")))?;
    Ok((status, body.to_string()))
}
