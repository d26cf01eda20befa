//! The `[firewall]` section of the configuration.

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// How the firewall is set up.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FirewallConfig {
    /// Whether Mistborn manages the `inet mistborn` nftables table at all.
    pub enabled: bool,
    /// Turn IPv4 and IPv6 forwarding on in the firewall's network namespace once the table is
    /// in force (tunnel clients need it to reach the internet). Off: left as the system has it.
    pub ip_forwarding: bool,
    /// The interface facing the internet; empty means the interface of the default route
    /// (looked up over netlink at every full apply).
    pub external_interface: Option<String>,
    /// A source (address or network) that may reach SSH from outside the tunnel, e.g. the
    /// installer's address.
    pub admin_source: Option<IpNet>,
    /// The SSH port.
    pub ssh_port: u16,
    /// TCP ports of Mistborn's web front (reverse proxy, API) reachable from the tunnel.
    pub web_ports: Vec<u16>,
    /// Interfaces (names or `prefix*` patterns) on which the alternate ports (UDP 53 and 443 of
    /// profiles that dial them) lead to WireGuard. Empty (the default): every interface but the
    /// tunnel, loopback and container bridges, e.g. a LAN beside the WAN. Only packets addressed
    /// to this host are redirected; name interfaces here when the host serves DNS or UDP 443 on
    /// some of them.
    pub alternate_port_interfaces: Vec<String>,
    /// Name patterns of container-engine bridges (`*` wildcard at the end, as nft takes them).
    pub container_bridges: Vec<String>,
    /// The uid the resolver runs as: when set, DNS (53, 853) may leave the host only from it.
    pub resolver_uid: Option<u32>,
    /// How often Coppercloud lists with a URL are downloaded again, in seconds (0 = never).
    pub coppercloud_refresh_secs: u64,
    /// How often MFA sessions are re-checked against the gate set (expiry), in seconds.
    pub session_check_secs: u64,
    /// How often the probe counters are sampled into the metrics history, in seconds (shorter
    /// than the per-source sets' 10 minute idle timeout, so nothing expires unsampled).
    pub metrics_sample_secs: u64,
    /// Fail closed: no WireGuard peer is configured while the table is not in force (no MFA
    /// gating, no isolation). Off: peers come up regardless, and the status says the firewall
    /// is off.
    pub fail_closed: bool,
}

impl Default for FirewallConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            ip_forwarding: true,
            external_interface: None,
            admin_source: None,
            ssh_port: 22,
            alternate_port_interfaces: Vec::new(),
            web_ports: vec![80, 443],
            container_bridges: vec![
                "docker0".into(),
                "br-*".into(),
                "podman*".into(),
                "cni-podman*".into(),
            ],
            resolver_uid: None,
            coppercloud_refresh_secs: 86_400,
            session_check_secs: 30,
            fail_closed: true,
            metrics_sample_secs: 60,
        }
    }
}

fn valid_ifname(name: &str) -> bool {
    let body = name.strip_suffix('*').unwrap_or(name);
    !body.is_empty()
        && name.len() <= 15
        && body
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

impl FirewallConfig {
    /// Checks what serde cannot; interface names end up inside nft text, so they are strict.
    pub fn validate(&self) -> Result<()> {
        if let Some(i) = &self.external_interface
            && (!valid_ifname(i) || i.ends_with('*'))
        {
            return Err(Error::Config(format!(
                "firewall.external_interface '{i}' must be 1-15 characters of letters, digits, '-', '_', '.'"
            )));
        }
        if let Some(b) = self.container_bridges.iter().find(|b| !valid_ifname(b)) {
            return Err(Error::Config(format!(
                "firewall.container_bridges: '{b}' is not an interface name or a 'prefix*' pattern"
            )));
        }
        if let Some(i) = self
            .alternate_port_interfaces
            .iter()
            .find(|i| !valid_ifname(i))
        {
            return Err(Error::Config(format!(
                "firewall.alternate_port_interfaces: '{i}' is not an interface name or a 'prefix*' pattern"
            )));
        }
        if !(1..=300).contains(&self.metrics_sample_secs) {
            return Err(Error::Config(
                "firewall.metrics_sample_secs must be 1-300 (the probe sets forget idle sources after 10 minutes)".into(),
            ));
        }
        if self.web_ports.contains(&0) || self.ssh_port == 0 {
            return Err(Error::Config("firewall ports must be 1-65535".into()));
        }
        Ok(())
    }
}
