//! What the proxy should serve, as plain data.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::config::Config;
use crate::tls::TlsFiles;

/// The body every denial carries (clients and tests match on it).
pub const NOT_AUTHORIZED: &str = "Mistborn: Not authorized";

/// Whether Mistborn runs the proxy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum ProxyMode {
    /// No proxy.
    #[default]
    Off,
    /// Mistborn starts and supervises Caddy.
    Managed,
    /// Mistborn writes the config and reloads an existing Caddy through its admin API.
    External,
}

/// An extra service behind the proxy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceRoute {
    /// Subdomain label: `nextcloud` serves `nextcloud.<suffix>`.
    pub name: String,
    /// Where the service listens.
    pub upstream: SocketAddr,
}

/// `[proxy]` in mistborn.toml.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProxyConfig {
    /// Off, managed or external.
    pub mode: ProxyMode,
    /// The Caddy binary.
    pub caddy_bin: PathBuf,
    /// Plain HTTP port.
    pub http_port: u16,
    /// HTTPS port.
    pub https_port: u16,
    /// Addresses to listen on; empty means the server's tunnel addresses.
    pub bind: Vec<IpAddr>,
    /// Caddy's admin endpoint: `unix//path` (default: a socket in the data dir) or `host:port`.
    pub admin: Option<String>,
    /// Extra services (until the extras catalog manages them).
    pub services: Vec<ServiceRoute>,
}

impl Default for ProxyConfig {
    fn default() -> Self {
        Self {
            mode: ProxyMode::Off,
            caddy_bin: PathBuf::from("caddy"),
            http_port: 80,
            https_port: 443,
            bind: Vec::new(),
            admin: None,
            services: Vec::new(),
        }
    }
}

impl ProxyConfig {
    /// Checks the service names: each one a DNS label (it becomes a Caddyfile site address and a
    /// certificate name, so nothing else may get through), not `home` or `dns`, and unique.
    pub fn validate(&self) -> crate::error::Result<()> {
        let mut seen = std::collections::BTreeSet::new();
        for s in &self.services {
            crate::config::check_dns_label("proxy.services name", &s.name)?;
            let name = s.name.to_ascii_lowercase();
            if matches!(name.as_str(), "home" | "dns") {
                return Err(crate::error::Error::Config(format!(
                    "proxy.services name {:?} is reserved for Mistborn's own sites",
                    s.name
                )));
            }
            if !seen.insert(name) {
                return Err(crate::error::Error::Config(format!(
                    "proxy.services names {:?} twice",
                    s.name
                )));
            }
        }
        Ok(())
    }
}

/// One site.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Site {
    /// Full host name.
    pub host: String,
    /// Where requests go, in Caddy's upstream syntax (`host:port` or `unix//path`).
    pub upstream: String,
    /// Whether forward-auth gates it (every service; not `home`, which is the login page).
    pub gated: bool,
}

/// The whole proxy configuration, ready to render.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyPlan {
    /// Listen addresses.
    pub bind: Vec<IpAddr>,
    /// HTTP port.
    pub http_port: u16,
    /// HTTPS port.
    pub https_port: u16,
    /// Admin endpoint in Caddy syntax.
    pub admin: String,
    /// Caddy's own storage (never the system's).
    pub storage_dir: PathBuf,
    /// Mistborn's proxy socket in Caddy's syntax (`unix//path`), for forward-auth and `home`: only
    /// over it does Mistborn believe the client address the proxy forwards.
    pub auth_upstream: String,
    /// Certificate files.
    pub tls: TlsFiles,
    /// Sites in a stable order.
    pub sites: Vec<Site>,
}

/// The plan for `config` with the certificates in `tls`.
pub fn plan(config: &Config, tls: TlsFiles, server_addresses: [IpAddr; 2]) -> ProxyPlan {
    let p = &config.proxy;
    let suffix = &config.dns_suffix;
    let bind = if p.bind.is_empty() {
        server_addresses.to_vec()
    } else {
        p.bind.clone()
    };
    let admin = p.admin.clone().unwrap_or_else(|| {
        format!(
            "unix/{}",
            config.data_dir.join("caddy").join("admin.sock").display()
        )
    });
    let auth_upstream = format!("unix/{}", config.effective_http_socket().display());
    let mut sites = vec![Site {
        host: format!("home.{suffix}"),
        upstream: auth_upstream.clone(),
        gated: false,
    }];
    let mut services = p.services.clone();
    services.sort_by(|a, b| a.name.cmp(&b.name));
    sites.extend(services.into_iter().map(|s| Site {
        host: format!("{}.{suffix}", s.name),
        upstream: s.upstream.to_string(),
        gated: true,
    }));
    ProxyPlan {
        bind,
        http_port: p.http_port,
        https_port: p.https_port,
        admin,
        storage_dir: config.data_dir.join("caddy").join("data"),
        auth_upstream,
        tls,
        sites,
    }
}
