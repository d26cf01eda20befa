//! The generated Caddyfile against a real Caddy (Debian's package): it validates, starts bound only
//! where told, denies unknown hosts, proxies `home`, and reloads without dropping the old config on
//! a bad one. Forward-auth through Caddy is tested end to end with the HTTP server in mistborn-http.
#![allow(clippy::unwrap_used)]

mod common;

use std::net::{IpAddr, SocketAddr, TcpListener};
use std::process::Command;

use mistborn_core::Mistborn;
use mistborn_core::proxy::{CADDY_ENV, Caddy, ProxyMode, plan, render_caddyfile};

use common::engines;

fn caddy_available() -> bool {
    let ok = Command::new("caddy")
        .arg("version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI needs caddy (scripts/install-test-deps.sh)"
        );
        eprintln!("skipping: caddy is not installed");
    }
    ok
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn curl(args: &[&str]) -> (String, String) {
    let out = Command::new("curl")
        .args(["-sS", "-o", "-", "-w", "\n%{http_code}", "--max-time", "5"])
        .args(args)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", &text));
    if code == "000" {
        eprintln!("curl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    }
    (code.to_string(), body.to_string())
}

/// Answers every connection with one HTTP 200 carrying `body`.
fn respond(mut s: impl std::io::Read + std::io::Write, body: &str) {
    let mut buf = [0u8; 4096];
    let _ = s.read(&mut buf);
    let _ = write!(
        s,
        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
}

/// A one-response-per-connection HTTP server standing in for Mistborn's web UI upstream.
fn upstream(body: &'static str) -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    std::thread::spawn(move || l.incoming().flatten().for_each(|s| respond(s, body)));
    addr
}

/// The same on Mistborn's proxy socket, which Caddy uses for `home` and forward-auth.
fn upstream_socket(path: &std::path::Path, body: &'static str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let l = std::os::unix::net::UnixListener::bind(path).unwrap();
    std::thread::spawn(move || l.incoming().flatten().for_each(|s| respond(s, body)));
}

#[tokio::test]
async fn caddy_serves_the_generated_config() {
    if !caddy_available() {
        return;
    }
    let env = &engines().await[0];
    let mut config = env.config();
    config.proxy.mode = ProxyMode::Managed;
    config.proxy.http_port = free_port();
    config.proxy.https_port = free_port();
    config.proxy.bind = vec!["127.0.0.1".parse().unwrap()];
    config.http_listen = upstream("mistborn on tcp");
    let m = Mistborn::open(config.clone()).await.unwrap();
    upstream_socket(&config.effective_http_socket(), "mistborn home");
    let files = m.tls().write_files(time_now()).await.unwrap().files;
    let p = plan(
        &config,
        files.clone(),
        [
            "10.15.91.1".parse::<IpAddr>().unwrap(),
            "fd15:91::1".parse().unwrap(),
        ],
    );
    let text = render_caddyfile(&p);
    let mut caddy = Caddy::new("caddy", config.data_dir.join("caddy"), p.admin.clone());
    caddy.validate(&text).await.unwrap();
    caddy.start(&text).await.unwrap();

    // Caddy sees none of this process's environment (under CI it holds the PostgreSQL URL with
    // its password): only PATH and its own home and XDG dirs.
    let environ = std::fs::read(format!("/proc/{}/environ", caddy.pid().unwrap())).unwrap();
    let vars: Vec<String> = environ
        .split(|b| *b == 0)
        .filter(|v| !v.is_empty())
        .map(|v| String::from_utf8_lossy(v).into_owned())
        .collect();
    for v in &vars {
        let key = v.split('=').next().unwrap();
        assert!(CADDY_ENV.contains(&key), "caddy has {key}: {vars:?}");
    }
    for (k, v) in std::env::vars().filter(|(k, _)| k != "PATH") {
        assert!(!vars.contains(&format!("{k}={v}")), "caddy inherited {k}");
    }
    assert!(
        vars.iter()
            .any(|v| v.starts_with("HOME=") && v.contains("caddy")),
        "{vars:?}"
    );

    let (hp, sp) = (config.proxy.http_port, config.proxy.https_port);
    let home = format!("http://home.mistborn:{hp}/");
    let resolve = format!("home.mistborn:{hp}:127.0.0.1");
    assert_eq!(
        curl(&["--resolve", &resolve, &home]),
        ("200".into(), "mistborn home".into())
    );
    let other = format!("other.example:{hp}:127.0.0.1");
    let (code, body) = curl(&["--resolve", &other, &format!("http://other.example:{hp}/")]);
    assert_eq!(
        (code.as_str(), body.as_str()),
        ("403", "Mistborn: Not authorized")
    );

    // HTTPS with Mistborn's CA verifies.
    let resolve_s = format!("home.mistborn:{sp}:127.0.0.1");
    let (code, body) = curl(&[
        "--cacert",
        files.ca.to_str().unwrap(),
        "--resolve",
        &resolve_s,
        &format!("https://home.mistborn:{sp}/"),
    ]);
    assert_eq!((code.as_str(), body.as_str()), ("200", "mistborn home"));

    // A broken config is refused and the old one keeps serving.
    assert!(caddy.reload("this is { not a caddyfile").await.is_err());
    assert_eq!(curl(&["--resolve", &resolve, &home]).0, "200");
    caddy.reload(&text).await.unwrap();
    assert_eq!(curl(&["--resolve", &resolve, &home]).0, "200");

    // Only the configured bind address listens.
    let ss = Command::new("ss")
        .args(["-Hltn", &format!("sport = :{hp}")])
        .output()
        .unwrap();
    let listening = String::from_utf8_lossy(&ss.stdout);
    let locals: Vec<&str> = listening
        .lines()
        .filter_map(|l| l.split_whitespace().nth(3))
        .collect();
    assert!(!locals.is_empty(), "{listening}");
    assert!(
        locals.iter().all(|a| a.starts_with("127.0.0.1:")),
        "{listening}"
    );

    // Supervision: a killed Caddy is restarted.
    caddy.stop().await;
    assert!(caddy.ensure_running().await.unwrap());
    assert_eq!(curl(&["--resolve", &resolve, &home]).0, "200");
    caddy.stop().await;
}

fn time_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}
