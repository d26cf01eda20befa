//! WireGuard Curve25519 keys, parsed and printed as the 44-character base64 WireGuard tools use.

use std::fmt;
use std::str::FromStr;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use crate::error::{Error, Result};

/// A 32-byte WireGuard key (public, private or preshared).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct WgKey([u8; 32]);

impl WgKey {
    /// A fresh random private key (clamped by WireGuard's rules).
    pub fn generate_private() -> Self {
        Self(wireguard_control::Key::generate_private().0)
    }

    /// A fresh random preshared key.
    pub fn generate_preshared() -> Self {
        Self(wireguard_control::Key::generate_preshared().0)
    }

    /// The public key of this private key.
    pub fn public(&self) -> Self {
        Self(wireguard_control::Key(self.0).get_public().0)
    }

    /// Base64 text, as in WireGuard configs.
    pub fn to_base64(&self) -> String {
        STANDARD.encode(self.0)
    }

    /// From raw bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// For handing to wireguard-control.
    pub fn to_wg(&self) -> wireguard_control::Key {
        wireguard_control::Key(self.0)
    }
}

impl FromStr for WgKey {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        let s = s.trim();
        let bytes = STANDARD.decode(s).map_err(|_| {
            Error::invalid(
                "key",
                "not base64: expected 44 characters as printed by `wg genkey`",
            )
        })?;
        let arr: [u8; 32] = bytes.try_into().map_err(|b: Vec<u8>| {
            Error::invalid(
                "key",
                format!(
                    "decodes to {} bytes; a WireGuard key is 32 bytes (44 base64 characters)",
                    b.len()
                ),
            )
        })?;
        Ok(Self(arr))
    }
}

impl fmt::Display for WgKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_base64())
    }
}

/// Never print key bytes in logs by accident.
impl fmt::Debug for WgKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "WgKey({}…)", &self.to_base64()[..8])
    }
}

impl serde::Serialize for WgKey {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_base64())
    }
}

impl<'de> serde::Deserialize<'de> for WgKey {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = <String as serde::Deserialize>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// A private key with its public key.
#[derive(Clone, Debug)]
pub struct KeyPair {
    /// The secret half.
    pub private: WgKey,
    /// The public half.
    pub public: WgKey,
}

impl KeyPair {
    /// A fresh random key pair.
    pub fn generate() -> Self {
        Self::from_private(WgKey::generate_private())
    }

    /// The pair for an existing private key.
    pub fn from_private(private: WgKey) -> Self {
        let public = private.public();
        Self { private, public }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_and_known_public_key() {
        // RFC 7748 test vector (Alice): private -> public.
        let private: WgKey = "dwdtCnMYpX08FsFyUbJmRd9ML4frwJkqsXf7pR25LCo="
            .parse()
            .expect("key");
        assert_eq!(
            private.public().to_base64(),
            "hSDwCYkwp1R0i33ctD73Wg2/Og0mOBr066SpjqqbTmo="
        );
        let k = WgKey::generate_private();
        assert_eq!(k.to_base64().parse::<WgKey>().expect("parse"), k);
    }

    #[test]
    fn malformed_keys_are_rejected() {
        for bad in [
            "",
            "abc",
            "!!!!",
            "AAAA",
            "dwdtCnMYpX08FsFyUbJmRd9ML4frwJkqsXf7pR25LC==",
        ] {
            assert!(bad.parse::<WgKey>().is_err(), "{bad} accepted");
        }
    }
}
