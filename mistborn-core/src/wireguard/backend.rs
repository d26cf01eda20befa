//! The backend trait and the choice of backend from the config (`auto` picks the kernel module when
//! it is there, else userspace), with a clear reason when neither works.

use super::desired::ServerSide;
use super::plan::{Diff, ObservedInterface};
use super::wgctl::WgControlBackend;
use crate::config::{DataplaneBackend, WireGuardConfig};
use crate::error::{Error, Result};
use crate::status::ActiveBackend;

/// A WireGuard implementation the reconciler drives. Calls block (netlink, UAPI socket); the data
/// plane runs them on its own thread.
pub trait WireGuardBackend: Send {
    /// Which implementation this is.
    fn kind(&self) -> ActiveBackend;
    /// Makes the interface exist with the server's addresses, link up and subnet routes.
    fn ensure_interface(&mut self, server: &ServerSide) -> Result<()>;
    /// Reads key, port, peers and their statistics.
    fn read(&mut self) -> Result<ObservedInterface>;
    /// Applies a diff (only the peers it names are touched).
    fn apply(&mut self, diff: &Diff) -> Result<()>;
    /// Fails when the interface is gone (e.g. wireguard-go exited), so the reconciler restarts it.
    fn check(&mut self) -> Result<()> {
        Ok(())
    }
    /// Takes the interface down on purpose (`wireguard.keep_on_stop = false`): stops a
    /// wireguard-go it started and removes the link (an adopted wireguard-go exits when its link
    /// goes; a kernel interface is deleted). Clients need a new handshake after the next start.
    fn shutdown(&mut self) {}
    /// A clean stop that keeps the tunnel up (the default): the interface, its addresses and
    /// peers, and a wireguard-go it started keep running, so a restart is invisible to clients;
    /// the next start adopts and reconciles them.
    fn detach(&mut self) {}
}

/// Opens the configured backend in the current network namespace. `Auto` tries the kernel module,
/// then userspace; the error says why each was not possible.
pub fn open_backend(
    config: &WireGuardConfig,
    log_dir: &std::path::Path,
) -> Result<Box<dyn WireGuardBackend>> {
    let name = &config.interface;
    match config.backend {
        DataplaneBackend::None => Err(Error::DataPlane(
            "wireguard.backend is 'none': the data plane is off by configuration".into(),
        )),
        DataplaneBackend::Kernel => Ok(Box::new(WgControlBackend::kernel(name)?)),
        DataplaneBackend::Userspace => Ok(Box::new(WgControlBackend::userspace(name, log_dir)?)),
        DataplaneBackend::Auto => {
            // An interface that already exists decides for itself.
            if let Some(kind) = WgControlBackend::existing_kind(name)? {
                return Ok(Box::new(match kind {
                    ActiveBackend::Kernel => WgControlBackend::kernel(name)?,
                    _ => WgControlBackend::userspace(name, log_dir)?,
                }));
            }
            let kernel = match WgControlBackend::kernel_available(name) {
                Ok(()) => return Ok(Box::new(WgControlBackend::kernel(name)?)),
                Err(e) => e,
            };
            match WgControlBackend::userspace(name, log_dir) {
                Ok(b) => {
                    tracing::info!(reason = %kernel, "kernel WireGuard not usable; using userspace");
                    Ok(Box::new(b))
                }
                Err(user) => Err(Error::DataPlane(format!(
                    "neither WireGuard backend works: kernel: {kernel}; userspace: {user}"
                ))),
            }
        }
    }
}
