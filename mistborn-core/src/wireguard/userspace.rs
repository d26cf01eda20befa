//! The userspace implementation's process: found on PATH (or `WG_USERSPACE_IMPLEMENTATION`), started
//! in the foreground as our child so we know its PID and reap it (wireguard-go daemonizes without
//! `-f`, and a daemonized child becomes a zombie where PID 1 does not reap). It runs in its own
//! process group, so a signal to the daemon's group (Ctrl-C in a terminal, a supervisor killing
//! the group) does not take the tunnel down: a clean stop of the daemon leaves it running
//! ([`UserspaceProcess::detach`]) for the next start to adopt, unless it is stopped on purpose.
//!
//! Its UAPI socket lives in `/run/wireguard/<ifname>.sock`, a directory shared by every network
//! namespace, so the interface name must be unique on the host: a socket that answers while no
//! link of that name exists here belongs to another namespace and is refused.

use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::netlink::{self, LinkKind};
use crate::error::{Error, Result};

const START_TIMEOUT: Duration = Duration::from_secs(5);

/// Where the UAPI socket of `name` is (wireguard-control looks in /var/run/wireguard first).
pub(crate) fn socket_path(name: &str) -> PathBuf {
    let dir = if Path::new("/var/run/wireguard").exists() {
        "/var/run/wireguard"
    } else {
        "/run/wireguard"
    };
    Path::new(dir).join(format!("{name}.sock"))
}

/// Whether a UAPI server answers for `name`.
pub(crate) fn socket_answers(name: &str) -> bool {
    UnixStream::connect(socket_path(name)).is_ok()
}

/// The userspace program to run.
fn implementation() -> String {
    std::env::var("WG_USERSPACE_IMPLEMENTATION")
        .or_else(|_| std::env::var("WG_QUICK_USERSPACE_IMPLEMENTATION"))
        .unwrap_or_else(|_| "wireguard-go".into())
}

/// `program` resolved on PATH, when it is an executable file.
fn find_executable(program: &str) -> Option<PathBuf> {
    let is_exe = |p: &Path| {
        p.metadata()
            .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    if program.contains('/') {
        let p = PathBuf::from(program);
        return is_exe(&p).then_some(p);
    }
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|d| d.join(program))
        .find(|p| is_exe(p))
}

/// Checks what starting a userspace interface needs: a TUN device we may open and the program.
pub(crate) fn preflight() -> Result<PathBuf> {
    match std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/net/tun")
    {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
            return Err(Error::DataPlane(
                "cannot open /dev/net/tun: the userspace data plane needs root (or CAP_NET_ADMIN)"
                    .into(),
            ));
        }
        Err(e) => {
            return Err(Error::DataPlane(format!(
                "cannot open /dev/net/tun ({e}): this system offers no TUN device"
            )));
        }
    }
    let program = implementation();
    find_executable(&program).ok_or_else(|| {
        Error::DataPlane(format!(
            "'{program}' not found on PATH: install wireguard-go (apt-get install wireguard-go) or set WG_USERSPACE_IMPLEMENTATION"
        ))
    })
}

/// A userspace WireGuard process we started.
#[derive(Debug)]
pub(crate) struct UserspaceProcess {
    child: Child,
    name: String,
    log: PathBuf,
    /// Left running on drop (see [`UserspaceProcess::detach`]).
    detached: bool,
}

fn log_tail(path: &Path) -> String {
    let mut s = String::new();
    if let Ok(mut f) = std::fs::File::open(path) {
        let _ = f.read_to_string(&mut s);
    }
    let lines: Vec<&str> = s.lines().rev().take(5).collect();
    lines.into_iter().rev().collect::<Vec<_>>().join(" | ")
}

impl UserspaceProcess {
    /// Starts `program -f name` in the current network namespace and waits for its UAPI socket
    /// and its link.
    pub(crate) fn start(program: &Path, name: &str, log_dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(log_dir).map_err(|e| Error::io(log_dir, e))?;
        let log = log_dir.join(format!("wireguard-go-{name}.log"));
        let out = std::fs::File::create(&log).map_err(|e| Error::io(&log, e))?;
        let err = out.try_clone().map_err(|e| Error::io(&log, e))?;
        let child = Command::new(program)
            .arg("-f")
            .arg(name)
            .env("WG_PROCESS_FOREGROUND", "1")
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .map_err(|e| Error::DataPlane(format!("cannot start {}: {e}", program.display())))?;
        let mut p = Self {
            child,
            name: name.to_string(),
            log,
            detached: false,
        };
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(status) = p.child.try_wait().ok().flatten() {
                return Err(Error::DataPlane(format!(
                    "{} {name} exited at start ({status}): {}",
                    program.display(),
                    log_tail(&p.log)
                )));
            }
            if socket_answers(name)
                && matches!(netlink::get_link(name), Ok(Some(l)) if l.kind == LinkKind::Tun)
            {
                tracing::info!(
                    pid = p.child.id(),
                    interface = name,
                    "started {}",
                    program.display()
                );
                return Ok(p);
            }
            if Instant::now() > deadline {
                p.stop();
                return Err(Error::DataPlane(format!(
                    "{} {name} did not open its UAPI socket within {START_TIMEOUT:?}: {}",
                    program.display(),
                    log_tail(&p.log)
                )));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Fails when the process has exited (and reaps it).
    pub(crate) fn check(&mut self) -> Result<()> {
        match self.child.try_wait() {
            Ok(None) => Ok(()),
            Ok(Some(status)) => Err(Error::DataPlane(format!(
                "wireguard-go exited ({status}): {}",
                log_tail(&self.log)
            ))),
            Err(e) => Err(Error::DataPlane(format!("cannot watch wireguard-go: {e}"))),
        }
    }

    /// Stops and reaps the process: SIGTERM first so it removes its link and UAPI socket, SIGKILL
    /// if it does not exit within a second (then the stale socket is removed here).
    pub(crate) fn stop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let pid = rustix::process::Pid::from_child(&self.child);
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
            let deadline = Instant::now() + Duration::from_secs(1);
            while matches!(self.child.try_wait(), Ok(None)) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(5));
            }
            if let Ok(None) = self.child.try_wait() {
                let _ = self.child.kill();
            }
        }
        let _ = self.child.wait();
        if !socket_answers(&self.name) {
            let _ = std::fs::remove_file(socket_path(&self.name));
        }
    }

    /// Lets the process run on without us: it keeps the interface, its peers and their sessions
    /// while the daemon restarts, and the next start adopts it through its UAPI socket. (Once we
    /// exit it is reparented; it was never waited for, which is fine for a live process.)
    pub(crate) fn detach(mut self) {
        tracing::info!(
            pid = self.child.id(),
            interface = %self.name,
            "leaving the userspace WireGuard running for the next start to adopt"
        );
        self.detached = true;
    }
}

impl Drop for UserspaceProcess {
    fn drop(&mut self) {
        if !self.detached {
            self.stop();
        }
    }
}
