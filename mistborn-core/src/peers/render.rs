//! The client config text, exactly as `wg-quick` and the WireGuard apps import it.

use std::fmt::Write;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::crypto::WgKey;

/// Everything a device needs to join the tunnel.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// The profile's name, written as a comment.
    pub profile_name: String,
    /// Tunnel IPv4 address of the device.
    pub address_v4: Ipv4Addr,
    /// Tunnel IPv6 address of the device.
    pub address_v6: Ipv6Addr,
    /// The Mistborn resolver addresses (the server's tunnel addresses).
    pub dns: Vec<IpAddr>,
    /// `None` when the device holds its own private key.
    pub private_key: Option<WgKey>,
    /// The server's public key.
    pub server_public_key: WgKey,
    /// Per-profile preshared key.
    pub preshared_key: WgKey,
    /// Server host as devices reach it.
    pub endpoint_host: String,
    /// UDP port devices dial.
    pub endpoint_port: u16,
}

/// Placeholder the device replaces with the private key it generated.
pub const DEVICE_KEY_PLACEHOLDER: &str = "<the private key generated on the device>";

impl ClientConfig {
    /// `host:port`, with brackets around IPv6 literals.
    pub fn endpoint(&self) -> String {
        let host = self.endpoint_host.trim_matches(['[', ']']);
        if host.parse::<Ipv6Addr>().is_ok() {
            format!("[{host}]:{}", self.endpoint_port)
        } else {
            format!("{host}:{}", self.endpoint_port)
        }
    }

    /// The config file text.
    pub fn render(&self) -> String {
        let mut s = String::new();
        let join = |v: &[IpAddr]| {
            v.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        };
        let private = self
            .private_key
            .as_ref()
            .map_or_else(|| DEVICE_KEY_PLACEHOLDER.to_string(), WgKey::to_base64);
        // `write!` to a String cannot fail.
        let _ = writeln!(
            s,
            "# Mistborn profile: {}",
            self.profile_name.replace('\n', " ")
        );
        let _ = writeln!(s, "[Interface]");
        let _ = writeln!(
            s,
            "Address = {}/32, {}/128",
            self.address_v4, self.address_v6
        );
        let _ = writeln!(s, "DNS = {}", join(&self.dns));
        let _ = writeln!(s, "PrivateKey = {private}");
        let _ = writeln!(s);
        let _ = writeln!(s, "[Peer]");
        let _ = writeln!(s, "PublicKey = {}", self.server_public_key);
        let _ = writeln!(s, "PresharedKey = {}", self.preshared_key);
        let _ = writeln!(s, "AllowedIPs = 0.0.0.0/0, ::/0");
        let _ = writeln!(s, "Endpoint = {}", self.endpoint());
        let _ = writeln!(s, "PersistentKeepalive = 25");
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(host: &str) -> ClientConfig {
        ClientConfig {
            profile_name: "phone".into(),
            address_v4: "10.15.91.2".parse().expect("a"),
            address_v6: "fd15:91::2".parse().expect("a"),
            dns: vec![
                "10.15.91.1".parse().expect("a"),
                "fd15:91::1".parse().expect("a"),
            ],
            private_key: Some(
                "dwdtCnMYpX08FsFyUbJmRd9ML4frwJkqsXf7pR25LCo="
                    .parse()
                    .expect("k"),
            ),
            server_public_key: "hSDwCYkwp1R0i33ctD73Wg2/Og0mOBr066SpjqqbTmo="
                .parse()
                .expect("k"),
            preshared_key: "hSDwCYkwp1R0i33ctD73Wg2/Og0mOBr066SpjqqbTmo="
                .parse()
                .expect("k"),
            endpoint_host: host.into(),
            endpoint_port: 51820,
        }
    }

    #[test]
    fn renders_the_seed_format() {
        let text = sample("vpn.example.org").render();
        assert!(text.contains("[Interface]\nAddress = 10.15.91.2/32, fd15:91::2/128\nDNS = 10.15.91.1, fd15:91::1\nPrivateKey = dwdtCnMYpX08FsFyUbJmRd9ML4frwJkqsXf7pR25LCo=\n"), "{text}");
        assert!(
            text.contains("\n[Peer]\nPublicKey = hSDwCYkwp1R0i33ctD73Wg2/Og0mOBr066SpjqqbTmo=\n")
        );
        assert!(text.contains("AllowedIPs = 0.0.0.0/0, ::/0\nEndpoint = vpn.example.org:51820\n"));
    }

    #[test]
    fn brackets_ipv6_endpoints() {
        assert_eq!(sample("2001:db8::1").endpoint(), "[2001:db8::1]:51820");
        assert_eq!(sample("[2001:db8::1]").endpoint(), "[2001:db8::1]:51820");
    }
}
