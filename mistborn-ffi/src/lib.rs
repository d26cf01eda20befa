//! UniFFI bindings of Mistborn for mobile companion apps (Kotlin, Swift, Python; generated into
//! `bindings/` by `scripts/gen-bindings.sh`). They cover what a phone needs to enroll itself:
//!
//! 1. [`generate_key_pair`] on the device; the private key stays there.
//! 2. [`enrollment_request`] + [`enrollment_request_json`]: the body the app sends to the server.
//! 3. [`parse_enrollment_answer`] on the server's JSON reply, then [`render_client_config`] with the
//!    device's private key: the config text, rendered by core exactly as the server would.
//! 4. [`qr_payload`] / [`qr_png`] to move a config to another device, [`parse_client_config`] and
//!    [`validate_key`] to check input before use.
//!
//! Every type crossing the boundary lives in [`types`]; every failure is a [`MistbornError`] whose
//! variant is core's `ErrorKind`.

uniffi::setup_scaffolding!();

pub mod types;

use mistborn_core::crypto::{self, WgKey};
use mistborn_core::peers;

pub use types::{
    ClientConfig, EnrollmentAnswer, EnrollmentRequest, KeyPair, ListenPort, MistbornError,
    ProfileKind,
};

type Result<T, E = MistbornError> = std::result::Result<T, E>;

/// A fresh WireGuard key pair, made from the device's own randomness.
#[uniffi::export]
pub fn generate_key_pair() -> KeyPair {
    crypto::KeyPair::generate().into()
}

/// Checks a base64 WireGuard key (public, private or preshared) and returns it normalized.
#[uniffi::export]
pub fn validate_key(key: String) -> Result<String> {
    Ok(key.parse::<WgKey>()?.to_base64())
}

/// The public key belonging to a base64 private key.
#[uniffi::export]
pub fn public_key_from_private(private_key: String) -> Result<String> {
    Ok(private_key.parse::<WgKey>()?.public().to_base64())
}

/// A validated enrollment request for a profile named `profile_name` with the device's public key
/// (default port, no client-to-client; change the record's fields to choose otherwise).
#[uniffi::export]
pub fn enrollment_request(
    profile_name: String,
    public_key: String,
    kind: ProfileKind,
) -> Result<EnrollmentRequest> {
    Ok(peers::EnrollmentRequest::new(&profile_name, &public_key, kind.into())?.into())
}

/// The request as the JSON body the Mistborn server expects (validated first).
#[uniffi::export]
pub fn enrollment_request_json(request: EnrollmentRequest) -> Result<String> {
    Ok(peers::EnrollmentRequest::try_from(request)?.to_json()?)
}

/// Parses and validates the server's JSON answer to an enrollment.
#[uniffi::export]
pub fn parse_enrollment_answer(json: String) -> Result<EnrollmentAnswer> {
    Ok(peers::EnrollmentAnswer::from_json(&json)?.into())
}

/// The device's config text: the server's answer completed with the device's own private key,
/// which must be the private half of the enrolled public key.
#[uniffi::export]
pub fn render_client_config(answer: EnrollmentAnswer, private_key: String) -> Result<String> {
    let answer = peers::EnrollmentAnswer::try_from(answer)?;
    let key: WgKey = private_key.parse()?;
    Ok(answer.client_config(&key)?.render())
}

/// Parses and checks a client config (file content or scanned QR text).
#[uniffi::export]
pub fn parse_client_config(text: String) -> Result<ClientConfig> {
    Ok(peers::ClientConfig::parse(&text)?.into())
}

/// The text to put in a QR code for a config: the config checked and rendered in canonical form,
/// as the WireGuard apps scan it.
#[uniffi::export]
pub fn qr_payload(config_text: String) -> Result<String> {
    Ok(peers::ClientConfig::parse(&config_text)?.render())
}

/// A QR code of `payload` as PNG bytes, `scale` pixels per module (clamped to 1-32).
#[uniffi::export]
pub fn qr_png(payload: String, scale: u32) -> Result<Vec<u8>> {
    Ok(peers::qr_png(&payload, scale)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer_for(public_key: &str) -> EnrollmentAnswer {
        EnrollmentAnswer {
            profile_id: "7b0e7a36-5d0f-4a57-9b7a-2a5d1c7e0f11".into(),
            profile_name: "phone".into(),
            kind: ProfileKind::Wireguard,
            address_v4: "10.15.91.9".into(),
            address_v6: "fd15:91::9".into(),
            dns: vec!["10.15.91.1".into(), "fd15:91::1".into()],
            public_key: public_key.into(),
            server_public_key: generate_key_pair().public_key,
            preshared_key: generate_key_pair().public_key,
            endpoint_host: "vpn.example.org".into(),
            endpoint_port: 51820,
        }
    }

    #[test]
    fn enroll_render_parse() {
        let kp = generate_key_pair();
        assert_eq!(
            public_key_from_private(kp.private_key.clone()).expect("pub"),
            kp.public_key
        );
        let req = enrollment_request("phone".into(), kp.public_key.clone(), ProfileKind::Mfa)
            .expect("request");
        let json = enrollment_request_json(req).expect("json");
        assert!(json.contains(&kp.public_key) && !json.contains(&kp.private_key));
        let text = render_client_config(answer_for(&kp.public_key), kp.private_key.clone())
            .expect("render");
        let parsed = parse_client_config(text.clone()).expect("parse");
        assert_eq!(parsed.private_key.as_deref(), Some(kp.private_key.as_str()));
        assert_eq!(parsed.endpoint, "vpn.example.org:51820");
        assert_eq!(qr_payload(text.clone()).expect("payload"), text);
        assert!(qr_png(text, 4).expect("png").starts_with(b"\x89PNG"));
    }

    #[test]
    fn errors_carry_kind_and_code() {
        let err = validate_key("nope".into()).expect_err("bad key");
        assert!(
            matches!(&err, MistbornError::InvalidInput { code, .. } if code == "invalid_input"),
            "{err:?}"
        );
        let other = generate_key_pair();
        let err = render_client_config(
            answer_for(&other.public_key),
            generate_key_pair().private_key,
        )
        .expect_err("wrong key");
        assert!(err.to_string().contains("does not belong"), "{err}");
        let mut bad = answer_for(&other.public_key);
        bad.address_v4 = "10.15.91".into();
        let err = render_client_config(bad, other.private_key).expect_err("bad address");
        assert!(err.to_string().contains("address_v4"), "{err}");
        assert!(parse_enrollment_answer("{}".into()).is_err());
    }
}
