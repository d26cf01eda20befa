//! `wg setconf` (wireguard-tools) accepts a rendered client config once the wg-quick-only
//! `Address`/`DNS` lines are stripped, and applies exactly its keys and endpoint. Needs root for a
//! network namespace and a wireguard-go interface inside it; without root it is skipped with a
//! reason, and fails when `CI` is set.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use mistborn_core::Actor;

use crate::support::TestApp;

/// Returns why the test cannot run here, if it cannot.
fn missing_prerequisite() -> Option<String> {
    let uid = Command::new("id").arg("-u").output().ok()?;
    if String::from_utf8_lossy(&uid.stdout).trim() != "0" {
        return Some("needs root (network namespace + wireguard-go)".into());
    }
    for tool in ["ip", "wg", "wireguard-go"] {
        let found = Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !found {
            return Some(format!(
                "`{tool}` is not installed (apt-get install wireguard-tools wireguard-go iproute2)"
            ));
        }
    }
    if !Path::new("/dev/net/tun").exists() {
        return Some("/dev/net/tun is missing".into());
    }
    None
}

/// A network namespace with a wireguard-go interface, both removed on drop (even on failure).
struct WgNamespace {
    ns: String,
    iface: String,
    daemon: Option<Child>,
}

impl WgNamespace {
    fn new() -> Self {
        static N: AtomicU32 = AtomicU32::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let pid = std::process::id() % 100_000;
        // Interface names are global through /run/wireguard and at most 15 characters.
        let iface = format!("mbh{pid}x{n}");
        let ns = format!("mbhttp-{pid}-{n}");
        let mut guard = Self {
            ns,
            iface,
            daemon: None,
        };
        run(Command::new("ip").args(["netns", "add", &guard.ns]));
        let daemon = Command::new("ip")
            .args([
                "netns",
                "exec",
                &guard.ns,
                "wireguard-go",
                "-f",
                &guard.iface,
            ])
            .env("WG_PROCESS_FOREGROUND", "1")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        guard.daemon = Some(daemon);
        let sock = format!("/run/wireguard/{}.sock", guard.iface);
        let start = Instant::now();
        while !Path::new(&sock).exists() {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "wireguard-go did not create {sock}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        guard
    }

    fn wg(&self, args: &[&str]) -> std::process::Output {
        Command::new("ip")
            .args(["netns", "exec", &self.ns, "wg"])
            .args(args)
            .output()
            .unwrap()
    }
}

impl Drop for WgNamespace {
    fn drop(&mut self) {
        if let Some(mut d) = self.daemon.take() {
            let _ = d.kill();
            let _ = d.wait();
        }
        let _ = std::fs::remove_file(format!("/run/wireguard/{}.sock", self.iface));
        let _ = Command::new("ip").args(["netns", "del", &self.ns]).status();
    }
}

#[track_caller]
fn run(c: &mut Command) {
    let out = c.output().unwrap();
    assert!(
        out.status.success(),
        "{c:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The config without the lines only wg-quick understands.
fn strip_wg_quick(conf: &str) -> String {
    conf.lines()
        .filter(|l| {
            let key = l.split('=').next().unwrap_or("").trim();
            key != "Address" && key != "DNS"
        })
        .map(|l| format!("{l}\n"))
        .collect()
}

fn value<'a>(conf: &'a str, key: &str) -> &'a str {
    conf.lines()
        .find_map(|l| {
            let (k, v) = l.split_once('=')?;
            (k.trim() == key).then(|| v.trim())
        })
        .unwrap_or_else(|| panic!("{key} missing in:\n{conf}"))
}

#[tokio::test]
async fn wg_setconf_accepts_the_rendered_config() {
    if let Some(reason) = missing_prerequisite() {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI is set but this test cannot run: {reason}"
        );
        eprintln!("SKIPPED wg_setconf_accepts_the_rendered_config: {reason}");
        return;
    }
    // An address literal: `wg` resolves host names, and tests have no DNS.
    let app = TestApp::with(|c| c.endpoint = "192.0.2.10".into()).await;
    let peer = app
        .m
        .peers()
        .find(&Actor::System, Some("admin"), "default")
        .await
        .unwrap();
    // Through the API, as a device would fetch it.
    let r = app
        .get(&format!("/api/v1/profiles/{}/config", peer.id), &app.admin)
        .await;
    assert_eq!(r.status, axum::http::StatusCode::OK);
    let conf = r.text();

    let ns = WgNamespace::new();
    let dir = tempfile::tempdir().unwrap();
    let full = dir.path().join("full.conf");
    let stripped = dir.path().join("stripped.conf");
    std::fs::write(&full, &conf).unwrap();
    std::fs::write(&stripped, strip_wg_quick(&conf)).unwrap();

    // As wireguard-tools documents: the unstripped file is wg-quick's, not wg's.
    let out = ns.wg(&["setconf", &ns.iface, full.to_str().unwrap()]);
    assert!(
        !out.status.success(),
        "wg setconf should reject Address/DNS"
    );

    let out = ns.wg(&["setconf", &ns.iface, stripped.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "wg setconf rejected:\n{}\n{}",
        strip_wg_quick(&conf),
        String::from_utf8_lossy(&out.stderr)
    );

    // The interface now holds exactly what the config says.
    let shown = String::from_utf8(ns.wg(&["showconf", &ns.iface]).stdout).unwrap();
    for key in [
        "PrivateKey",
        "PublicKey",
        "PresharedKey",
        "Endpoint",
        "PersistentKeepalive",
    ] {
        assert_eq!(value(&shown, key), value(&conf, key), "{key}:\n{shown}");
    }
    let allowed = value(&shown, "AllowedIPs").replace(' ', "");
    assert_eq!(allowed, "0.0.0.0/0,::/0");
    assert_eq!(
        value(&shown, "PublicKey"),
        app.m.server_public_key().to_base64()
    );
}

/// `mistborn getconf > file`: stdout is a file, not a terminal, so the file holds only the config
/// (no QR code after it) and `wg setconf` takes it once the wg-quick lines are stripped.
#[test]
fn getconf_redirected_to_a_file_is_a_valid_config() {
    if let Some(reason) = missing_prerequisite() {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI is set but this test cannot run: {reason}"
        );
        eprintln!("SKIPPED getconf_redirected_to_a_file_is_a_valid_config: {reason}");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mistborn = |args: &[&str]| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_mistborn"));
        c.arg("--data-dir").arg(&data).args(args);
        for var in mistborn_core::config::ENV_VARS {
            c.env_remove(var);
        }
        // An address literal: `wg` resolves host names, and tests have no DNS.
        c.env("MISTBORN_ENDPOINT", "192.0.2.10");
        c
    };
    run(&mut mistborn(&["init"]));
    let file = dir.path().join("laptop.conf");
    run(mistborn(&["getconf"]).stdout(std::fs::File::create(&file).unwrap()));
    let conf = std::fs::read_to_string(&file).unwrap();
    assert!(conf.contains("[Peer]"), "{conf}");

    let ns = WgNamespace::new();
    let stripped = dir.path().join("stripped.conf");
    std::fs::write(&stripped, strip_wg_quick(&conf)).unwrap();
    let out = ns.wg(&["setconf", &ns.iface, stripped.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "wg setconf rejected the redirected getconf output:\n{conf}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let shown = String::from_utf8(ns.wg(&["showconf", &ns.iface]).stdout).unwrap();
    assert_eq!(
        value(&shown, "Endpoint"),
        value(&conf, "Endpoint"),
        "{shown}"
    );
    assert!(
        value(&conf, "Endpoint").starts_with("192.0.2.10:"),
        "{conf}"
    );
}
