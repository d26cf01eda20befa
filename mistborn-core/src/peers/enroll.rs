//! Device enrollment: a phone or laptop makes its own key pair, sends only the public key with a
//! profile name ([`EnrollmentRequest`]) and gets back everything else its config needs
//! ([`EnrollmentAnswer`]). The device renders the config itself with
//! [`EnrollmentAnswer::client_config`], so the private key never leaves it. Both types are the
//! wire format of every frontend (REST body, mobile bindings), hence the serde derives.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use serde::{Deserialize, Serialize};

use super::render::ClientConfig;
use super::service::Peers;
use super::types::{ListenPort, NewPeer, PeerId, PeerKind, ProfileName};
use crate::actor::Actor;
use crate::crypto::WgKey;
use crate::error::{Error, Result};

/// What a device sends to get a profile for a key pair it generated itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnrollmentRequest {
    /// The new profile's display name.
    pub name: ProfileName,
    /// The device's public key (the private half stays on the device).
    pub public_key: WgKey,
    /// WireGuard-only or MFA.
    #[serde(default)]
    pub kind: PeerKind,
    /// Whether other tunnel clients may reach this device.
    #[serde(default)]
    pub client_to_client: bool,
    /// Which port the device dials.
    #[serde(default)]
    pub listen_port: ListenPort,
}

impl EnrollmentRequest {
    /// Validates a profile name and a base64 public key into a request with default options.
    pub fn new(name: &str, public_key: &str, kind: PeerKind) -> Result<Self> {
        Ok(Self {
            name: name.parse()?,
            public_key: public_key.parse()?,
            kind,
            client_to_client: false,
            listen_port: ListenPort::default(),
        })
    }

    /// The profile to create for this request, owned by `user` (`None`: the actor).
    pub fn into_new_peer(self, user: Option<String>) -> NewPeer {
        NewPeer {
            user,
            name: self.name.into(),
            kind: Some(self.kind),
            client_to_client: self.client_to_client,
            listen_port: Some(self.listen_port),
            public_key: Some(self.public_key.to_base64()),
        }
    }
}

/// What the server answers an enrollment with: the whole client config except the private key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnrollmentAnswer {
    /// The created profile's id.
    pub profile_id: PeerId,
    /// Its display name.
    pub profile_name: ProfileName,
    /// WireGuard-only or MFA.
    pub kind: PeerKind,
    /// The device's tunnel IPv4 address.
    pub address_v4: Ipv4Addr,
    /// The device's tunnel IPv6 address.
    pub address_v6: Ipv6Addr,
    /// The Mistborn resolver addresses.
    pub dns: Vec<IpAddr>,
    /// The device public key the server registered (lets the device check it used the right key).
    pub public_key: WgKey,
    /// The server's public key.
    pub server_public_key: WgKey,
    /// The profile's preshared key.
    pub preshared_key: WgKey,
    /// Server host as devices reach it.
    pub endpoint_host: String,
    /// UDP port the device dials.
    pub endpoint_port: u16,
}

impl EnrollmentAnswer {
    /// The device's full client config, completed with its own private key. Fails when the key
    /// is not the private half of the public key that was enrolled.
    pub fn client_config(&self, private_key: &WgKey) -> Result<ClientConfig> {
        if private_key.public() != self.public_key {
            return Err(Error::invalid(
                "private key",
                format!(
                    "it does not belong to the enrolled public key {}; use the key pair generated for this enrollment",
                    self.public_key
                ),
            ));
        }
        Ok(ClientConfig {
            profile_name: self.profile_name.to_string(),
            address_v4: self.address_v4,
            address_v6: self.address_v6,
            dns: self.dns.clone(),
            private_key: Some(private_key.clone()),
            server_public_key: self.server_public_key.clone(),
            preshared_key: self.preshared_key.clone(),
            endpoint_host: self.endpoint_host.clone(),
            endpoint_port: self.endpoint_port,
        })
    }

    fn new(
        profile_id: PeerId,
        kind: PeerKind,
        public_key: WgKey,
        config: ClientConfig,
    ) -> Result<Self> {
        Ok(Self {
            profile_id,
            profile_name: config.profile_name.parse()?,
            kind,
            address_v4: config.address_v4,
            address_v6: config.address_v6,
            dns: config.dns,
            public_key,
            server_public_key: config.server_public_key,
            preshared_key: config.preshared_key,
            endpoint_host: config.endpoint_host,
            endpoint_port: config.endpoint_port,
        })
    }
}

/// JSON in and out, so every frontend speaks the same wire format without its own serde setup.
macro_rules! json_io {
    ($t:ty, $what:literal) => {
        impl $t {
            #[doc = concat!("The ", $what, " as JSON.")]
            pub fn to_json(&self) -> Result<String> {
                serde_json::to_string(self)
                    .map_err(|e| Error::Corrupt(format!("{} does not serialize: {e}", $what)))
            }

            #[doc = concat!("Parses and validates the ", $what, " from JSON.")]
            pub fn from_json(text: &str) -> Result<Self> {
                serde_json::from_str(text).map_err(|e| Error::invalid($what, e.to_string()))
            }
        }
    };
}

json_io!(EnrollmentRequest, "enrollment request");
json_io!(EnrollmentAnswer, "enrollment answer");

impl Peers<'_> {
    /// Enrolls a device that generated its own key pair: creates the profile for `user` (`None`:
    /// the actor) with the device's public key and answers with the rest of its config.
    pub async fn enroll(
        &self,
        actor: &Actor,
        user: Option<&str>,
        request: EnrollmentRequest,
    ) -> Result<EnrollmentAnswer> {
        let peer = self
            .create(actor, request.into_new_peer(user.map(str::to_string)))
            .await?;
        let config = self.client_config(actor, peer.id.as_str()).await?;
        EnrollmentAnswer::new(peer.id, peer.kind, peer.public_key, config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::KeyPair;

    fn answer(public_key: WgKey) -> EnrollmentAnswer {
        EnrollmentAnswer {
            profile_id: "7b0e7a36-5d0f-4a57-9b7a-2a5d1c7e0f11".parse().expect("id"),
            profile_name: "phone".parse().expect("name"),
            kind: PeerKind::Mfa,
            address_v4: "10.15.91.7".parse().expect("a"),
            address_v6: "fd15:91::7".parse().expect("a"),
            dns: vec!["10.15.91.1".parse().expect("a")],
            public_key,
            server_public_key: KeyPair::generate().public,
            preshared_key: WgKey::generate_preshared(),
            endpoint_host: "vpn.example.org".into(),
            endpoint_port: 443,
        }
    }

    #[test]
    fn request_validates_name_and_key() {
        let kp = KeyPair::generate();
        let r =
            EnrollmentRequest::new("phone", &kp.public.to_base64(), PeerKind::Mfa).expect("valid");
        assert_eq!(r.name.as_str(), "phone");
        let err =
            EnrollmentRequest::new("phone", "not-a-key", PeerKind::Wireguard).expect_err("bad key");
        assert_eq!(err.kind(), crate::ErrorKind::InvalidInput);
        assert!(EnrollmentRequest::new("", &kp.public.to_base64(), PeerKind::Wireguard).is_err());
        let json = r.to_json().expect("json");
        assert_eq!(EnrollmentRequest::from_json(&json).expect("back"), r);
        let err = EnrollmentRequest::from_json(r#"{"name":"x","public_key":"abc"}"#)
            .expect_err("bad key");
        assert!(err.to_string().contains("enrollment request"), "{err}");
    }

    #[test]
    fn answer_renders_with_the_matching_private_key_only() {
        let kp = KeyPair::generate();
        let a = answer(kp.public.clone());
        let text = a.client_config(&kp.private).expect("match").render();
        assert!(
            text.contains(&format!("PrivateKey = {}\n", kp.private)),
            "{text}"
        );
        assert!(text.contains("Endpoint = vpn.example.org:443\n"), "{text}");
        let other = KeyPair::generate();
        let err = a.client_config(&other.private).expect_err("mismatch");
        assert_eq!(err.kind(), crate::ErrorKind::InvalidInput);
        let json = a.to_json().expect("json");
        assert_eq!(EnrollmentAnswer::from_json(&json).expect("back"), a);
    }

    #[tokio::test]
    async fn enroll_registers_only_the_public_key() {
        use crate::{Config, Mistborn};
        let dir = tempfile::tempdir().expect("tmp");
        let m = Mistborn::open(Config {
            data_dir: dir.path().into(),
            endpoint: "vpn.example.org".into(),
            ..Config::default()
        })
        .await
        .expect("open");
        let kp = KeyPair::generate();
        let req = EnrollmentRequest::new("phone", &kp.public.to_base64(), PeerKind::Mfa)
            .expect("request");
        let ans = m
            .peers()
            .enroll(&Actor::System, Some("admin"), req.clone())
            .await
            .expect("enroll");
        let peer = m
            .peers()
            .get(&Actor::System, ans.profile_id.as_str())
            .await
            .expect("stored");
        assert!(!peer.server_generated_key);
        assert_eq!(peer.public_key, kp.public);
        assert_eq!(peer.kind, PeerKind::Mfa);
        let server_side = m
            .peers()
            .client_config(&Actor::System, ans.profile_id.as_str())
            .await
            .expect("config")
            .render();
        let device_side = ans.client_config(&kp.private).expect("render").render();
        assert_eq!(
            device_side.replace(
                &kp.private.to_base64(),
                super::super::DEVICE_KEY_PLACEHOLDER
            ),
            server_side
        );
        let mut again = req;
        again.name = "tablet".parse().expect("name");
        let err = m
            .peers()
            .enroll(&Actor::System, Some("admin"), again)
            .await
            .expect_err("same key twice");
        assert_eq!(err.kind(), crate::ErrorKind::Conflict);
        m.close().await;
    }
}
