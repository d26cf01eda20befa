//! Who the caller is, against a real `mistborn serve` and `curl`: a header sent straight to the TCP
//! listener names nobody; the same header over the reverse proxy's socket names the device.

use std::io::{BufRead, BufReader};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_mistborn");

/// `mistborn serve` on a free loopback port with no data plane; killed on drop.
struct Serve {
    child: Child,
    addr: String,
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(dir: &Path) -> Serve {
    let mut c = Command::new(BIN);
    c.arg("--data-dir")
        .arg(dir)
        .args(["serve", "--listen", "127.0.0.1:0"]);
    for var in mistborn_core::config::ENV_VARS {
        c.env_remove(var);
    }
    // No data plane (as root it would put an interface in the host's namespace), no DNS on :53.
    let mut child = c
        .env_remove("MISTBORN_CONFIG")
        .env("MISTBORN_DATAPLANE", "none")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let addr = loop {
        let line = lines.next().expect("serve printed its address").unwrap();
        if let Some(rest) = line.strip_prefix("serving the API on http://") {
            break rest.split('/').next().unwrap().to_string();
        }
    };
    // Keep reading its output so serve never blocks on a full pipe.
    std::thread::spawn(move || lines.for_each(drop));
    Serve { child, addr }
}

/// `curl` with extra arguments: (status, body).
fn curl(args: &[&str]) -> (u16, String) {
    let out = Command::new("curl")
        .args(["-s", "-o", "-", "-w", "\n%{http_code}", "--max-time", "5"])
        .args(args)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", &text));
    (code.parse().unwrap_or(0), body.to_string())
}

fn json(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"))
}

#[test]
fn a_forwarded_for_header_straight_to_tcp_is_nobody() {
    let tmp = tempfile::tempdir().unwrap();
    let s = serve(tmp.path());
    let url = |path: &str| format!("http://{}{path}", s.addr);
    let spoof = ["-H", "X-Forwarded-For: 10.15.91.2"];

    // The exact command of issue 11: the admin's default profile is 10.15.91.2 on every install.
    let (status, body) = curl(&[&spoof[..], &[&url("/api/v1/me")]].concat());
    assert_eq!(status, 401, "{body}");
    let (status, body) = curl(
        &[
            &spoof[..],
            &[
                "-H",
                "content-type: application/json",
                "-d",
                r#"{"label":"stolen"}"#,
                &url("/api/v1/tokens"),
            ],
        ]
        .concat(),
    );
    assert_eq!(status, 401, "minting a token: {body}");
    let (status, body) = curl(&[&spoof[..], &[&url("/api/v1/auth/whoami")]].concat());
    assert_eq!(status, 200, "{body}");
    assert_eq!(json(&body)["username"], Value::Null, "{body}");

    // The proxy's socket: 0600, and there the forwarded address is believed.
    let socket = tmp.path().join("http.sock");
    let meta = std::fs::symlink_metadata(&socket).unwrap();
    assert!(meta.file_type().is_socket());
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    let sock = socket.display().to_string();
    let via_proxy = |path: &str| {
        curl(
            &[
                &spoof[..],
                &[
                    "--unix-socket",
                    &sock,
                    &format!("http://home.mistborn{path}"),
                ],
            ]
            .concat(),
        )
    };
    let (status, body) = via_proxy("/api/v1/me");
    assert_eq!(status, 200, "{body}");
    assert_eq!(json(&body)["role"], "superuser", "{body}");
    let (status, body) = via_proxy("/api/v1/profiles");
    assert_eq!(status, 200, "{body}");
    let profile = json(&body)[0]["id"].as_str().unwrap().to_string();

    // Reading that profile's private key with the header over TCP fails.
    let (status, body) = curl(
        &[
            &spoof[..],
            &[&url(&format!("/api/v1/profiles/{profile}/config"))],
        ]
        .concat(),
    );
    assert_eq!(status, 401, "{body}");
    assert!(!body.contains("PrivateKey"), "{body}");
}
