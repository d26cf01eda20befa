//! Secrets at rest (private keys, later TOTP secrets) are sealed with XChaCha20-Poly1305 under a
//! 32-byte key file in the data dir, created mode 0600 on first start. A database dump alone
//! therefore does not reveal device keys.

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand::RngCore;

use crate::error::{Error, Result};

const NONCE_LEN: usize = 24;
const PREFIX: &str = "v1:";

/// Seals and opens secrets with the data dir's key.
#[derive(Clone)]
pub struct SecretBox {
    cipher: XChaCha20Poly1305,
    key: [u8; 32],
}

impl std::fmt::Debug for SecretBox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretBox(..)")
    }
}

impl SecretBox {
    /// From raw key bytes.
    pub fn from_key(key: [u8; 32]) -> Self {
        Self {
            cipher: XChaCha20Poly1305::new(&key.into()),
            key,
        }
    }

    /// Opens `path`, creating it with a random key (mode 0600) when missing.
    pub fn open_or_create(path: &Path) -> Result<Self> {
        match std::fs::read(path) {
            Ok(bytes) => {
                let key: [u8; 32] = bytes.try_into().map_err(|b: Vec<u8>| {
                    Error::Crypto(format!(
                        "{} holds {} bytes, expected 32; restore it from a backup",
                        path.display(),
                        b.len()
                    ))
                })?;
                let mode = std::fs::metadata(path)
                    .map_err(|e| Error::io(path, e))?
                    .permissions()
                    .mode();
                if mode & 0o077 != 0 {
                    tracing::warn!(path = %path.display(), "key file is readable by others; tightening to 0600");
                    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
                        .map_err(|e| Error::io(path, e))?;
                }
                Ok(Self::from_key(key))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let mut key = [0u8; 32];
                rand::rng().fill_bytes(&mut key);
                write_private_file(path, &key)?;
                Ok(Self::from_key(key))
            }
            Err(e) => Err(Error::io(path, e)),
        }
    }

    /// The raw key, for backups.
    pub fn key_bytes(&self) -> &[u8; 32] {
        &self.key
    }

    /// Seals `plain` into printable text.
    pub fn seal(&self, plain: &[u8]) -> Result<String> {
        let mut nonce = [0u8; NONCE_LEN];
        rand::rng().fill_bytes(&mut nonce);
        let ct = self
            .cipher
            .encrypt(XNonce::from_slice(&nonce), plain)
            .map_err(|_| Error::Crypto("encryption failed".into()))?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&ct);
        Ok(format!("{PREFIX}{}", STANDARD.encode(out)))
    }

    /// Opens text made by [`SecretBox::seal`] with the same key.
    pub fn open(&self, sealed: &str) -> Result<Vec<u8>> {
        let body = sealed
            .strip_prefix(PREFIX)
            .ok_or_else(|| Error::Crypto("sealed value has an unknown format".into()))?;
        let raw = STANDARD
            .decode(body)
            .map_err(|_| Error::Crypto("sealed value is not base64".into()))?;
        if raw.len() < NONCE_LEN {
            return Err(Error::Crypto("sealed value is truncated".into()));
        }
        let (nonce, ct) = raw.split_at(NONCE_LEN);
        self.cipher.decrypt(XNonce::from_slice(nonce), ct).map_err(|_| {
            Error::Crypto(
                "cannot decrypt a stored secret: the data dir's secret.key does not match the database".into(),
            )
        })
    }
}

/// Writes `bytes` to a new file readable only by its owner.
pub(crate) fn write_private_file(path: &Path, bytes: &[u8]) -> Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    }
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| Error::io(path, e))?;
    // `mode` only applies on creation; an existing file keeps its bits otherwise.
    f.set_permissions(std::fs::Permissions::from_mode(0o600))
        .map_err(|e| Error::io(path, e))?;
    f.write_all(bytes).map_err(|e| Error::io(path, e))?;
    f.sync_all().map_err(|e| Error::io(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_open_and_wrong_key() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("secret.key");
        let a = SecretBox::open_or_create(&path).expect("create");
        assert_eq!(
            std::fs::metadata(&path).expect("meta").permissions().mode() & 0o777,
            0o600
        );
        let sealed = a.seal(b"hello").expect("seal");
        let again = SecretBox::open_or_create(&path).expect("reopen");
        assert_eq!(again.open(&sealed).expect("open"), b"hello");
        let other = SecretBox::from_key([7; 32]);
        assert!(other.open(&sealed).is_err());
        assert!(a.open("v1:AAAA").is_err());
        assert!(a.open("garbage").is_err());
    }
}
