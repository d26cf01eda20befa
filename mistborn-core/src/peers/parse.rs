//! Reading a client config back: the inverse of [`ClientConfig::render`], so devices and tools can
//! check a config file or QR payload before importing it. It accepts what Mistborn writes (and the
//! same file edited by hand: any key order, any case of key names, comments) and refuses anything it
//! would not render, naming the line and what is wrong.

use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;

use ipnet::IpNet;

use super::render::{ClientConfig, DEVICE_KEY_PLACEHOLDER};
use crate::crypto::WgKey;
use crate::error::{Error, Result};

const FIELD: &str = "client config";
const PROFILE_COMMENT: &str = "# Mistborn profile:";

#[derive(Clone, Copy, PartialEq, Eq)]
enum Section {
    Top,
    Interface,
    Peer,
}

fn bad(line: usize, reason: impl std::fmt::Display) -> Error {
    Error::invalid(FIELD, format!("line {line}: {reason}"))
}

fn key(line: usize, name: &str, value: &str) -> Result<WgKey> {
    value
        .parse()
        .map_err(|e: Error| bad(line, format!("{name}: {e}")))
}

/// Splits `host:port`, `[v6]:port` or `v6-literal` forms of an `Endpoint` value.
fn endpoint(line: usize, value: &str) -> Result<(String, u16)> {
    if let Ok(sa) = value.parse::<SocketAddr>() {
        return Ok((sa.ip().to_string(), sa.port()));
    }
    let (host, port) = value
        .rsplit_once(':')
        .ok_or_else(|| bad(line, format!("Endpoint '{value}' needs host:port")))?;
    let port: u16 = port
        .parse()
        .ok()
        .filter(|p| *p != 0)
        .ok_or_else(|| bad(line, format!("Endpoint port '{port}' is not 1-65535")))?;
    if host.is_empty() || host.contains(char::is_whitespace) || host.contains(['[', ']', ':']) {
        return Err(bad(
            line,
            format!("Endpoint host '{host}' is not a host name or address"),
        ));
    }
    Ok((host.to_string(), port))
}

impl ClientConfig {
    /// Parses a config as written by [`ClientConfig::render`]. The device-key placeholder reads
    /// back as `private_key: None`.
    pub fn parse(text: &str) -> Result<Self> {
        let mut section = Section::Top;
        let mut profile_name = String::new();
        let (mut v4, mut v6) = (None, None);
        let mut dns = Vec::new();
        let mut private_key = None;
        let mut private_seen = false;
        let (mut server_public_key, mut preshared_key, mut end) = (None, None, None);
        let (mut interfaces, mut peers) = (0, 0);

        for (i, raw) in text.lines().enumerate() {
            let n = i + 1;
            let line = raw.trim();
            if let Some(name) = line.strip_prefix(PROFILE_COMMENT) {
                profile_name = name.trim().to_string();
                continue;
            }
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            if line.starts_with('[') {
                section = match line.to_ascii_lowercase().as_str() {
                    "[interface]" => {
                        interfaces += 1;
                        Section::Interface
                    }
                    "[peer]" => {
                        peers += 1;
                        Section::Peer
                    }
                    _ => return Err(bad(n, format!("unknown section {line}"))),
                };
                if interfaces > 1 || peers > 1 {
                    return Err(bad(
                        n,
                        "a Mistborn config has one [Interface] and one [Peer]",
                    ));
                }
                continue;
            }
            let (k, value) = line
                .split_once('=')
                .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim()))
                .ok_or_else(|| bad(n, format!("'{line}' is not 'Key = value'")))?;
            match (section, k.as_str()) {
                (Section::Top, _) => {
                    return Err(bad(n, "settings must follow [Interface] or [Peer]"));
                }
                (Section::Interface, "address") => {
                    for part in value.split(',').map(str::trim) {
                        let ip = part
                            .parse::<IpNet>()
                            .map(|net| net.addr())
                            .or_else(|_| part.parse::<IpAddr>())
                            .map_err(|_| {
                                bad(n, format!("Address '{part}' is not an IP address"))
                            })?;
                        match ip {
                            IpAddr::V4(a) if v4.is_none() => v4 = Some(a),
                            IpAddr::V6(a) if v6.is_none() => v6 = Some(a),
                            _ => return Err(bad(n, "Address holds one IPv4 and one IPv6 address")),
                        }
                    }
                }
                (Section::Interface, "dns") => {
                    for part in value.split(',').map(str::trim).filter(|p| !p.is_empty()) {
                        dns.push(
                            part.parse::<IpAddr>().map_err(|_| {
                                bad(n, format!("DNS '{part}' is not an IP address"))
                            })?,
                        );
                    }
                }
                (Section::Interface, "privatekey") => {
                    private_seen = true;
                    private_key = if value == DEVICE_KEY_PLACEHOLDER {
                        None
                    } else {
                        Some(key(n, "PrivateKey", value)?)
                    };
                }
                (Section::Peer, "publickey") => {
                    server_public_key = Some(key(n, "PublicKey", value)?)
                }
                (Section::Peer, "presharedkey") => {
                    preshared_key = Some(key(n, "PresharedKey", value)?);
                }
                (Section::Peer, "endpoint") => end = Some(endpoint(n, value)?),
                // Fixed by Mistborn (full tunnel, keepalive): checked for sense, not kept.
                (Section::Peer, "allowedips") => {
                    for part in value.split(',').map(str::trim) {
                        part.parse::<IpNet>()
                            .map_err(|_| bad(n, format!("AllowedIPs '{part}' is not a network")))?;
                    }
                }
                (Section::Peer, "persistentkeepalive") => {
                    value.parse::<u16>().map_err(|_| {
                        bad(n, format!("PersistentKeepalive '{value}' is not 0-65535"))
                    })?;
                }
                (_, other) => return Err(bad(n, format!("unknown setting '{other}' here"))),
            }
        }

        let missing = |what: &str| Error::invalid(FIELD, format!("missing {what}"));
        if !private_seen {
            return Err(missing("PrivateKey in [Interface]"));
        }
        let (endpoint_host, endpoint_port) = end.ok_or_else(|| missing("Endpoint in [Peer]"))?;
        Ok(Self {
            profile_name,
            address_v4: v4.ok_or_else(|| missing("an IPv4 Address in [Interface]"))?,
            address_v6: v6.ok_or_else(|| missing("an IPv6 Address in [Interface]"))?,
            dns,
            private_key,
            server_public_key: server_public_key.ok_or_else(|| missing("PublicKey in [Peer]"))?,
            preshared_key: preshared_key.ok_or_else(|| missing("PresharedKey in [Peer]"))?,
            endpoint_host,
            endpoint_port,
        })
    }
}

impl FromStr for ClientConfig {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Self::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::KeyPair;

    fn sample(private_key: Option<WgKey>, host: &str) -> ClientConfig {
        ClientConfig {
            profile_name: "Anna's phone".into(),
            address_v4: "10.15.91.2".parse().expect("a"),
            address_v6: "fd15:91::2".parse().expect("a"),
            dns: vec![
                "10.15.91.1".parse().expect("a"),
                "fd15:91::1".parse().expect("a"),
            ],
            private_key,
            server_public_key: KeyPair::generate().public,
            preshared_key: WgKey::generate_preshared(),
            endpoint_host: host.into(),
            endpoint_port: 51820,
        }
    }

    #[test]
    fn render_parse_roundtrip() {
        for host in ["vpn.example.org", "192.0.2.1", "2001:db8::1"] {
            for key in [Some(KeyPair::generate().private), None] {
                let c = sample(key.clone(), host);
                let text = c.render();
                let back = ClientConfig::parse(&text).expect("parse");
                assert_eq!(back.render(), text);
                assert_eq!(back.private_key, key);
                assert_eq!(back.profile_name, "Anna's phone");
                assert_eq!(back.endpoint_host, host);
            }
        }
    }

    #[test]
    fn errors_name_the_problem() {
        let good = sample(Some(KeyPair::generate().private), "vpn.example.org").render();
        let cases = [
            (
                good.replace("PublicKey = ", "PublicKey = x"),
                "line 8: PublicKey",
            ),
            (
                good.replace("PrivateKey", "Privatekey = abc\n#"),
                "PrivateKey",
            ),
            (
                good.replace("Endpoint = vpn.example.org:51820", "Endpoint = vpn"),
                "host:port",
            ),
            (good.replace(":51820", ":0"), "1-65535"),
            (good.replace("10.15.91.2/32, ", ""), "IPv4 Address"),
            (
                good.replace("[Peer]", "[Peer]\nMTU = 1280"),
                "unknown setting 'mtu'",
            ),
            (good.replace("[Peer]", "[Pear]"), "unknown section"),
            (format!("{good}[Peer]\n"), "one [Peer]"),
            (
                good.replace("DNS = 10.15.91.1", "DNS = home.lan"),
                "DNS 'home.lan'",
            ),
            (String::new(), "missing PrivateKey"),
        ];
        for (text, expected) in cases {
            let err = ClientConfig::parse(&text).expect_err(expected).to_string();
            assert!(err.contains(expected), "{err} lacks {expected}");
        }
    }
}
