//! DNS sockets handed over by systemd socket activation (`LISTEN_PID`, `LISTEN_FDS`,
//! `LISTEN_FDNAMES`, as sd_listen_fds(3) describes). A socket unit (`mistborn-dns.socket`) owns the
//! sockets across a restart of the daemon, so a query that arrives while the daemon restarts waits
//! in the socket's buffer and is answered by the next process instead of being refused.
//!
//! The descriptors are taken once per process and kept for its lifetime; each server start gets
//! duplicates of the ones bound to the address it serves, so a resolver restart inside the process
//! finds them again.

use std::net::SocketAddr;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::sync::OnceLock;

use rustix::io::{FdFlags, fcntl_setfd};
use rustix::net::SocketType;
use tokio::net::{TcpListener, UdpSocket};

/// sd_listen_fds(3): passed descriptors start at 3.
const FIRST_FD: RawFd = 3;

/// One passed socket.
#[derive(Debug)]
struct Inherited {
    fd: OwnedFd,
    datagram: bool,
    addr: SocketAddr,
}

/// Takes the sockets a service manager passed to this process for DNS (if any) and marks them
/// close-on-exec; returns how many. The resolver does this when it starts, but a program that
/// starts child processes before (the data plane starts wireguard-go) must call it first, or the
/// children inherit the sockets and keep the port bound after the socket unit is gone.
pub fn take_passed_sockets() -> usize {
    all().len()
}

/// The passed sockets of this process (empty when none were passed to it).
fn all() -> &'static [Inherited] {
    static FDS: OnceLock<Vec<Inherited>> = OnceLock::new();
    FDS.get_or_init(|| take(|k| std::env::var(k).ok()))
}

/// Takes the descriptors the environment passes to this process. Names other than `dns` (when
/// names are given) are left alone: they belong to someone else.
fn take(env: impl Fn(&str) -> Option<String>) -> Vec<Inherited> {
    let for_us = env("LISTEN_PID")
        .and_then(|p| p.parse::<u32>().ok())
        .is_some_and(|p| p == std::process::id());
    let count = env("LISTEN_FDS").and_then(|n| n.parse::<RawFd>().ok());
    let (true, Some(count)) = (for_us, count) else {
        return Vec::new();
    };
    let names: Vec<String> = env("LISTEN_FDNAMES")
        .map(|n| n.split(':').map(str::to_owned).collect())
        .unwrap_or_default();
    let mut out = Vec::new();
    for i in 0..count.clamp(0, 64) {
        if names.get(i as usize).is_some_and(|n| n != "dns") {
            continue;
        }
        // SAFETY: under the socket activation protocol (LISTEN_PID is this process, checked
        // above) descriptors 3..3+LISTEN_FDS are open and owned by this process, and nothing
        // else in it takes them: this runs once (OnceLock) and only for names meant for DNS.
        let fd = unsafe { OwnedFd::from_raw_fd(FIRST_FD + i) };
        let kind = rustix::net::sockopt::socket_type(&fd);
        let addr = rustix::net::getsockname(&fd)
            .ok()
            .and_then(|a| SocketAddr::try_from(a).ok());
        let (Ok(kind), Some(addr)) = (kind, addr) else {
            tracing::warn!(
                fd = FIRST_FD + i,
                "passed descriptor is not an IP socket; ignored"
            );
            continue;
        };
        // Children (wireguard-go, Caddy) must not inherit them.
        if let Err(e) = fcntl_setfd(&fd, FdFlags::CLOEXEC) {
            tracing::warn!(fd = FIRST_FD + i, error = %e, "passed socket: cannot set close-on-exec");
        }
        let datagram = kind == SocketType::DGRAM;
        tracing::info!(%addr, udp = datagram, "DNS socket passed by the service manager");
        out.push(Inherited { fd, datagram, addr });
    }
    out
}

fn find(addr: SocketAddr, datagram: bool) -> Option<&'static Inherited> {
    all().iter().find(|s| {
        s.datagram == datagram && s.addr.ip() == addr.ip() && s.addr.port() == addr.port()
    })
}

/// A duplicate of the passed UDP socket bound to `addr`, if there is one.
pub(super) fn udp(addr: SocketAddr) -> std::io::Result<Option<UdpSocket>> {
    let Some(s) = find(addr, true) else {
        return Ok(None);
    };
    let socket = std::net::UdpSocket::from(s.fd.try_clone()?);
    socket.set_nonblocking(true)?;
    UdpSocket::from_std(socket).map(Some)
}

/// A duplicate of the passed TCP listener bound to `addr`, if there is one.
pub(super) fn tcp(addr: SocketAddr) -> std::io::Result<Option<TcpListener>> {
    let Some(s) = find(addr, false) else {
        return Ok(None);
    };
    let socket = std::net::TcpListener::from(s.fd.try_clone()?);
    socket.set_nonblocking(true)?;
    TcpListener::from_std(socket).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_is_taken_for_another_process() {
        let env = |k: &str| match k {
            "LISTEN_PID" => Some("1".into()),
            "LISTEN_FDS" => Some("2".into()),
            _ => None,
        };
        assert!(take(env).is_empty());
        assert!(take(|_| None).is_empty());
    }
}
