//! Key material: WireGuard keys as a validated newtype, secrets sealed at rest with the data dir's key
//! file, and password/token hashing.

mod hashing;
mod keys;
mod private_files;
mod secret_box;

pub use hashing::{TOKEN_PREFIX, hash_password, hash_token, new_token, verify_password};
pub use keys::{KeyPair, WgKey};
pub(crate) use private_files::{
    precreate_private, private_dir, private_if_exists, write_new_private_file,
};
pub use secret_box::SecretBox;
pub(crate) use secret_box::write_private_file;
