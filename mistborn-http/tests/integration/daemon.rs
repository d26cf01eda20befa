//! `mistborn serve` for real, in a network namespace: writes its config file, starts the binary,
//! waits until the API answers, and talks to it from the test (REST, WebSocket, the CLI on the
//! same data dir). Stop/start keep the data dir; a stop leaves serve's wireguard-go running (as
//! in production, `wireguard.keep_on_stop`); drop kills the daemon and that wireguard-go, so a
//! failing test cleans up too.

use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use mistborn_system_tests::{Netns, Process, adopt_orphans, kill_wireguard_go};
use serde_json::Value;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

/// The `mistborn` binary built with these tests.
pub const BIN: &str = env!("CARGO_BIN_EXE_mistborn");

/// What a test's daemon looks like; every name and port must be unique to the test.
#[derive(Debug, Clone)]
pub struct DaemonSettings {
    /// WireGuard interface (from `unique`, <= 15 characters).
    pub interface: String,
    /// WireGuard UDP port.
    pub listen_port: u16,
    /// Tunnel subnets.
    pub subnet_v4: String,
    pub subnet_v6: String,
    /// `endpoint` of client configs (the server's address on the client's side).
    pub endpoint: String,
    /// Where the API listens inside the namespace.
    pub http: SocketAddr,
    /// Whether serve manages the `inet mistborn` nftables table.
    pub firewall: bool,
    /// Whether serve runs its DNS resolver (on the tunnel addresses, port 53).
    pub dns: bool,
    /// Status poll interval.
    pub status_interval_ms: u64,
    /// More TOML appended to the file: it lands in the `[firewall]` section unless it starts
    /// sections of its own.
    pub extra: String,
}

impl DaemonSettings {
    /// Userspace backend; DNS, proxy and firewall off; a 200 ms status tick.
    pub fn new(interface: &str, endpoint: &str) -> Self {
        Self {
            interface: interface.into(),
            listen_port: 51820,
            subnet_v4: "10.15.91.0/24".into(),
            subnet_v6: "fd15:91::/64".into(),
            endpoint: endpoint.into(),
            http: "127.0.0.1:5000".parse().expect("literal"),
            firewall: false,
            dns: false,
            status_interval_ms: 200,
            extra: String::new(),
        }
    }

    fn toml(&self, data_dir: &Path) -> String {
        format!(
            "data_dir = \"{data}\"\nendpoint = \"{endpoint}\"\nhttp_listen = \"{http}\"\n\
             [wireguard]\ninterface = \"{iface}\"\nlisten_port = {port}\nsubnet_v4 = \"{v4}\"\n\
             subnet_v6 = \"{v6}\"\nbackend = \"userspace\"\nstatus_interval_ms = {tick}\n\
             [dns]\nenabled = {dns}\n[firewall]\nenabled = {fw}\n{extra}",
            data = data_dir.display(),
            endpoint = self.endpoint,
            http = self.http,
            iface = self.interface,
            port = self.listen_port,
            v4 = self.subnet_v4,
            v6 = self.subnet_v6,
            tick = self.status_interval_ms,
            fw = self.firewall,
            dns = self.dns,
            extra = self.extra,
        )
    }
}

/// A `mistborn serve` in a namespace, with its data dir.
pub struct Daemon {
    ns: Netns,
    pub settings: DaemonSettings,
    pub dir: tempfile::TempDir,
    pub config_file: PathBuf,
    log: PathBuf,
    process: Option<Process>,
    /// Where the log of the current run starts.
    run_start: usize,
}

pub type Ws = tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>;

impl Daemon {
    /// Writes the config and starts the daemon inside `ns` (a second handle on the same
    /// namespace: the test keeps its own `Netns`, which deletes it).
    pub fn start(ns: &Netns, settings: DaemonSettings) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let config_file = dir.path().join("mistborn.toml");
        std::fs::write(&config_file, settings.toml(&dir.path().join("data")))
            .expect("write config");
        let mut d = Self {
            ns: ns.handle(),
            settings,
            log: dir.path().join("serve.log"),
            dir,
            config_file,
            process: None,
            run_start: 0,
        };
        d.restart();
        d
    }

    /// The running daemon's process id.
    pub fn pid(&self) -> Option<u32> {
        self.process.as_ref().map(Process::id)
    }

    /// The data dir.
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// Starts serve (again) on the same config and data dir and waits until the API answers.
    pub fn restart(&mut self) {
        assert!(self.process.is_none(), "the daemon is running already");
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("log file");
        self.run_start = out.metadata().map_or(0, |m| m.len() as usize);
        let err = out.try_clone().expect("log file");
        let cfg = self.config_file.display().to_string();
        // serve leaves its wireguard-go running when it stops: let it be reparented here, so
        // the drop below reaps it.
        adopt_orphans();
        let child = self
            .ns
            .command(&[BIN, "--config", &cfg, "serve"])
            // Its own process group, which `stop` signals as a whole (see there).
            .process_group(0)
            .env(
                "MISTBORN_LOG",
                "info,hickory_server=warn,netlink_packet_route=error",
            )
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .expect("start mistborn serve");
        self.process = Some(Process::new(child));
        let started = Instant::now();
        loop {
            if let Some(status) = self.process.as_mut().and_then(Process::exited) {
                self.process = None;
                panic!(
                    "mistborn serve exited at start ({status}):\n{}",
                    self.output()
                );
            }
            if self.output().contains("serving the API on")
                && self.api("GET", "/api/v1/openapi.json", None, None).0 == 200
            {
                return;
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "the API did not answer within 30 s:\n{}",
                self.output()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGTERM to serve's whole process group, as a terminal's Ctrl-C or a supervisor sends it
    /// (the wireguard-go serve started runs in a group of its own and must not get it), and
    /// waits for a clean exit (fails when it has to be killed or exits non-zero).
    pub fn stop(&mut self) {
        let mut p = self.process.take().expect("the daemon is not running");
        mistborn_system_tests::run(&["kill", "-TERM", "--", &format!("-{}", p.id())]);
        let status = p.stop(Duration::from_secs(10));
        assert!(
            status.is_some_and(|s| s.success()),
            "mistborn serve did not stop cleanly ({status:?}):\n{}",
            self.output()
        );
    }

    /// Everything the daemon printed, all runs.
    pub fn output(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// What the current (or last) run printed.
    pub fn run_output(&self) -> String {
        self.output()
            .get(self.run_start..)
            .unwrap_or("")
            .to_string()
    }

    /// Runs `mistborn --config <file> args` (the CLI acts on the data dir directly) inside the
    /// namespace.
    pub fn cli(&self, args: &[&str]) -> Output {
        let cfg = self.config_file.display().to_string();
        let mut all = vec![BIN, "--config", &cfg];
        all.extend_from_slice(args);
        self.ns.exec(&all)
    }

    /// Like [`Daemon::cli`], panicking with the output when it fails; its stdout.
    pub fn cli_ok(&self, args: &[&str]) -> String {
        let out = self.cli(args);
        assert!(
            out.status.success(),
            "mistborn {args:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// A fresh API token of `user`, made with `mistborn token add`.
    pub fn token(&self, user: &str) -> String {
        // Labels are unique per user.
        static N: AtomicU32 = AtomicU32::new(0);
        let label = format!("test-{}", N.fetch_add(1, Ordering::Relaxed));
        self.cli_ok(&["token", "add", &label, "--user", user])
            .trim()
            .to_string()
    }

    /// A REST call: (status, JSON body or `Null`).
    pub fn api(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> (u16, Value) {
        let auth = token.map(|t| format!("Bearer {t}"));
        let headers: Vec<(&str, &str)> = auth
            .as_deref()
            .map(|a| vec![("Authorization", a)])
            .unwrap_or_default();
        self.api_as(method, path, &headers, body)
    }

    /// A REST call as the reverse proxy makes it for a tunnel client: over serve's proxy socket
    /// (the proven hop), naming `client` in `X-Forwarded-For`. (status, JSON body or `Null`).
    pub fn api_as_client(
        &self,
        method: &str,
        path: &str,
        client: &str,
        body: Option<&Value>,
    ) -> (u16, Value) {
        let socket = self.data_dir().join("http.sock");
        let body = body.map(Value::to_string);
        let answer = std::os::unix::net::UnixStream::connect(&socket).and_then(|s| {
            s.set_read_timeout(Some(Duration::from_secs(10)))?;
            mistborn_system_tests::http_over(
                s,
                "home.mistborn",
                method,
                path,
                // As the sign-in page sends it (changes on tunnel identity need its Origin).
                &[
                    ("X-Forwarded-For", client),
                    ("Origin", "https://home.mistborn"),
                ],
                body.as_deref(),
            )
        });
        match answer {
            Ok((status, text)) => (status, serde_json::from_str(&text).unwrap_or(Value::Null)),
            Err(_) => (0, Value::Null),
        }
    }

    /// A REST call with extra headers: (status, JSON body or `Null`; status 0 when the API did
    /// not answer).
    pub fn api_as(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&Value>,
    ) -> (u16, Value) {
        let body = body.map(Value::to_string);
        match self
            .ns
            .http(self.settings.http, method, path, headers, body.as_deref())
        {
            Ok((status, text)) => (status, serde_json::from_str(&text).unwrap_or(Value::Null)),
            Err(_) => (0, Value::Null),
        }
    }

    /// A REST call that must answer `want`; its JSON.
    #[track_caller]
    pub fn api_ok(
        &self,
        method: &str,
        path: &str,
        token: &str,
        body: Option<Value>,
        want: u16,
    ) -> Value {
        let (status, v) = self.api(method, path, Some(token), body.as_ref());
        assert_eq!(status, want, "{method} {path}: {v}");
        v
    }

    /// The status WebSocket as `token`'s owner sees it.
    pub async fn status_ws(&self, token: &str) -> Ws {
        let std = self.ns.connect(self.settings.http).expect("connect");
        std.set_nonblocking(true).expect("nonblocking");
        let stream = tokio::net::TcpStream::from_std(std).expect("tokio stream");
        let mut req = format!("ws://{}/api/v1/status/ws", self.settings.http)
            .into_client_request()
            .expect("request");
        req.headers_mut().insert(
            "authorization",
            format!("Bearer {token}").parse().expect("header"),
        );
        tokio_tungstenite::client_async(req, stream)
            .await
            .expect("websocket")
            .0
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut p) = self.process.take() {
            p.stop(Duration::from_secs(5));
        }
        kill_wireguard_go(&self.ns, &self.settings.interface);
        if std::thread::panicking() {
            eprintln!("--- mistborn serve output ---\n{}", self.output());
        }
    }
}
