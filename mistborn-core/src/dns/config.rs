//! The `[dns]` section of `mistborn.toml`.

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// How a blocked name is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum BlockedAnswer {
    /// `0.0.0.0` for A, `::` for AAAA, no data for other types: clients fail fast, no retries.
    #[default]
    Null,
    /// NXDOMAIN for every type.
    Nxdomain,
}

/// Transport to an upstream resolver.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UpstreamProtocol {
    /// DNS-over-TLS (RFC 7858).
    Tls,
    /// DNS-over-HTTPS (RFC 8484).
    Https,
    /// Plain DNS over UDP, with TCP for truncated answers. Unencrypted: only when configured.
    Udp,
    /// Plain DNS over TCP. Unencrypted: only when configured.
    Tcp,
}

/// One upstream resolver.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpstreamConfig {
    /// Transport.
    pub protocol: UpstreamProtocol,
    /// Address and port (853 for DoT, 443 for DoH, 53 for plain).
    pub address: SocketAddr,
    /// Name in the server's certificate (required for TLS and HTTPS).
    #[serde(default)]
    pub tls_name: Option<String>,
    /// DoH path, `/dns-query` when absent.
    #[serde(default)]
    pub path: Option<String>,
}

impl UpstreamConfig {
    fn encrypted(protocol: UpstreamProtocol, address: &str, name: &str) -> Self {
        Self {
            protocol,
            address: address.parse().expect("valid literal"),
            tls_name: Some(name.into()),
            path: None,
        }
    }
}

/// The resolver's settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DnsConfig {
    /// Whether the daemon serves DNS.
    pub enabled: bool,
    /// UDP+TCP addresses to serve on; empty means the server's tunnel addresses, port 53.
    pub listen: Vec<SocketAddr>,
    /// Upstream resolvers; encrypted (DoT, DoH) by default.
    pub upstreams: Vec<UpstreamConfig>,
    /// Extra CA certificates (PEM) to trust for upstream TLS, e.g. a self-hosted resolver's CA.
    pub upstream_ca_file: Option<PathBuf>,
    /// Answer for blocked names.
    pub blocked_answer: BlockedAnswer,
    /// TTL of blocked answers, seconds.
    pub blocked_ttl: u32,
    /// TTL of local-zone answers, seconds.
    pub local_ttl: u32,
    /// Number of upstream answers cached (each kept for its TTL).
    pub cache_size: u64,
    /// Extra service subdomains answered in the local zone besides `home` and `dns`.
    pub services: Vec<String>,
    /// Whether queries are logged.
    pub log_queries: bool,
    /// Query log rows older than this many days are deleted.
    pub log_retention_days: u32,
    /// At most this many query log rows are kept.
    pub log_max_rows: u64,
    /// How often subscribed lists are downloaded again, hours.
    pub list_refresh_hours: u32,
}

impl Default for DnsConfig {
    fn default() -> Self {
        use UpstreamProtocol::{Https, Tls};
        Self {
            enabled: true,
            listen: Vec::new(),
            upstreams: vec![
                UpstreamConfig::encrypted(Tls, "9.9.9.9:853", "dns.quad9.net"),
                UpstreamConfig::encrypted(Tls, "1.1.1.1:853", "cloudflare-dns.com"),
                UpstreamConfig::encrypted(Https, "1.1.1.1:443", "cloudflare-dns.com"),
            ],
            upstream_ca_file: None,
            blocked_answer: BlockedAnswer::Null,
            blocked_ttl: 60,
            local_ttl: 300,
            cache_size: 10_000,
            services: Vec::new(),
            log_queries: true,
            log_retention_days: 7,
            log_max_rows: 1_000_000,
            list_refresh_hours: 24,
        }
    }
}

impl DnsConfig {
    /// Checks what serde cannot.
    pub fn validate(&self) -> Result<()> {
        for u in &self.upstreams {
            let needs_name = matches!(u.protocol, UpstreamProtocol::Tls | UpstreamProtocol::Https);
            if needs_name && u.tls_name.as_deref().unwrap_or("").is_empty() {
                return Err(Error::Config(format!(
                    "dns.upstreams: {} over {:?} needs tls_name (the name in its certificate)",
                    u.address, u.protocol
                )));
            }
        }
        for s in &self.services {
            if s.is_empty() || s.contains('.') || super::lists::domain_hash(s).is_err() {
                return Err(Error::Config(format!(
                    "dns.services: '{s}' must be a single DNS label"
                )));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::config::Config;

    use super::*;

    #[test]
    fn dns_section_parses_and_defaults_are_encrypted() {
        let c = Config::default();
        assert!(
            c.dns
                .upstreams
                .iter()
                .all(|u| matches!(u.protocol, UpstreamProtocol::Tls | UpstreamProtocol::Https))
        );
        let c = Config::from_toml(
            "[dns]\nlisten = [\"127.0.0.1:5353\"]\nblocked_answer = \"nxdomain\"\nservices = [\"nextcloud\"]\n\
             [[dns.upstreams]]\nprotocol = \"udp\"\naddress = \"192.0.2.53:53\"\n",
        )
        .expect("parse");
        assert_eq!(c.dns.blocked_answer, BlockedAnswer::Nxdomain);
        assert_eq!(c.dns.upstreams.len(), 1);
        assert_eq!(c.dns.upstreams[0].protocol, UpstreamProtocol::Udp);
        assert_eq!(c.dns.log_retention_days, 7, "unset fields keep defaults");
    }

    #[test]
    fn bad_dns_settings_are_reported() {
        let err = Config::from_toml(
            "[[dns.upstreams]]\nprotocol = \"tls\"\naddress = \"192.0.2.53:853\"\n",
        )
        .expect_err("tls without a name");
        assert!(err.to_string().contains("tls_name"), "{err}");
        let err = Config::from_toml("[dns]\nservices = [\"a.b\"]\n").expect_err("dotted service");
        assert!(err.to_string().contains("single DNS label"), "{err}");
        assert!(Config::from_toml("[dns]\nunknown = 1\n").is_err());
    }
}
