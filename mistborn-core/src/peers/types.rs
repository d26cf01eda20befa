//! Profile value types.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::crypto::WgKey;
use crate::error::{Error, Result};
use crate::users::{UserId, Username};

/// A profile's stable id.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PeerId(pub(crate) String);

impl PeerId {
    pub(crate) fn generate() -> Self {
        Self(Uuid::new_v4().to_string())
    }
    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for PeerId {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Uuid::parse_str(s)
            .map(|u| Self(u.to_string()))
            .map_err(|_| Error::invalid("profile id", format!("'{s}' is not a UUID")))
    }
}

impl fmt::Display for PeerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A profile's display name, unique per user: 1-64 printable characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ProfileName(String);

impl ProfileName {
    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for ProfileName {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        crate::users::validate_label("profile name", s).map(Self)
    }
}

impl TryFrom<String> for ProfileName {
    type Error = Error;
    fn try_from(s: String) -> Result<Self> {
        s.parse()
    }
}

impl From<ProfileName> for String {
    fn from(n: ProfileName) -> Self {
        n.0
    }
}

impl fmt::Display for ProfileName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What a profile's device may do once the tunnel is up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum PeerKind {
    /// The tunnel is the only factor.
    #[default]
    Wireguard,
    /// The device reaches only Mistborn until its user signs in with a second factor.
    Mfa,
}

impl PeerKind {
    /// The stored and printed name.
    pub fn as_str(self) -> &'static str {
        match self {
            PeerKind::Wireguard => "wireguard",
            PeerKind::Mfa => "mfa",
        }
    }
}

impl FromStr for PeerKind {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "wireguard" => Ok(Self::Wireguard),
            "mfa" => Ok(Self::Mfa),
            _ => Err(Error::invalid(
                "kind",
                format!("'{s}' is not 'wireguard' or 'mfa'"),
            )),
        }
    }
}

/// Which UDP port the device dials (networks that block odd ports often allow 53 and 443).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum ListenPort {
    /// The configured WireGuard port.
    #[default]
    Default,
    /// UDP 53, redirected to the WireGuard port.
    Udp53,
    /// UDP 443, redirected to the WireGuard port.
    Udp443,
}

impl ListenPort {
    /// The stored and printed name.
    pub fn as_str(self) -> &'static str {
        match self {
            ListenPort::Default => "default",
            ListenPort::Udp53 => "udp53",
            ListenPort::Udp443 => "udp443",
        }
    }

    /// The port the client dials, given the server's configured port.
    pub fn port(self, configured: u16) -> u16 {
        match self {
            ListenPort::Default => configured,
            ListenPort::Udp53 => 53,
            ListenPort::Udp443 => 443,
        }
    }
}

impl FromStr for ListenPort {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "default" => Ok(Self::Default),
            "udp53" | "53" => Ok(Self::Udp53),
            "udp443" | "443" => Ok(Self::Udp443),
            _ => Err(Error::invalid(
                "listen_port",
                format!("'{s}' is not 'default', 'udp53' or 'udp443'"),
            )),
        }
    }
}

/// A stored profile as the API shows it (no secrets).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Peer {
    /// Stable id.
    pub id: PeerId,
    /// Owner.
    pub user_id: UserId,
    /// Owner's name.
    pub username: Username,
    /// Display name.
    pub name: ProfileName,
    /// WireGuard-only or MFA.
    pub kind: PeerKind,
    /// Whether other tunnel clients may reach this device.
    pub client_to_client: bool,
    /// Which port the device dials.
    pub listen_port: ListenPort,
    /// Tunnel IPv4 address.
    pub address_v4: Ipv4Addr,
    /// Tunnel IPv6 address.
    pub address_v6: Ipv6Addr,
    /// The device's public key.
    pub public_key: WgKey,
    /// Whether Mistborn holds the private key (false when the device enrolled its own key).
    pub server_generated_key: bool,
    /// Creation time, Unix seconds.
    pub created_at: i64,
}

/// Profile rules (`[peers]` in mistborn.toml).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PeersConfig {
    /// The kind a regular user's new profile gets when none is asked for, and the only kind
    /// besides `mfa` a regular user may choose. With the default, `mfa`, only a superuser can make
    /// a profile WireGuard-only (the tunnel as the only factor); set `wireguard` to let regular
    /// users choose it themselves.
    pub regular_user_kind: PeerKind,
    /// How many profiles a regular user may create for themselves (each takes a tunnel address);
    /// superusers may go beyond it.
    pub max_profiles_per_user: u32,
}

impl Default for PeersConfig {
    fn default() -> Self {
        Self {
            regular_user_kind: PeerKind::Mfa,
            max_profiles_per_user: 10,
        }
    }
}

/// Input for creating a profile.
#[derive(Debug, Clone, Default)]
pub struct NewPeer {
    /// Owner by id or username; `None` means the actor.
    pub user: Option<String>,
    /// Display name.
    pub name: String,
    /// WireGuard-only or MFA; `None`: `wireguard` when a superuser creates the profile,
    /// [`PeersConfig::regular_user_kind`] when a regular user does.
    pub kind: Option<PeerKind>,
    /// Whether other tunnel clients may reach this device.
    pub client_to_client: bool,
    /// Which port the device dials; `None`: the default port. UDP 53 and 443 are host-wide
    /// redirects, so only a superuser may choose them.
    pub listen_port: Option<ListenPort>,
    /// A device that made its own key pair sends only the public key.
    pub public_key: Option<String>,
}

/// A partial change to a profile; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct PeerUpdate {
    /// New display name.
    pub name: Option<String>,
    /// New kind.
    pub kind: Option<PeerKind>,
    /// New client-to-client flag.
    pub client_to_client: Option<bool>,
    /// New port choice.
    pub listen_port: Option<ListenPort>,
}
