//! Mistborn's configuration: a `mistborn.toml` file, then `MISTBORN_*` environment overrides.
//! The core takes a finished [`Config`]; reading files and the environment happens here, once.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use ipnet::{Ipv4Net, Ipv6Net};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Which WireGuard implementation carries the tunnel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum DataplaneBackend {
    /// Kernel module when present, else a userspace implementation (wireguard-go, boringtun).
    #[default]
    Auto,
    /// The Linux kernel module.
    Kernel,
    /// A userspace implementation serving the UAPI socket in /run/wireguard.
    Userspace,
    /// No data plane: API, UI and DNS only (no root needed).
    None,
}

impl std::str::FromStr for DataplaneBackend {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "auto" => Ok(Self::Auto),
            "kernel" => Ok(Self::Kernel),
            "userspace" => Ok(Self::Userspace),
            "none" => Ok(Self::None),
            other => Err(Error::invalid(
                "dataplane",
                format!("'{other}' is not one of auto, kernel, userspace, none"),
            )),
        }
    }
}

/// The WireGuard server side.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WireGuardConfig {
    /// Interface name (at most 15 characters, unique on the host).
    pub interface: String,
    /// UDP port the server listens on.
    pub listen_port: u16,
    /// IPv4 tunnel subnet; the server takes the first host address.
    pub subnet_v4: Ipv4Net,
    /// IPv6 (ULA) tunnel subnet; the server takes `::1`.
    pub subnet_v6: Ipv6Net,
    /// Kernel, userspace, auto or none.
    pub backend: DataplaneBackend,
    /// How often peer statistics are polled and the interface re-checked, in milliseconds.
    pub status_interval_ms: u64,
    /// Leave the interface (and a wireguard-go the daemon started) up when the daemon stops, so
    /// a restart or upgrade does not cost clients a new handshake; the next start adopts and
    /// reconciles it. `false` takes it down at stop.
    pub keep_on_stop: bool,
}

impl Default for WireGuardConfig {
    fn default() -> Self {
        Self {
            interface: "mistborn0".into(),
            listen_port: 51820,
            subnet_v4: "10.15.91.0/24".parse().expect("valid literal"),
            subnet_v6: "fd15:91::/64".parse().expect("valid literal"),
            backend: DataplaneBackend::Auto,
            status_interval_ms: 3000,
            keep_on_stop: true,
        }
    }
}

/// Everything Mistborn needs to start.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Where the database, key files and the admin password live.
    pub data_dir: PathBuf,
    /// `sqlite://...` or `postgres://...`; empty means `<data_dir>/mistborn.db`.
    pub database_url: Option<String>,
    /// Host name or address devices use to reach the server (the `Endpoint` of client configs).
    pub endpoint: String,
    /// Address of the HTTP API and web UI.
    pub http_listen: SocketAddr,
    /// The unix socket the reverse proxy reaches the API through; empty means
    /// `<data_dir>/http.sock`. Only requests over it have their `X-Forwarded-For` believed, so it is
    /// created 0600 (the managed Caddy runs as Mistborn's user), or 0660 with `http_socket_group`.
    pub http_socket: Option<PathBuf>,
    /// A group that may open `http_socket` too (an external proxy running as another user).
    pub http_socket_group: Option<String>,
    /// Local DNS suffix for `home.<suffix>` and service names.
    pub dns_suffix: String,
    /// The WireGuard server.
    pub wireguard: WireGuardConfig,
    /// The filtering DNS resolver.
    #[serde(default)]
    pub dns: crate::dns::DnsConfig,
    /// Profile rules: what regular users may choose, how many profiles they may have.
    pub peers: crate::peers::PeersConfig,
    /// Second factor and sessions.
    pub auth: crate::auth::AuthConfig,
    /// The reverse proxy for `home` and service subdomains.
    pub proxy: crate::proxy::ProxyConfig,
    /// The nftables firewall.
    pub firewall: crate::firewall::FirewallConfig,
    /// List downloads and uploads (DNS and Coppercloud): size cap, timeout, local targets.
    pub download: crate::download::DownloadConfig,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("mistborn-data"),
            database_url: None,
            endpoint: "127.0.0.1".into(),
            http_listen: "127.0.0.1:5000".parse().expect("valid literal"),
            http_socket: None,
            http_socket_group: None,
            dns_suffix: "mistborn".into(),
            wireguard: WireGuardConfig::default(),
            dns: crate::dns::DnsConfig::default(),
            peers: crate::peers::PeersConfig::default(),
            auth: crate::auth::AuthConfig::default(),
            proxy: crate::proxy::ProxyConfig::default(),
            firewall: crate::firewall::FirewallConfig::default(),
            download: crate::download::DownloadConfig::default(),
        }
    }
}

/// The environment variables [`Config::apply_env`] reads, for `--help` texts.
pub const ENV_VARS: &[&str] = &[
    "MISTBORN_DATA_DIR",
    "MISTBORN_DATABASE_URL",
    "MISTBORN_ENDPOINT",
    "MISTBORN_HTTP_LISTEN",
    "MISTBORN_DNS_SUFFIX",
    "MISTBORN_WG_INTERFACE",
    "MISTBORN_WG_PORT",
    "MISTBORN_SUBNET_V4",
    "MISTBORN_SUBNET_V6",
    "MISTBORN_DATAPLANE",
    "MISTBORN_STATUS_INTERVAL_MS",
    "MISTBORN_DOWNLOAD_ALLOW_LOCAL",
];

impl Config {
    /// Parses a `mistborn.toml` text.
    pub fn from_toml(text: &str) -> Result<Self> {
        let config: Config = toml::from_str(text).map_err(|e| Error::Config(e.to_string()))?;
        config.validate()?;
        Ok(config)
    }

    /// Reads `path` if given (a missing file is an error), else defaults; then applies the
    /// environment as read by `env` (pass `|k| std::env::var(k).ok()` in binaries).
    pub fn load(path: Option<&Path>, env: impl Fn(&str) -> Option<String>) -> Result<Self> {
        let mut config = match path {
            Some(p) => {
                let text = std::fs::read_to_string(p).map_err(|e| Error::io(p, e))?;
                Self::from_toml(&text)?
            }
            None => Self::default(),
        };
        config.apply_env(env)?;
        config.validate()?;
        Ok(config)
    }

    /// Overrides fields from `MISTBORN_*` variables.
    pub fn apply_env(&mut self, env: impl Fn(&str) -> Option<String>) -> Result<()> {
        fn parse<T: std::str::FromStr>(key: &'static str, v: &str) -> Result<T>
        where
            T::Err: std::fmt::Display,
        {
            v.parse()
                .map_err(|e: T::Err| Error::Config(format!("{key}={v}: {e}")))
        }
        if let Some(v) = env("MISTBORN_DATA_DIR") {
            self.data_dir = PathBuf::from(v);
        }
        if let Some(v) = env("MISTBORN_DATABASE_URL") {
            self.database_url = (!v.is_empty()).then_some(v);
        }
        if let Some(v) = env("MISTBORN_ENDPOINT") {
            self.endpoint = v;
        }
        if let Some(v) = env("MISTBORN_HTTP_LISTEN") {
            self.http_listen = parse("MISTBORN_HTTP_LISTEN", &v)?;
        }
        if let Some(v) = env("MISTBORN_DNS_SUFFIX") {
            self.dns_suffix = v;
        }
        if let Some(v) = env("MISTBORN_WG_INTERFACE") {
            self.wireguard.interface = v;
        }
        if let Some(v) = env("MISTBORN_WG_PORT") {
            self.wireguard.listen_port = parse("MISTBORN_WG_PORT", &v)?;
        }
        if let Some(v) = env("MISTBORN_SUBNET_V4") {
            self.wireguard.subnet_v4 = parse("MISTBORN_SUBNET_V4", &v)?;
        }
        if let Some(v) = env("MISTBORN_SUBNET_V6") {
            self.wireguard.subnet_v6 = parse("MISTBORN_SUBNET_V6", &v)?;
        }
        if let Some(v) = env("MISTBORN_STATUS_INTERVAL_MS") {
            self.wireguard.status_interval_ms = parse("MISTBORN_STATUS_INTERVAL_MS", &v)?;
        }
        if let Some(v) = env("MISTBORN_DOWNLOAD_ALLOW_LOCAL") {
            self.download.allow_local = parse("MISTBORN_DOWNLOAD_ALLOW_LOCAL", &v)?;
        }
        if let Some(v) = env("MISTBORN_DATAPLANE") {
            self.wireguard.backend = v.parse().map_err(|e: Error| Error::Config(e.to_string()))?;
        }
        Ok(())
    }

    /// Checks the values that serde cannot.
    pub fn validate(&self) -> Result<()> {
        let wg = &self.wireguard;
        if wg.interface.is_empty()
            || wg.interface.len() > 15
            || !wg
                .interface
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
        {
            return Err(Error::Config(format!(
                "wireguard.interface '{}' must be 1-15 characters of letters, digits, '-', '_', '.'",
                wg.interface
            )));
        }
        if wg.subnet_v4.prefix_len() > 30 {
            return Err(Error::Config(format!(
                "wireguard.subnet_v4 {} is too small: use a /30 or wider",
                wg.subnet_v4
            )));
        }
        if wg.subnet_v6.prefix_len() > 120 {
            return Err(Error::Config(format!(
                "wireguard.subnet_v6 {} is too small: use a /120 or wider",
                wg.subnet_v6
            )));
        }
        if !(10..=3_600_000).contains(&wg.status_interval_ms) {
            return Err(Error::Config(format!(
                "wireguard.status_interval_ms {} must be between 10 and 3600000",
                wg.status_interval_ms
            )));
        }
        if self.endpoint.trim().is_empty() {
            return Err(Error::Config(
                "endpoint must name the server's public host".into(),
            ));
        }
        self.dns.validate()?;
        self.firewall.validate()?;
        if let Some(url) = &self.database_url {
            let known = ["sqlite:", "postgres://", "postgresql://"];
            if !known.iter().any(|scheme| url.starts_with(scheme)) {
                // Checked here, before `open` creates anything; the URL may hold a password, so
                // it is not echoed.
                return Err(Error::Config(
                    "database_url must start with sqlite:// or postgres://".into(),
                ));
            }
        }
        // Both end up in the Caddyfile and in certificate names: anything but plain host-name
        // labels could smuggle in directives.
        check_dns_name("dns_suffix", &self.dns_suffix)?;
        self.proxy.validate()?;
        Ok(())
    }

    /// The proxy's unix socket in force: the configured one or `http.sock` in the data dir.
    pub fn effective_http_socket(&self) -> PathBuf {
        self.http_socket
            .clone()
            .unwrap_or_else(|| self.data_dir.join("http.sock"))
    }

    /// The database URL in force: the configured one or SQLite in the data dir.
    pub fn effective_database_url(&self) -> String {
        match &self.database_url {
            Some(url) => url.clone(),
            None => format!(
                "sqlite://{}?mode=rwc",
                self.data_dir.join("mistborn.db").display()
            ),
        }
    }
}

/// Checks that `label` is one host-name label: 1-63 ASCII letters, digits and inner hyphens.
pub(crate) fn check_dns_label(field: &str, label: &str) -> Result<()> {
    let ok = (1..=63).contains(&label.len())
        && label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && !label.starts_with('-')
        && !label.ends_with('-');
    if ok {
        Ok(())
    } else {
        Err(Error::Config(format!(
            "{field} {label:?} is not a DNS label: use 1-63 letters, digits and inner hyphens"
        )))
    }
}

/// Checks that `name` is a host name: dot-separated [`check_dns_label`] labels, at most 253
/// characters, no trailing dot.
pub(crate) fn check_dns_name(field: &str, name: &str) -> Result<()> {
    if name.is_empty() || name.len() > 253 {
        return Err(Error::Config(format!(
            "{field} {name:?} is not a DNS name: use 1-253 characters"
        )));
    }
    name.split('.').try_for_each(|label| {
        check_dns_label(field, label).map_err(|_| {
            Error::Config(format!(
                "{field} {name:?} is not a DNS name: use labels of 1-63 letters, digits and inner \
                 hyphens, separated by dots"
            ))
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dns_suffix_and_service_names_must_be_dns_labels() {
        for good in ["mistborn", "home.arpa", "my-lan", "x1"] {
            let c = Config {
                dns_suffix: good.into(),
                ..Config::default()
            };
            c.validate().expect(good);
        }
        for bad in [
            "",
            "mistborn {\n\tadmin 0.0.0.0:2019\n}",
            "mistborn\nimport /etc/passwd",
            "evil.com, *",
            "a..b",
            "-x",
            "x-",
            "mistborn.",
            "my_lan",
            "x y",
            "{env.HOME}",
            &"a".repeat(64),
        ] {
            let c = Config {
                dns_suffix: bad.into(),
                ..Config::default()
            };
            let err = c.validate().expect_err(bad).to_string();
            assert!(err.contains("dns_suffix"), "{bad:?}: {err}");
        }
        let toml = "[[proxy.services]]\nname = \"cloud {\\n}\"\nupstream = \"127.0.0.1:8080\"\n";
        let err = Config::from_toml(toml)
            .expect_err("injected service name")
            .to_string();
        assert!(err.contains("proxy.services"), "{err}");
        for bad in ["cloud.evil", "cloud }", "", "home", "a b", "x\ny"] {
            let mut c = Config::default();
            c.proxy.services = vec![crate::proxy::ServiceRoute {
                name: bad.into(),
                upstream: "127.0.0.1:8080".parse().expect("addr"),
            }];
            let err = c.validate().expect_err(bad).to_string();
            assert!(err.contains("proxy.services"), "{bad:?}: {err}");
        }
        let mut c = Config::default();
        let route = crate::proxy::ServiceRoute {
            name: "cloud".into(),
            upstream: "127.0.0.1:8080".parse().expect("addr"),
        };
        c.proxy.services = vec![route.clone(), route];
        assert!(
            c.validate()
                .expect_err("duplicate")
                .to_string()
                .contains("twice")
        );
    }

    #[test]
    fn toml_then_env_overrides() {
        let c = Config::load(None, |_| None).expect("defaults");
        assert_eq!(c.wireguard.subnet_v4.to_string(), "10.15.91.0/24");
        let mut c =
            Config::from_toml("endpoint = \"vpn.example.org\"\n[wireguard]\nlisten_port = 4000\n")
                .expect("parse");
        assert_eq!(c.endpoint, "vpn.example.org");
        assert_eq!(c.wireguard.listen_port, 4000);
        c.apply_env(|k| (k == "MISTBORN_WG_PORT").then(|| "5555".to_string()))
            .expect("env");
        assert_eq!(c.wireguard.listen_port, 5555);
    }

    #[test]
    fn bad_values_are_reported() {
        assert!(Config::from_toml("nonsense = 1").is_err());
        let mut c = Config::default();
        let err = c
            .apply_env(|k| (k == "MISTBORN_SUBNET_V4").then(|| "10.0.0.0/33".to_string()))
            .expect_err("bad subnet");
        assert!(err.to_string().contains("MISTBORN_SUBNET_V4"), "{err}");
        c.wireguard.interface = "much-too-long-interface".into();
        assert!(c.validate().is_err());
        let c = Config {
            database_url: Some("mysql://u:secret@db/x".into()),
            ..Config::default()
        };
        let err = c.validate().expect_err("unknown scheme").to_string();
        assert!(
            err.contains("postgres://") && !err.contains("secret"),
            "{err}"
        );
    }
}
