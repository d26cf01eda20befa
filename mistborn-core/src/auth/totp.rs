//! TOTP codes (RFC 6238: SHA-1, 6 digits, 30 s steps, one step of skew) on totp-rs, with the step
//! that matched reported back so a code can never be used twice.

use totp_rs::{Algorithm, Builder, Secret, Totp};

use crate::error::{Error, Result};

/// Seconds per step.
pub const STEP: u64 = 30;
/// Digits per code.
pub const DIGITS: usize = 6;
/// Steps accepted before and after the current one (clock drift, typing time).
pub const SKEW: u64 = 1;
/// Secret length: 160 bits, as RFC 4226 recommends.
pub const SECRET_LEN: usize = 20;

/// A user's TOTP secret.
#[derive(Clone, PartialEq, Eq)]
pub struct TotpSecret(Vec<u8>);

impl std::fmt::Debug for TotpSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TotpSecret(..)")
    }
}

impl TotpSecret {
    /// A fresh random secret.
    pub fn generate() -> Self {
        use rand::RngCore;
        let mut b = vec![0u8; SECRET_LEN];
        rand::rng().fill_bytes(&mut b);
        Self(b)
    }

    /// From stored bytes.
    pub fn from_bytes(bytes: Vec<u8>) -> Result<Self> {
        if bytes.len() < 16 {
            return Err(Error::Corrupt(
                "a stored TOTP secret is shorter than 128 bits".into(),
            ));
        }
        Ok(Self(bytes))
    }

    /// From the base32 text an authenticator app is given.
    pub fn from_base32(text: &str) -> Result<Self> {
        let secret = Secret::try_from_base32(text.trim())
            .map_err(|e| Error::invalid("secret", format!("not base32: {e}")))?;
        Self::from_bytes(secret.as_bytes().to_vec())
    }

    /// The raw bytes, for sealing.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// Base32 text, for typing into an authenticator app.
    pub fn to_base32(&self) -> String {
        Secret::new(self.0.clone().into_boxed_slice()).to_base32()
    }

    fn totp(&self, account: &str, issuer: &str) -> Result<Totp> {
        Builder::new()
            .with_algorithm(Algorithm::SHA1)
            .with_digits(DIGITS as u8)
            .with_skew(SKEW as u16)
            .with_step_duration(STEP)
            .with_secret(Secret::new(self.0.clone().into_boxed_slice()))
            .with_account_name(account.replace(':', ""))
            .with_issuer(Some(issuer.replace(':', "")))
            .build()
            .map_err(|e| Error::Crypto(format!("TOTP: {e}")))
    }

    /// The `otpauth://` URI authenticator apps scan.
    pub fn otpauth_uri(&self, account: &str, issuer: &str) -> Result<String> {
        self.totp(account, issuer)?
            .to_url()
            .map_err(|e| Error::invalid("account", format!("cannot make an otpauth URI: {e}")))
    }

    /// The code for Unix time `now` (for tests and enrollment hints).
    pub fn code_at(&self, now: u64) -> Result<String> {
        Ok(self.totp("x", "Mistborn")?.generate(now).to_string())
    }

    /// The step a code is valid for at `now`, newer than `last_step`; `None` if it is wrong,
    /// expired or already used.
    pub fn verify(&self, code: &str, now: u64, last_step: Option<u64>) -> Result<Option<u64>> {
        let code = code.trim();
        if code.len() != DIGITS || !code.bytes().all(|b| b.is_ascii_digit()) {
            return Ok(None);
        }
        // totp-rs compares in constant time and reports the matching step; accepting each step only
        // once is ours to do (RFC 6238 section 5.2).
        let step = self.totp("x", "Mistborn")?.check(code, now);
        Ok(step.filter(|step| last_step.is_none_or(|last| *step > last)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 appendix B secret (SHA-1).
    fn rfc() -> TotpSecret {
        TotpSecret::from_bytes(b"12345678901234567890".to_vec()).expect("secret")
    }

    #[test]
    fn rfc6238_vectors() {
        // The RFC's 8-digit codes end in these 6 digits.
        for (t, code) in [
            (59u64, "287082"),
            (1111111109, "081804"),
            (1234567890, "005924"),
        ] {
            assert_eq!(rfc().code_at(t).expect("code"), code);
        }
    }

    #[test]
    fn step_edges_and_skew() {
        let s = rfc();
        let at = 1_000_000_020; // a step starts here: 1_000_000_020 = 33_333_334 * 30
        let code = s.code_at(at).expect("code");
        let step = at / STEP;
        // Valid through its own step and one step either side, not beyond.
        assert_eq!(s.verify(&code, at, None).expect("v"), Some(step));
        assert_eq!(s.verify(&code, at + STEP - 1, None).expect("v"), Some(step));
        assert_eq!(
            s.verify(&code, at + 2 * STEP - 1, None).expect("v"),
            Some(step)
        );
        assert_eq!(s.verify(&code, at + 2 * STEP, None).expect("v"), None);
        assert_eq!(s.verify(&code, at - STEP, None).expect("v"), Some(step));
        assert_eq!(s.verify(&code, at - STEP - 1, None).expect("v"), None);
    }

    #[test]
    fn replay_and_garbage_are_refused() {
        let s = rfc();
        let now = 1_700_000_000;
        let code = s.code_at(now).expect("code");
        let step = s.verify(&code, now, None).expect("v").expect("valid");
        assert_eq!(s.verify(&code, now, Some(step)).expect("v"), None, "replay");
        assert_eq!(
            s.verify(&code, now + 5, Some(step)).expect("v"),
            None,
            "replay later in the step"
        );
        for bad in ["", "12345", "1234567", "abcdef", "12 456"] {
            assert_eq!(s.verify(bad, now, None).expect("v"), None, "{bad}");
        }
    }

    #[test]
    fn uri_names_issuer_and_account() {
        let uri = TotpSecret::generate()
            .otpauth_uri("bob", "Mistborn")
            .expect("uri");
        assert!(uri.starts_with("otpauth://totp/Mistborn:bob?"), "{uri}");
        assert!(uri.contains("secret="));
    }
}
