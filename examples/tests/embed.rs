//! Runs the embedding example once: unprivileged, it starts the core daemon with the data plane
//! off, DNS on a loopback port, and stops cleanly.
#![allow(clippy::unwrap_used)]

use std::process::Command;

#[test]
fn the_embedding_example_runs_the_daemon_unprivileged() {
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let out = Command::new(env!("CARGO_BIN_EXE_mistborn-embed"))
        .arg(dir.path().join("data"))
        .arg(format!("127.0.0.1:{port}"))
        .arg("--once")
        .env_remove("MISTBORN_DATAPLANE")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("data plane: OFF: wireguard.backend is 'none'"),
        "{stdout}"
    );
    assert!(stdout.contains("firewall: OFF"), "{stdout}");
    assert!(
        stdout.contains(&format!("DNS: ON (UDP and TCP on [127.0.0.1:{port}]")),
        "{stdout}"
    );
    assert!(stdout.contains("change watcher: ON (SQLite"), "{stdout}");
    assert!(stdout.trim_end().ends_with("stopped"), "{stdout}");
}
