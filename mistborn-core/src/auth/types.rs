//! Auth value types.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::throttle::ThrottlePolicy;
use crate::actor::Actor;
use crate::error::{Error, Result};
use crate::peers::{Peer, PeerId, PeerKind};
use crate::users::{Role, UserId, Username};

/// Auth settings (`[auth]` in mistborn.toml).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// How long a login lasts, seconds.
    pub session_ttl_secs: u64,
    /// Issuer shown in authenticator apps.
    pub issuer: String,
    /// Brute-force limits.
    pub throttle: ThrottlePolicy,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            session_ttl_secs: 12 * 3600,
            issuer: "Mistborn".into(),
            throttle: ThrottlePolicy::default(),
        }
    }
}

/// A login session's id.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SessionId(pub(crate) String);

impl SessionId {
    pub(crate) fn generate() -> Self {
        Self(uuid::Uuid::new_v4().to_string())
    }
    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for SessionId {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        uuid::Uuid::parse_str(s)
            .map(|u| Self(u.to_string()))
            .map_err(|_| Error::invalid("session id", format!("'{s}' is not a UUID")))
    }
}

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A live login: the second factor was proved from this profile's tunnel address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    /// Session id.
    pub id: SessionId,
    /// Who signed in.
    pub user_id: UserId,
    /// Their name.
    pub username: Username,
    /// The profile whose tunnel carried the login.
    pub peer_id: PeerId,
    /// The tunnel address the session is bound to.
    pub address: IpAddr,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds.
    pub expires_at: i64,
}

/// What a new TOTP enrollment shows the user, once.
#[derive(Debug, Clone)]
pub struct Enrollment {
    /// The secret in base32, for typing.
    pub secret_base32: String,
    /// `otpauth://` URI for authenticator apps.
    pub otpauth_uri: String,
    /// The URI as a PNG QR code.
    pub qr_png: Vec<u8>,
}

/// Whether a user has a second factor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TotpStatus {
    /// An enrollment was started.
    pub enrolled: bool,
    /// It was confirmed with a valid code.
    pub confirmed: bool,
    /// Recovery codes not used yet.
    pub recovery_codes_left: u32,
}

/// The profile and user behind a tunnel address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TunnelIdentity {
    /// The profile.
    pub peer: Peer,
    /// The owner as an actor.
    pub actor: Actor,
    /// A live session for this profile, if any.
    pub session: Option<Session>,
}

impl TunnelIdentity {
    /// Whether this device may act as its user: WireGuard-only profiles always, MFA profiles with a
    /// live session.
    pub fn verified(&self) -> bool {
        self.peer.kind == PeerKind::Wireguard || self.session.is_some()
    }

    /// Who this device may act as while setting up its user's second factor: the owner with their
    /// role once verified; before that (the first factor only) the owner as a regular user, so
    /// it reaches its own user and no one else's, whatever the owner's role (a superuser's stolen
    /// phone must not enroll a second factor for another user).
    pub fn enrolling_actor(&self) -> Actor {
        if self.verified() {
            return self.actor.clone();
        }
        Actor::User {
            id: self.peer.user_id.clone(),
            role: Role::Regular,
        }
    }

    /// The actor, if verified.
    pub fn verified_actor(&self) -> Result<&Actor> {
        if self.verified() {
            Ok(&self.actor)
        } else {
            Err(Error::Unauthenticated(
                "this device's profile needs a second factor: sign in at home.mistborn".into(),
            ))
        }
    }
}
