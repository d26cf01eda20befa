//! The WireGuard data plane: one server interface carrying every stored profile.
//!
//! The database is the truth. [`desired`] turns the stored profiles into the interface's wanted
//! state, [`plan`] compares it with what the device holds and yields a minimal [`Diff`] (adding one
//! profile touches only that peer; peers the store does not know are removed), and a
//! [`WireGuardBackend`] applies it: the kernel module over netlink or a userspace implementation
//! (wireguard-go) over its UAPI socket, both through wireguard-control. Interface addresses, link
//! state and routes go through rtnetlink. [`DataPlane`] runs the reconciler: at start, after every
//! profile change, and on a timer that also polls peer statistics into the
//! [`status`](crate::status) stream.

mod backend;
mod dataplane;
mod desired;
mod memory;
mod netlink;
mod plan;
mod userspace;
mod wgctl;

pub use backend::{WireGuardBackend, open_backend};
pub use dataplane::{DataPlane, DataPlaneOptions, PeerGate};
pub use desired::{DesiredInterface, DesiredPeer, DisplayOrder, PeerSpec, ServerSide, desired};
pub use memory::MemoryBackend;
pub use plan::{Diff, ObservedInterface, ObservedPeer, plan, plan_peers};
pub use wgctl::WgControlBackend;

#[cfg(test)]
mod tests;
