//! The `mistborn` binary in a temp data dir: init, users, profiles, getconf, tokens, backup and
//! restore into a fresh dir, restarts, config file and env, errors, and `serve` with SIGTERM.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_mistborn");

fn mistborn(dir: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(BIN);
    c.arg("--data-dir").arg(dir).args(args);
    // The host's own settings must not leak into the tests.
    for var in mistborn_core::config::ENV_VARS {
        c.env_remove(var);
    }
    c.env_remove("MISTBORN_CONFIG");
    c
}

#[track_caller]
fn ok(dir: &Path, args: &[&str]) -> String {
    let out = mistborn(dir, args).output().unwrap();
    assert!(
        out.status.success(),
        "mistborn {args:?} failed:\n{}",
        show(&out)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[track_caller]
fn fails(dir: &Path, args: &[&str]) -> String {
    let out = mistborn(dir, args).output().unwrap();
    assert!(
        !out.status.success(),
        "mistborn {args:?} should fail:\n{}",
        show(&out)
    );
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.starts_with("error: "), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    err
}

fn show(out: &Output) -> String {
    format!(
        "stdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn with_stdin(dir: &Path, args: &[&str], input: &str) -> String {
    let mut child = mistborn(dir, args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", show(&out));
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn manage_everything_backup_restore_and_restart() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");

    let init = ok(&dir, &["init"]);
    assert!(init.contains("admin password file:"), "{init}");
    let password = init
        .lines()
        .find_map(|l| l.strip_prefix("admin password: "))
        .unwrap()
        .to_string();
    let file = std::fs::read_to_string(dir.join("admin-password")).unwrap();
    assert_eq!(file.trim(), password);
    assert!(ok(&dir, &["init"]).contains("already initialised"));

    let out = with_stdin(
        &dir,
        &["user", "add", "bob", "--password-stdin"],
        "bob's password\n",
    );
    assert!(out.contains("created regular user 'bob'"), "{out}");
    let out = ok(&dir, &["user", "add", "carol", "--superuser"]);
    assert!(
        out.contains("created superuser user 'carol'") && out.contains("password: "),
        "{out}"
    );
    ok(&dir, &["user", "role", "carol", "regular"]);
    ok(
        &dir,
        &[
            "user",
            "passwd",
            "carol",
            "--password",
            "carol's new password",
        ],
    );

    let out = ok(&dir, &["peer", "add", "phone", "--user", "bob"]);
    assert!(out.contains("created profile 'phone' of 'bob'"), "{out}");
    ok(
        &dir,
        &[
            "peer",
            "add",
            "laptop",
            "--user",
            "bob",
            "--kind",
            "mfa",
            "--port",
            "udp443",
            "--client-to-client",
        ],
    );
    ok(&dir, &["peer", "add", "scratch"]);
    let device = mistborn_core::crypto::KeyPair::generate();
    ok(
        &dir,
        &[
            "peer",
            "add",
            "own-key",
            "--user",
            "carol",
            "--public-key",
            &device.public.to_base64(),
        ],
    );
    ok(&dir, &["peer", "remove", "scratch"]);

    let bobs = ok(&dir, &["peer", "list", "--user", "bob"]);
    assert_eq!(bobs.lines().count(), 3, "header + 2 rows:\n{bobs}");
    assert!(
        bobs.contains("laptop") && bobs.contains("mfa") && bobs.contains("udp443"),
        "{bobs}"
    );
    let laptop_id = bobs
        .lines()
        .find(|l| l.contains("laptop"))
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_string();

    let conf = ok(&dir, &["getconf", "phone", "--user", "bob", "--no-qr"]);
    assert!(
        conf.starts_with("# Mistborn profile: phone\n[Interface]\n"),
        "{conf}"
    );
    assert!(!conf.contains('█'), "--no-qr prints no QR");
    let by_id = ok(&dir, &["getconf", &laptop_id, "--no-qr"]);
    assert!(by_id.contains("Endpoint = 127.0.0.1:443"), "{by_id}");
    // stdout is a pipe here: only the config, so `getconf > file` gives a file wg-quick reads.
    let default = ok(&dir, &["getconf"]);
    assert!(
        default.contains("# Mistborn profile: default") && !default.contains('█'),
        "{default}"
    );
    let with_qr = ok(&dir, &["getconf", "--qr"]);
    assert!(
        with_qr.starts_with(&default) && with_qr.contains('█'),
        "{with_qr}"
    );

    let token = ok(&dir, &["token", "add", "ansible", "--user", "bob"]);
    assert_eq!(
        token.lines().count(),
        1,
        "only the secret on stdout: {token}"
    );
    assert!(token.trim().len() > 20);
    ok(&dir, &["token", "add", "spare"]);
    let tokens = ok(&dir, &["token", "list"]);
    assert!(
        tokens.contains("ansible") && tokens.contains("spare"),
        "{tokens}"
    );
    assert!(!tokens.contains(token.trim()), "secrets are never listed");
    let spare_id = tokens
        .lines()
        .find(|l| l.contains("spare"))
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_string();
    ok(&dir, &["token", "revoke", &spare_id]);
    assert!(!ok(&dir, &["token", "list", "--user", "admin"]).contains("spare"));

    let users = ok(&dir, &["user", "list"]);
    let peers = ok(&dir, &["peer", "list"]);
    let tokens = ok(&dir, &["token", "list"]);
    assert_eq!(
        users.lines().count(),
        4,
        "header + admin, bob, carol:\n{users}"
    );
    assert_eq!(
        peers.lines().count(),
        5,
        "admin default, bob x2, carol x1:\n{peers}"
    );

    // Each command is a fresh start on the same data dir: nothing is lost.
    assert_eq!(ok(&dir, &["user", "list"]), users);
    assert_eq!(ok(&dir, &["peer", "list"]), peers);

    let backup = tmp.path().join("backup.json");
    let out = ok(&dir, &["db", "backup", backup.to_str().unwrap()]);
    assert!(out.contains("3 users, 4 profiles"), "{out}");
    let mode = std::fs::metadata(&backup).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    // An existing file is refused unless --force; the first backup stays as it was.
    let first = std::fs::read(&backup).unwrap();
    let err = fails(&dir, &["db", "backup", backup.to_str().unwrap()]);
    assert!(
        err.contains("already exists") && err.contains("--force"),
        "{err}"
    );
    assert_eq!(std::fs::read(&backup).unwrap(), first);
    ok(&dir, &["db", "backup", backup.to_str().unwrap(), "--force"]);
    let mode = std::fs::metadata(&backup).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);

    let fresh = tmp.path().join("restored");
    ok(&fresh, &["db", "restore", backup.to_str().unwrap()]);
    assert_eq!(ok(&fresh, &["user", "list"]), users);
    assert_eq!(ok(&fresh, &["peer", "list"]), peers);
    assert_eq!(ok(&fresh, &["token", "list"]), tokens);
    // Sealed private keys open with the restored key file: the same config comes out.
    assert_eq!(
        ok(&fresh, &["getconf", "phone", "--user", "bob", "--no-qr"]),
        conf
    );

    // Restoring over a non-empty store needs --force.
    let err = fails(&fresh, &["db", "restore", backup.to_str().unwrap()]);
    assert!(err.contains("--force"), "{err}");
    ok(
        &fresh,
        &["db", "restore", backup.to_str().unwrap(), "--force"],
    );
    assert_eq!(ok(&fresh, &["peer", "list"]), peers);

    // Removing a user removes their profiles.
    ok(&dir, &["user", "remove", "bob"]);
    assert!(!ok(&dir, &["peer", "list"]).contains("laptop"));
}

/// The columns of `name`'s row in `peer list --user bob`: id, user, name, kind, c2c, port, ...
fn bobs_row(dir: &Path, name: &str) -> Vec<String> {
    ok(dir, &["peer", "list", "--user", "bob"])
        .lines()
        .map(|l| l.split_whitespace().map(String::from).collect::<Vec<_>>())
        .find(|cols| cols.get(2).map(String::as_str) == Some(name))
        .unwrap_or_else(|| panic!("no profile {name} of bob"))
}

#[test]
fn peer_update_changes_each_field_and_nothing_on_bad_input() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    ok(dir, &["init"]);
    ok(dir, &["user", "add", "bob", "--password", "long enough"]);
    ok(dir, &["peer", "add", "phone", "--user", "bob"]);
    ok(dir, &["peer", "add", "laptop", "--user", "bob"]);
    let row = bobs_row(dir, "phone");
    assert_eq!(row[3..6], ["wireguard", "no", "default"], "{row:?}");
    let (id, v4) = (row[0].clone(), row[6].clone());
    let update = |args: &[&str]| {
        let mut all = vec!["peer", "update", "tablet", "--user", "bob"];
        all.extend_from_slice(args);
        ok(dir, &all)
    };

    // Each field on its own; the rest (addresses, keys, the other fields) stays.
    let out = ok(
        dir,
        &[
            "peer", "update", "phone", "--user", "bob", "--name", "tablet",
        ],
    );
    assert!(out.contains("updated profile 'tablet' of 'bob'"), "{out}");
    let row = bobs_row(dir, "tablet");
    assert_eq!((&row[0], &row[6]), (&id, &v4), "{row:?}");
    update(&["--kind", "mfa"]);
    assert_eq!(bobs_row(dir, "tablet")[3..6], ["mfa", "no", "default"]);
    update(&["--client-to-client", "true"]);
    assert_eq!(bobs_row(dir, "tablet")[3..6], ["mfa", "yes", "default"]);
    update(&["--port", "udp443"]);
    assert_eq!(bobs_row(dir, "tablet")[3..6], ["mfa", "yes", "udp443"]);
    let conf = ok(dir, &["getconf", "tablet", "--user", "bob", "--no-qr"]);
    assert!(conf.contains(":443\n"), "{conf}");
    // By id, several fields at once.
    ok(
        dir,
        &[
            "peer",
            "update",
            &id,
            "--kind",
            "wireguard",
            "--client-to-client",
            "false",
            "--port",
            "udp53",
        ],
    );
    assert_eq!(bobs_row(dir, "tablet")[3..6], ["wireguard", "no", "udp53"]);

    // Bad input: a clear error, nothing changes.
    let before = ok(dir, &["peer", "list"]);
    let long = "x".repeat(65);
    for bad in ["   ", long.as_str()] {
        let err = fails(
            dir,
            &["peer", "update", "tablet", "--user", "bob", "--name", bad],
        );
        assert!(err.contains("profile name"), "{err}");
    }
    let err = fails(
        dir,
        &[
            "peer", "update", "tablet", "--user", "bob", "--name", "laptop",
        ],
    );
    assert!(
        err.contains("already has a profile named 'laptop'"),
        "{err}"
    );
    let err = fails(dir, &["peer", "update", "tablet", "--user", "bob"]);
    assert!(err.contains("nothing to change"), "{err}");
    fails(
        dir,
        &["peer", "update", "nothing", "--user", "bob", "--name", "x"],
    );
    fails(
        dir,
        &[
            "peer", "update", "tablet", "--user", "nobody", "--kind", "mfa",
        ],
    );
    for bad in [
        ["--kind", "ipsec"],
        ["--port", "udp8080"],
        ["--client-to-client", "maybe"],
    ] {
        let mut args = vec!["peer", "update", "tablet", "--user", "bob"];
        args.extend_from_slice(&bad);
        let out = mistborn(dir, &args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{bad:?}: {}", show(&out));
    }
    assert_eq!(
        ok(dir, &["peer", "list"]),
        before,
        "a failed update changed something"
    );
}

#[test]
fn bad_input_fails_clearly_and_changes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    ok(dir, &["init"]);
    let before = (ok(dir, &["user", "list"]), ok(dir, &["peer", "list"]));

    let err = fails(
        dir,
        &["user", "add", "Bad Name", "--password", "long enough"],
    );
    assert!(err.contains("username"), "{err}");
    let err = fails(dir, &["user", "add", "dave", "--password", "short"]);
    assert!(err.contains("password"), "{err}");
    fails(dir, &["user", "add", "admin", "--password", "long enough"]);
    fails(dir, &["user", "remove", "nobody"]);
    let err = fails(dir, &["user", "remove", "admin"]);
    assert!(err.contains("last superuser"), "{err}");
    let err = fails(dir, &["peer", "add", "x", "--public-key", "not-a-key"]);
    assert!(err.contains("key"), "{err}");
    fails(dir, &["peer", "add", "x", "--user", "nobody"]);
    fails(dir, &["peer", "add", "default"]);
    fails(dir, &["peer", "remove", "nothing"]);
    fails(dir, &["getconf", "nothing"]);
    fails(dir, &["token", "revoke", "not-a-uuid"]);
    let err = fails(dir, &["db", "restore", "/nonexistent/backup.json"]);
    assert!(err.contains("/nonexistent/backup.json"), "{err}");

    // Unknown flags and values are rejected by the parser (exit 2) with usage help.
    let out = mistborn(dir, &["peer", "add", "x", "--kind", "ipsec"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));

    assert_eq!(
        (ok(dir, &["user", "list"]), ok(dir, &["peer", "list"])),
        before
    );
}

#[test]
fn config_file_and_environment() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("from-file");
    let config = tmp.path().join("mistborn.toml");
    std::fs::write(
        &config,
        format!(
            "data_dir = \"{}\"\nendpoint = \"vpn.example.org\"\n[wireguard]\nlisten_port = 4500\nsubnet_v4 = \"10.77.0.0/24\"\n",
            data.display()
        ),
    )
    .unwrap();
    let run = |extra: &[(&str, &str)], args: &[&str]| {
        let mut c = Command::new(BIN);
        for var in mistborn_core::config::ENV_VARS {
            c.env_remove(var);
        }
        c.arg("--config")
            .arg(&config)
            .args(args)
            .envs(extra.iter().copied());
        let out = c.output().unwrap();
        assert!(out.status.success(), "{}", show(&out));
        String::from_utf8(out.stdout).unwrap()
    };
    run(&[], &["init"]);
    assert!(data.join("admin-password").exists());
    let conf = run(&[("MISTBORN_WG_PORT", "4600")], &["getconf", "--no-qr"]);
    assert!(conf.contains("Address = 10.77.0.2/32"), "{conf}");
    assert!(
        conf.contains("Endpoint = vpn.example.org:4600"),
        "env overrides the file: {conf}"
    );

    let bad = Command::new(BIN)
        .arg("--config")
        .arg(tmp.path().join("missing.toml"))
        .arg("user")
        .arg("list")
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("missing.toml"));
}

#[test]
fn serve_answers_http_and_stops_on_sigterm() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    // No data plane: as root it would otherwise put a WireGuard interface in the host's namespace.
    let mut child = mistborn(dir, &["serve", "--listen", "127.0.0.1:0"])
        .env("MISTBORN_DATAPLANE", "none")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut seen = String::new();
    let addr = loop {
        let line = lines.next().expect("serve printed its address").unwrap();
        seen.push_str(&line);
        seen.push('\n');
        if let Some(rest) = line.strip_prefix("serving the API on http://") {
            break rest.split('/').next().unwrap().to_string();
        }
    };
    assert!(seen.contains("first start"), "{seen}");
    assert!(seen.contains("data plane: OFF"), "{seen}");

    let token = ok(dir, &["token", "add", "curl"]);
    let mut s = std::net::TcpStream::connect(&addr).unwrap();
    write!(
        s,
        "GET /api/v1/profiles HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nConnection: close\r\n\r\n",
        token.trim()
    )
    .unwrap();
    let mut response = String::new();
    std::io::Read::read_to_string(&mut s, &mut response).unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.contains("\"name\":\"default\""), "{response}");

    let status = crate::support::terminate(&mut child);
    assert!(status.success(), "{status:?}");
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    assert!(rest.iter().any(|l| l.contains("SIGTERM")), "{rest:?}");
}

#[test]
fn second_factor_and_ca_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ok(d, &["init"]);
    ok(d, &["user", "add", "bob", "--password", "a long password"]);
    let out = ok(d, &["auth", "enroll", "bob"]);
    let secret = out
        .lines()
        .find_map(|l| l.strip_prefix("secret: "))
        .unwrap();
    assert!(out.contains("otpauth://totp/"), "{out}");
    let secret = mistborn_core::auth::TotpSecret::from_base32(secret).unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    fails(d, &["auth", "confirm", "bob", "000000"]);
    let out = ok(
        d,
        &["auth", "confirm", "bob", &secret.code_at(now).unwrap()],
    );
    assert_eq!(out.lines().filter(|l| l.len() == 19).count(), 10, "{out}");
    assert!(ok(d, &["auth", "status", "bob"]).contains("confirmed: true"));
    fails(d, &["auth", "enroll", "bob"]);
    ok(d, &["auth", "reset", "bob"]);
    assert!(ok(d, &["auth", "status", "bob"]).contains("confirmed: false"));
    assert!(ok(d, &["auth", "sessions"]).starts_with("ID"));
    let ca = ok(d, &["ca"]);
    assert!(ca.starts_with("-----BEGIN CERTIFICATE-----"), "{ca}");
    assert_eq!(ok(d, &["ca"]), ca, "the CA is stable");
}

#[test]
fn firewall_lists_c2c_policy_and_metrics_from_the_command_line() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    ok(&dir, &["init"]);

    let file = tmp.path().join("block.txt");
    std::fs::write(&file, "# scanners\n192.0.2.0/24\n2001:db8::1\n").unwrap();
    let out = ok(
        &dir,
        &[
            "firewall",
            "list",
            "add",
            "scanners",
            "--file",
            file.to_str().unwrap(),
        ],
    );
    assert!(
        out.contains("added block list 'scanners'") && out.contains("2 entries"),
        "{out}"
    );

    // A malformed line: its number in the error, nothing added.
    let bad = tmp.path().join("bad.txt");
    std::fs::write(&bad, "192.0.2.1\n300.1.2.3\n").unwrap();
    let err = fails(
        &dir,
        &[
            "firewall",
            "list",
            "add",
            "bad",
            "--file",
            bad.to_str().unwrap(),
            "--mode",
            "allow",
        ],
    );
    assert!(err.contains("line 2: '300.1.2.3'"), "{err}");
    fails(
        &dir,
        &[
            "firewall",
            "list",
            "add",
            "x",
            "--url",
            "ftp://example.org/x",
        ],
    );
    let lists = ok(&dir, &["firewall", "lists"]);
    assert!(
        lists.contains("scanners") && !lists.contains("bad"),
        "{lists}"
    );
    assert_eq!(lists.lines().count(), 2, "{lists}");

    let show = ok(&dir, &["firewall", "list", "show", "scanners"]);
    assert!(
        show.contains("mode:         block") && show.contains("entries:      2"),
        "{show}"
    );
    // Changes: a bad file changes nothing, not even the mode given with it.
    let err = fails(
        &dir,
        &[
            "firewall",
            "list",
            "set",
            "scanners",
            "--mode",
            "allow",
            "--file",
            bad.to_str().unwrap(),
        ],
    );
    assert!(err.contains("line 2"), "{err}");
    assert_eq!(ok(&dir, &["firewall", "list", "show", "scanners"]), show);
    let set = ok(
        &dir,
        &[
            "firewall",
            "list",
            "set",
            "scanners",
            "--mode",
            "allow",
            "--enabled",
            "off",
        ],
    );
    assert!(
        set.contains("mode:         allow") && set.contains("enabled:      no"),
        "{set}"
    );
    ok(
        &dir,
        &[
            "firewall",
            "list",
            "set",
            "scanners",
            "--mode",
            "block",
            "--enabled",
            "on",
        ],
    );
    let err = fails(&dir, &["firewall", "list", "refresh", "scanners"]);
    assert!(err.contains("no URL"), "{err}");
    fails(&dir, &["firewall", "list", "show", "nosuch"]);

    // Client-to-client on admin's default profile; the policy the store asks for shows it.
    let out = ok(&dir, &["firewall", "c2c", "default", "on"]);
    assert!(out.contains("client-to-client on"), "{out}");
    let peers = ok(&dir, &["peer", "list"]);
    assert!(peers.lines().nth(1).unwrap().contains(" yes "), "{peers}");
    let conf = tmp.path().join("mistborn.toml");
    std::fs::write(&conf, "[firewall]\nexternal_interface = \"eth9\"\n").unwrap();
    let policy = ok(
        &dir,
        &["--config", conf.to_str().unwrap(), "firewall", "policy"],
    );
    assert!(
        policy.contains("table:              inet mistborn"),
        "{policy}"
    );
    assert!(policy.contains("external interface: eth9"), "{policy}");
    let c2c = policy
        .lines()
        .find(|l| l.starts_with("client-to-client:"))
        .unwrap();
    assert!(c2c.contains("10."), "{policy}");
    assert!(policy.contains("block"), "{policy}");
    ok(&dir, &["firewall", "c2c", "default", "off"]);
    let policy = ok(
        &dir,
        &["--config", conf.to_str().unwrap(), "firewall", "policy"],
    );
    assert!(policy.contains("client-to-client:   -"), "{policy}");

    // History from the store works anywhere (empty here).
    let h = ok(&dir, &["firewall", "metrics", "--history", "--top", "3"]);
    assert!(h.starts_with("0 probe packets in the last 24 h"), "{h}");

    let out = ok(&dir, &["firewall", "list", "rm", "scanners"]);
    assert!(out.contains("deleted list 'scanners'"), "{out}");
    assert_eq!(ok(&dir, &["firewall", "lists"]).lines().count(), 1);
}

#[test]
fn dns_lists_rules_log_and_stats_from_the_command_line() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    ok(&dir, &["init"]);

    // An upload: hosts, plain and adblock lines count; a bad line is reported with its number.
    let file = tmp.path().join("ads.txt");
    std::fs::write(
        &file,
        "# ads\n0.0.0.0 ads.example.com\ntracker.example.net\n||ads2.example.org^\nnot a domain!!\n",
    )
    .unwrap();
    let out = ok(
        &dir,
        &["dns", "add", "ads", "--file", file.to_str().unwrap()],
    );
    assert!(
        out.contains("added list 'ads': 3 entries, 1 invalid lines") && out.contains("line 5:"),
        "{out}"
    );
    let err = fails(&dir, &["dns", "add", "nothing"]);
    assert!(err.contains("exactly one of --url and --file"), "{err}");
    let err = fails(
        &dir,
        &["dns", "add", "ads", "--file", file.to_str().unwrap()],
    );
    assert!(err.contains("'ads' exists"), "{err}");
    let err = fails(&dir, &["dns", "refresh", "ads"]);
    assert!(err.contains("uploaded"), "{err}");

    // A URL list: a garbage download on refresh keeps the last good copy and exits non-zero.
    let url = crate::support::serve_lists(vec![
        (200, "bad.example.com\nworse.example.com\n".into()),
        (200, "<!doctype html>\n<p>rate limited</p>\n".into()),
    ]);
    // The list server is on loopback: refused unless configured.
    let err = fails(&dir, &["dns", "add", "remote", "--url", &url]);
    assert!(err.contains("local address"), "{err}");
    let out = mistborn(&dir, &["dns", "add", "remote", "--url", &url])
        .env("MISTBORN_DOWNLOAD_ALLOW_LOCAL", "true")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", show(&out));
    let out = String::from_utf8_lossy(&out.stdout);
    assert!(out.contains("added list 'remote': 2 entries"), "{out}");
    // (The core also logs the failed refresh as a warning: keep stderr to the error itself.)
    let out = mistborn(&dir, &["dns", "refresh", "remote"])
        .env("MISTBORN_LOG", "error")
        .env("MISTBORN_DOWNLOAD_ALLOW_LOCAL", "true")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{}", show(&out));
    assert!(
        err.starts_with("error: invalid list: 'remote' kept its last good copy")
            && err.contains("line 1"),
        "{err}"
    );
    // Line errors stay with the list; an upload replaces an uploaded copy.
    let errors = ok(&dir, &["dns", "errors", "ads"]);
    assert!(
        errors.starts_with("LINE") && errors.contains("not a domain!!"),
        "{errors}"
    );
    let big = tmp.path().join("big.txt");
    std::fs::write(&big, "one.example.com\nexample.com##.ad\n").unwrap();
    let out = ok(&dir, &["dns", "upload", "mine", big.to_str().unwrap()]);
    assert!(
        out.contains("added list 'mine': 1 entries, 0 invalid lines, 1 not for DNS"),
        "{out}"
    );
    let out = ok(&dir, &["dns", "upload", "mine", big.to_str().unwrap()]);
    assert!(out.starts_with("replaced list 'mine'"), "{out}");
    ok(&dir, &["dns", "remove", "mine"]);
    let err = fails(
        &dir,
        &[
            "dns",
            "add",
            "../../etc/passwd",
            "--file",
            big.to_str().unwrap(),
        ],
    );
    assert!(err.contains("1-64 characters"), "{err}");
    ok(&dir, &["dns", "disable", "ads"]);
    let lists = ok(&dir, &["dns", "lists"]);
    let row = |name: &str| {
        lists
            .lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("no row for {name}: {lists}"))
            .split_whitespace()
            .take(4)
            .collect::<Vec<_>>()
            .join(" ")
    };
    assert_eq!(row("ads "), "ads off 3 1", "{lists}");
    assert_eq!(row("remote "), "remote on 2 0", "{lists}");

    // Rules: names are normalised; a bad name or a duplicate fails and adds nothing.
    ok(&dir, &["dns", "rule", "add", "allow", "ads.example.com"]);
    let out = ok(&dir, &["dns", "rule", "add", "deny", "co.uk"]);
    assert!(out.contains("warning: 'co.uk' is a public suffix"), "{out}");
    let id = out.split(['(', ')']).nth(1).unwrap().to_string();
    ok(&dir, &["dns", "rule", "remove", &id]);
    let out = ok(&dir, &["dns", "rule", "add", "wildcard", "Example.ORG"]);
    assert!(
        out.contains("added wildcard rule for 'example.org'"),
        "{out}"
    );
    let err = fails(&dir, &["dns", "rule", "add", "deny", "bad name!"]);
    assert!(err.contains("not allowed in a domain name"), "{err}");
    fails(&dir, &["dns", "rule", "add", "allow", "ads.example.com"]);
    let rules = ok(&dir, &["dns", "rule", "list"]);
    assert_eq!(rules.lines().count(), 3, "{rules}");
    let id = rules
        .lines()
        .find(|l| l.contains("wildcard"))
        .and_then(|l| l.split_whitespace().next())
        .unwrap()
        .to_string();
    ok(&dir, &["dns", "rule", "remove", &id]);
    let rules = ok(&dir, &["dns", "rule", "list"]);
    assert!(!rules.contains("example.org"), "{rules}");

    // An empty log and statistics still print their headings.
    assert!(ok(&dir, &["dns", "log"]).starts_with("TIME"));
    let stats = ok(&dir, &["dns", "stats", "--hours", "1"]);
    assert!(
        stats.starts_with("0 queries, 0 blocked") && stats.contains("top blocked:"),
        "{stats}"
    );

    ok(&dir, &["dns", "remove", "ads"]);
    let err = fails(&dir, &["dns", "remove", "ads"]);
    assert!(err.contains("not found"), "{err}");
}

#[test]
fn logs_are_plain_text_when_stderr_is_not_a_terminal() {
    let dir = tempfile::tempdir().unwrap();
    ok(dir.path(), &["init"]);
    // Trace level so the command surely logs something (sqlx statements).
    let out = mistborn(dir.path(), &["user", "list"])
        .env("MISTBORN_LOG", "trace")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", show(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("TRACE"),
        "MISTBORN_LOG=trace logged nothing:\n{err}"
    );
    assert!(
        !err.contains('\u{1b}'),
        "colour codes in a log written to a pipe:\n{err}"
    );
}
