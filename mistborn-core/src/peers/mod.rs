//! WireGuard profiles: several per user, tunnel address allocation (IPv4 + IPv6), keys, the client
//! config text and its QR code.

mod alloc;
mod dataplane;
mod enroll;
mod parse;
mod qr;
mod render;
mod service;
mod store;
mod types;

pub use alloc::AddressPool;
pub use dataplane::{DataplaneProfile, SkippedProfile, StoredProfile};
pub use enroll::{EnrollmentAnswer, EnrollmentRequest};
pub use qr::{qr_png, qr_terminal};
pub use render::{ClientConfig, DEVICE_KEY_PLACEHOLDER};
pub use service::Peers;
pub(crate) use service::key_from_bytes;
pub use types::{
    ListenPort, NewPeer, Peer, PeerId, PeerKind, PeerUpdate, PeersConfig, ProfileName,
};
