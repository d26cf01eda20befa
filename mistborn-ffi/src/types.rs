//! Every type that crosses the FFI boundary: UniFFI records, enums and the error, each converted
//! from core's type with `From` (and back with `TryFrom` where a foreign value must be validated).
//! Keys, addresses and ids cross as text: that is what apps store and display.

use mistborn_core::crypto::{self, WgKey};
use mistborn_core::peers;
use mistborn_core::{Error, ErrorKind};

/// Why a call failed. `code` is core's stable machine-readable code (`"invalid_input"`,
/// `"not_found"`, ...); `reason` is a sentence for people.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, uniffi::Error)]
pub enum MistbornError {
    /// Input was malformed or out of range; nothing was changed.
    #[error("{reason}")]
    InvalidInput { code: String, reason: String },
    /// The thing asked for does not exist.
    #[error("{reason}")]
    NotFound { code: String, reason: String },
    /// Missing or wrong credentials.
    #[error("{reason}")]
    Unauthenticated { code: String, reason: String },
    /// The caller may not do this.
    #[error("{reason}")]
    Forbidden { code: String, reason: String },
    /// The request clashes with existing state.
    #[error("{reason}")]
    Conflict { code: String, reason: String },
    /// Too many failed attempts; try again later.
    #[error("{reason}")]
    RateLimited { code: String, reason: String },
    /// Something outside the caller's control failed.
    #[error("{reason}")]
    Internal { code: String, reason: String },
}

impl From<Error> for MistbornError {
    fn from(e: Error) -> Self {
        let (code, reason) = (e.code().to_string(), e.to_string());
        match e.kind() {
            ErrorKind::InvalidInput => Self::InvalidInput { code, reason },
            ErrorKind::NotFound => Self::NotFound { code, reason },
            ErrorKind::Unauthenticated => Self::Unauthenticated { code, reason },
            ErrorKind::Forbidden => Self::Forbidden { code, reason },
            ErrorKind::Conflict => Self::Conflict { code, reason },
            ErrorKind::RateLimited => Self::RateLimited { code, reason },
            ErrorKind::Internal => Self::Internal { code, reason },
        }
    }
}

/// A WireGuard key pair made on the device (base64). Only `public_key` is ever sent anywhere.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct KeyPair {
    /// The secret half: store it in the platform keystore; it never leaves the device.
    pub private_key: String,
    /// The public half, sent in the enrollment request.
    pub public_key: String,
}

impl From<crypto::KeyPair> for KeyPair {
    fn from(k: crypto::KeyPair) -> Self {
        Self {
            private_key: k.private.to_base64(),
            public_key: k.public.to_base64(),
        }
    }
}

/// What a profile's device may do once the tunnel is up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum ProfileKind {
    /// The tunnel is the only factor.
    Wireguard,
    /// The device reaches only Mistborn until its user signs in with a second factor.
    Mfa,
}

impl From<peers::PeerKind> for ProfileKind {
    fn from(k: peers::PeerKind) -> Self {
        match k {
            peers::PeerKind::Wireguard => Self::Wireguard,
            peers::PeerKind::Mfa => Self::Mfa,
        }
    }
}

impl From<ProfileKind> for peers::PeerKind {
    fn from(k: ProfileKind) -> Self {
        match k {
            ProfileKind::Wireguard => Self::Wireguard,
            ProfileKind::Mfa => Self::Mfa,
        }
    }
}

/// Which UDP port the device dials.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum ListenPort {
    /// The server's configured WireGuard port.
    Default,
    /// UDP 53 (often open on restrictive networks).
    Udp53,
    /// UDP 443 (often open on restrictive networks).
    Udp443,
}

impl From<peers::ListenPort> for ListenPort {
    fn from(p: peers::ListenPort) -> Self {
        match p {
            peers::ListenPort::Default => Self::Default,
            peers::ListenPort::Udp53 => Self::Udp53,
            peers::ListenPort::Udp443 => Self::Udp443,
        }
    }
}

impl From<ListenPort> for peers::ListenPort {
    fn from(p: ListenPort) -> Self {
        match p {
            ListenPort::Default => Self::Default,
            ListenPort::Udp53 => Self::Udp53,
            ListenPort::Udp443 => Self::Udp443,
        }
    }
}

/// What the device sends to the server to enroll (never a private key).
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct EnrollmentRequest {
    /// The new profile's display name.
    pub profile_name: String,
    /// The device's public key (base64).
    pub public_key: String,
    /// WireGuard-only or MFA.
    pub kind: ProfileKind,
    /// Whether other tunnel clients may reach this device.
    pub client_to_client: bool,
    /// Which port the device dials.
    pub listen_port: ListenPort,
}

impl From<peers::EnrollmentRequest> for EnrollmentRequest {
    fn from(r: peers::EnrollmentRequest) -> Self {
        Self {
            profile_name: r.name.into(),
            public_key: r.public_key.to_base64(),
            kind: r.kind.into(),
            client_to_client: r.client_to_client,
            listen_port: r.listen_port.into(),
        }
    }
}

impl TryFrom<EnrollmentRequest> for peers::EnrollmentRequest {
    type Error = Error;
    fn try_from(r: EnrollmentRequest) -> Result<Self, Error> {
        let mut out = Self::new(&r.profile_name, &r.public_key, r.kind.into())?;
        out.client_to_client = r.client_to_client;
        out.listen_port = r.listen_port.into();
        Ok(out)
    }
}

/// The server's answer to an enrollment: the whole client config except the private key.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct EnrollmentAnswer {
    /// The created profile's id.
    pub profile_id: String,
    /// Its display name.
    pub profile_name: String,
    /// WireGuard-only or MFA.
    pub kind: ProfileKind,
    /// The device's tunnel IPv4 address.
    pub address_v4: String,
    /// The device's tunnel IPv6 address.
    pub address_v6: String,
    /// The resolver addresses.
    pub dns: Vec<String>,
    /// The device public key the server registered.
    pub public_key: String,
    /// The server's public key.
    pub server_public_key: String,
    /// The profile's preshared key.
    pub preshared_key: String,
    /// Server host as devices reach it.
    pub endpoint_host: String,
    /// UDP port the device dials.
    pub endpoint_port: u16,
}

impl From<peers::EnrollmentAnswer> for EnrollmentAnswer {
    fn from(a: peers::EnrollmentAnswer) -> Self {
        Self {
            profile_id: a.profile_id.to_string(),
            profile_name: a.profile_name.into(),
            kind: a.kind.into(),
            address_v4: a.address_v4.to_string(),
            address_v6: a.address_v6.to_string(),
            dns: a.dns.iter().map(ToString::to_string).collect(),
            public_key: a.public_key.to_base64(),
            server_public_key: a.server_public_key.to_base64(),
            preshared_key: a.preshared_key.to_base64(),
            endpoint_host: a.endpoint_host,
            endpoint_port: a.endpoint_port,
        }
    }
}

fn field<T: std::str::FromStr>(name: &'static str, value: &str) -> Result<T, Error>
where
    T::Err: std::fmt::Display,
{
    value
        .parse()
        .map_err(|e: T::Err| Error::invalid(name, format!("'{value}': {e}")))
}

fn key(name: &'static str, value: &str) -> Result<WgKey, Error> {
    value
        .parse()
        .map_err(|e: Error| Error::invalid(name, e.to_string()))
}

impl TryFrom<EnrollmentAnswer> for peers::EnrollmentAnswer {
    type Error = Error;
    fn try_from(a: EnrollmentAnswer) -> Result<Self, Error> {
        Ok(Self {
            profile_id: a.profile_id.parse()?,
            profile_name: a.profile_name.parse()?,
            kind: a.kind.into(),
            address_v4: field("address_v4", &a.address_v4)?,
            address_v6: field("address_v6", &a.address_v6)?,
            dns: a
                .dns
                .iter()
                .map(|d| field("dns", d))
                .collect::<Result<_, _>>()?,
            public_key: key("public_key", &a.public_key)?,
            server_public_key: key("server_public_key", &a.server_public_key)?,
            preshared_key: key("preshared_key", &a.preshared_key)?,
            endpoint_host: a.endpoint_host,
            endpoint_port: a.endpoint_port,
        })
    }
}

/// A parsed client config, for showing what a file or QR code holds before importing it.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct ClientConfig {
    /// The profile's name (from the config's comment).
    pub profile_name: String,
    /// Tunnel IPv4 address.
    pub address_v4: String,
    /// Tunnel IPv6 address.
    pub address_v6: String,
    /// Resolver addresses.
    pub dns: Vec<String>,
    /// The private key, or `None` when the config holds the device-key placeholder.
    pub private_key: Option<String>,
    /// The server's public key.
    pub server_public_key: String,
    /// The preshared key.
    pub preshared_key: String,
    /// Server host.
    pub endpoint_host: String,
    /// Server UDP port.
    pub endpoint_port: u16,
    /// `host:port` as written in the config (IPv6 hosts in brackets).
    pub endpoint: String,
}

impl From<peers::ClientConfig> for ClientConfig {
    fn from(c: peers::ClientConfig) -> Self {
        Self {
            endpoint: c.endpoint(),
            profile_name: c.profile_name,
            address_v4: c.address_v4.to_string(),
            address_v6: c.address_v6.to_string(),
            dns: c.dns.iter().map(ToString::to_string).collect(),
            private_key: c.private_key.as_ref().map(WgKey::to_base64),
            server_public_key: c.server_public_key.to_base64(),
            preshared_key: c.preshared_key.to_base64(),
            endpoint_host: c.endpoint_host,
            endpoint_port: c.endpoint_port,
        }
    }
}
