//! IP forwarding for the gateway: a tunnel client reaches the internet only when the host forwards
//! its packets, and forwarding is a per-network-namespace setting that is off in a fresh one.
//!
//! The firewall reconciler turns it on (IPv4 and IPv6) once its table is in force: the table's
//! forward chain drops by default, so forwarding lets through exactly what the policy allows. It
//! writes `/proc/sys` from its own thread, which has entered the firewall's network namespace:
//! `/proc/sys/net` resolves to the namespace of the thread that opens it, so the host's own
//! namespace is never touched when the plane runs in another one.
//!
//! It is not turned off again when the daemon stops, for the same reason the table stays: a
//! restart or upgrade must be invisible to clients, and the table still filters what is
//! forwarded while the daemon is down.

use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Whether this namespace forwards packets, as the firewall left it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ForwardingStatus {
    /// `net.ipv4.ip_forward` is 1.
    pub ipv4: bool,
    /// `net.ipv6.conf.all.forwarding` is 1.
    pub ipv6: bool,
    /// Interfaces whose `accept_ra` was raised from 1 to 2 so they keep their router
    /// advertisements (and SLAAC default route) while forwarding.
    pub accept_ra_raised: Vec<String>,
    /// Why one of them is off (not managed by configuration, no permission, no IPv6).
    pub reason: Option<String>,
}

/// The `/proc/sys` tree the settings are read from and written to (a directory in tests).
#[derive(Debug, Clone)]
pub(crate) struct Sysctl {
    root: PathBuf,
}

impl Default for Sysctl {
    fn default() -> Self {
        Self::at("/proc/sys")
    }
}

const IPV4: &str = "net/ipv4/ip_forward";
const IPV6: &str = "net/ipv6/conf/all/forwarding";

fn accept_ra(interface: &str) -> String {
    format!("net/ipv6/conf/{interface}/accept_ra")
}

impl Sysctl {
    pub(crate) fn at(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    fn path(&self, key: &str) -> PathBuf {
        self.root.join(key)
    }

    fn read(&self, key: &str) -> io::Result<String> {
        std::fs::read_to_string(self.path(key)).map(|s| s.trim().to_string())
    }

    fn write(&self, key: &str, value: &str) -> io::Result<()> {
        std::fs::write(self.path(key), value)
    }

    fn exists(&self, key: &str) -> bool {
        self.path(key).exists()
    }

    fn is_on(&self, key: &str) -> bool {
        self.read(key).is_ok_and(|v| v == "1")
    }

    /// Sets `key` to "1" unless it is already; says why it could not.
    fn turn_on(&self, key: &str) -> std::result::Result<(), String> {
        if self.is_on(key) {
            return Ok(());
        }
        self.write(key, "1")
            .map_err(|e| describe(&self.path(key), &e))
    }

    /// The current state, touching nothing.
    pub(crate) fn observe(&self) -> ForwardingStatus {
        ForwardingStatus {
            ipv4: self.is_on(IPV4),
            ipv6: self.is_on(IPV6),
            accept_ra_raised: Vec::new(),
            reason: None,
        }
    }

    /// Turns IPv4 and IPv6 forwarding on. `ra_interfaces` are the interfaces that may learn
    /// their IPv6 default route from router advertisements (the external and the IPv6
    /// default-route interface): see [`Sysctl::keep_router_advertisements`].
    pub(crate) fn enable(&self, ra_interfaces: &[String]) -> ForwardingStatus {
        let mut problems = Vec::new();
        if let Err(e) = self.turn_on(IPV4) {
            problems.push(format!("cannot turn IPv4 forwarding on: {e}"));
        }
        let mut raised = Vec::new();
        if !self.exists(IPV6) {
            problems.push(format!(
                "IPv6 forwarding stays off: {} does not exist (IPv6 is disabled on this host)",
                self.path(IPV6).display()
            ));
        } else {
            match self.keep_router_advertisements(ra_interfaces) {
                Ok(r) => {
                    raised = r;
                    if let Err(e) = self.turn_on(IPV6) {
                        problems.push(format!("cannot turn IPv6 forwarding on: {e}"));
                    }
                }
                Err(e) => problems.push(format!("IPv6 forwarding stays off: {e}")),
            }
        }
        ForwardingStatus {
            ipv4: self.is_on(IPV4),
            ipv6: self.is_on(IPV6),
            accept_ra_raised: raised,
            reason: (!problems.is_empty()).then(|| problems.join("; ")),
        }
    }

    /// With `net.ipv6.conf.all.forwarding = 1` the kernel ignores router advertisements on
    /// every interface whose `accept_ra` is 1 (the default: "accept unless forwarding"), so a
    /// host whose IPv6 default route comes from SLAAC would lose it when the route's lifetime
    /// runs out. `accept_ra = 2` accepts them while forwarding: raise 1 to 2 before turning
    /// forwarding on. 0 (the admin refuses RAs) and 2 stay as they are. Returns the interfaces
    /// raised; an error means forwarding must stay off.
    fn keep_router_advertisements(
        &self,
        interfaces: &[String],
    ) -> std::result::Result<Vec<String>, String> {
        let mut raised = Vec::new();
        for i in interfaces {
            let key = accept_ra(i);
            match self.read(&key) {
                Ok(v) if v == "1" => {
                    self.write(&key, "2").map_err(|e| {
                        format!(
                            "cannot set accept_ra = 2 on {i} (needed to keep its router advertisements): {}",
                            describe(&self.path(&key), &e)
                        )
                    })?;
                    raised.push(i.clone());
                }
                // No IPv6 on that interface (or it is gone): no advertisements to keep.
                Ok(_) | Err(_) => {}
            }
        }
        Ok(raised)
    }
}

fn describe(path: &Path, e: &io::Error) -> String {
    let hint = match e.kind() {
        io::ErrorKind::PermissionDenied => {
            " (needs root or CAP_NET_ADMIN, and /proc/sys mounted writable)"
        }
        io::ErrorKind::ReadOnlyFilesystem => {
            " (/proc/sys is mounted read-only, as in many containers: enable forwarding on the host or in the container's settings)"
        }
        _ => "",
    };
    format!("writing {}: {e}{hint}", path.display())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn tree(ipv6: bool, interfaces: &[(&str, &str)]) -> (tempfile::TempDir, Sysctl) {
        let dir = tempfile::tempdir().unwrap();
        let put = |key: &str, v: &str| {
            let p = dir.path().join(key);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, format!("{v}\n")).unwrap();
        };
        put(IPV4, "0");
        if ipv6 {
            put(IPV6, "0");
            for (i, ra) in interfaces {
                put(&accept_ra(i), ra);
            }
        }
        let s = Sysctl::at(dir.path());
        (dir, s)
    }

    #[test]
    fn enables_both_and_raises_accept_ra_1_only() {
        let (_d, s) = tree(true, &[("eth0", "1"), ("eth1", "0"), ("eth2", "2")]);
        let ifs: Vec<String> = ["eth0", "eth1", "eth2", "gone0"].map(String::from).into();
        let st = s.enable(&ifs);
        assert_eq!(
            st,
            ForwardingStatus {
                ipv4: true,
                ipv6: true,
                accept_ra_raised: vec!["eth0".into()],
                reason: None
            }
        );
        assert_eq!(s.read(&accept_ra("eth0")).unwrap(), "2");
        assert_eq!(s.read(&accept_ra("eth1")).unwrap(), "0");
        assert_eq!(s.read(&accept_ra("eth2")).unwrap(), "2");
        // Idempotent: nothing left to raise.
        assert!(s.enable(&ifs).accept_ra_raised.is_empty());
    }

    #[test]
    fn without_ipv6_only_ipv4_and_says_why() {
        let (_d, s) = tree(false, &[]);
        let st = s.enable(&["eth0".into()]);
        assert!(st.ipv4 && !st.ipv6, "{st:?}");
        assert!(
            st.reason.as_deref().unwrap().contains("IPv6 is disabled"),
            "{st:?}"
        );
    }

    #[test]
    fn observe_touches_nothing() {
        let (d, s) = tree(true, &[("eth0", "1")]);
        let st = s.observe();
        assert!(!st.ipv4 && !st.ipv6, "{st:?}");
        assert_eq!(std::fs::read_to_string(d.path().join(IPV4)).unwrap(), "0\n");
    }

    #[test]
    fn a_write_that_fails_is_reported() {
        // A directory where the setting should be: the write fails, even for root.
        let (d, s) = tree(true, &[("eth0", "1")]);
        std::fs::remove_file(d.path().join(IPV4)).unwrap();
        std::fs::create_dir(d.path().join(IPV4)).unwrap();
        let st = s.enable(&["eth0".into()]);
        assert!(!st.ipv4 && st.ipv6, "{st:?}");
        let r = st.reason.unwrap();
        assert!(r.contains("cannot turn IPv4 forwarding on: writing"), "{r}");
    }
}
