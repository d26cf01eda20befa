//! The real backend on wireguard-control: the kernel module over generic netlink, or a userspace
//! implementation over its UAPI socket.

use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use ipnet::IpNet;
use wireguard_control::{Backend, Device, DeviceUpdate, InterfaceName, PeerConfigBuilder};

use super::backend::WireGuardBackend;
use super::desired::ServerSide;
use super::netlink::{self, LinkKind};
use super::plan::{Diff, ObservedInterface, ObservedPeer};
use super::userspace::{self, UserspaceProcess};
use crate::crypto::WgKey;
use crate::error::{Error, Result};
use crate::status::ActiveBackend;

const EOPNOTSUPP: i32 = 95;
const EPERM: i32 = 1;

/// A WireGuard interface driven through wireguard-control.
#[derive(Debug)]
pub struct WgControlBackend {
    name: String,
    iface: InterfaceName,
    backend: Backend,
    /// Where a spawned wireguard-go logs.
    log_dir: PathBuf,
    /// The userspace process, when we started it (an adopted one is not ours to stop).
    process: Option<UserspaceProcess>,
}

fn dataplane_err(what: &str, e: std::io::Error) -> Error {
    let hint = match netlink::errno(&e) {
        Some(EPERM) => ": the data plane needs root (or CAP_NET_ADMIN)",
        _ => "",
    };
    Error::DataPlane(format!("{what}: {e}{hint}"))
}

fn parse_name(name: &str) -> Result<InterfaceName> {
    name.parse()
        .map_err(|e| Error::Config(format!("wireguard.interface '{name}': {e}")))
}

impl WgControlBackend {
    fn new(name: &str, backend: Backend, log_dir: &Path) -> Result<Self> {
        Ok(Self {
            name: name.to_string(),
            iface: parse_name(name)?,
            backend,
            log_dir: log_dir.to_path_buf(),
            process: None,
        })
    }

    /// The kernel backend for interface `name`.
    pub fn kernel(name: &str) -> Result<Self> {
        Self::new(name, Backend::Kernel, Path::new("."))
    }

    /// The userspace backend for `name` (checks that it could start: TUN device, program).
    pub fn userspace(name: &str, log_dir: &Path) -> Result<Self> {
        if !userspace::socket_answers(name) {
            userspace::preflight()?;
        }
        Self::new(name, Backend::Userspace, log_dir)
    }

    /// Which backend an existing interface called `name` in this namespace uses, if it exists.
    pub fn existing_kind(name: &str) -> Result<Option<ActiveBackend>> {
        match netlink::get_link(name).map_err(|e| dataplane_err("reading links", e))? {
            None => Ok(None),
            Some(l) if l.kind == LinkKind::WireGuard => Ok(Some(ActiveBackend::Kernel)),
            Some(_) => Ok(Some(ActiveBackend::Userspace)),
        }
    }

    /// Whether the kernel can make WireGuard links: creates and deletes a probe link `name`.
    pub fn kernel_available(name: &str) -> Result<()> {
        match netlink::create_wireguard_link(name) {
            Ok(()) => {
                if let Ok(Some(l)) = netlink::get_link(name) {
                    let _ = netlink::delete_link(l.index);
                }
                Ok(())
            }
            Err(e) if netlink::errno(&e) == Some(EOPNOTSUPP) => Err(Error::DataPlane(
                "the kernel has no WireGuard module (modprobe wireguard failed or it is not built)"
                    .into(),
            )),
            Err(e) => Err(dataplane_err("creating a kernel WireGuard link", e)),
        }
    }

    fn ensure_userspace(&mut self) -> Result<()> {
        if let Some(p) = &mut self.process {
            if p.check().is_ok() {
                return Ok(());
            }
            self.process = None;
        }
        let link = netlink::get_link(&self.name).map_err(|e| dataplane_err("reading links", e))?;
        let answers = userspace::socket_answers(&self.name);
        match (link, answers) {
            (Some(l), _) if l.kind == LinkKind::WireGuard => Err(Error::DataPlane(format!(
                "{} is a kernel WireGuard interface; set wireguard.backend to kernel or auto",
                self.name
            ))),
            (Some(_), true) => {
                tracing::info!(interface = %self.name, "adopting the running userspace interface");
                Ok(())
            }
            (None, true) => Err(Error::DataPlane(format!(
                "{} answers, but no interface {} exists in this network namespace: a wireguard-go in another namespace owns that name (the socket directory is shared); choose a unique wireguard.interface",
                userspace::socket_path(&self.name).display(),
                self.name
            ))),
            (Some(l), false) => Err(Error::DataPlane(format!(
                "interface {} exists ({:?}) but no WireGuard implementation serves {}",
                self.name,
                l.kind,
                userspace::socket_path(&self.name).display()
            ))),
            (None, false) => {
                let program = userspace::preflight()?;
                self.process = Some(UserspaceProcess::start(
                    &program,
                    &self.name,
                    &self.log_dir,
                )?);
                Ok(())
            }
        }
    }
}

fn to_key(k: &wireguard_control::Key) -> WgKey {
    WgKey::from_bytes(k.0)
}

fn spec_builder(spec: &super::desired::PeerSpec) -> PeerConfigBuilder {
    let mut b = PeerConfigBuilder::new(&spec.public_key.to_wg()).replace_allowed_ips();
    if let Some(psk) = &spec.preshared_key {
        b = b.set_preshared_key(psk.to_wg());
    }
    for ip in &spec.allowed_ips {
        b = b.add_allowed_ip(ip.addr(), ip.prefix_len());
    }
    b
}

impl WireGuardBackend for WgControlBackend {
    fn kind(&self) -> ActiveBackend {
        match self.backend {
            Backend::Kernel => ActiveBackend::Kernel,
            _ => ActiveBackend::Userspace,
        }
    }

    fn ensure_interface(&mut self, server: &ServerSide) -> Result<()> {
        match self.backend {
            Backend::Kernel => netlink::create_wireguard_link(&self.name).map_err(|e| {
                if netlink::errno(&e) == Some(EOPNOTSUPP) {
                    Error::DataPlane("the kernel has no WireGuard module".into())
                } else {
                    dataplane_err(&format!("creating {}", self.name), e)
                }
            })?,
            _ => self.ensure_userspace()?,
        }
        let link = netlink::get_link(&self.name)
            .map_err(|e| dataplane_err("reading links", e))?
            .ok_or_else(|| Error::DataPlane(format!("interface {} vanished", self.name)))?;
        netlink::configure(
            link.index,
            &[IpNet::V4(server.address_v4), IpNet::V6(server.address_v6)],
        )
        .map_err(|e| dataplane_err(&format!("configuring {} addresses", self.name), e))
    }

    fn read(&mut self) -> Result<ObservedInterface> {
        let dev = Device::get(&self.iface, self.backend)
            .map_err(|e| dataplane_err(&format!("reading {}", self.name), e))?;
        let zero = [0u8; 32];
        let peers = dev
            .peers
            .into_iter()
            .map(|p| {
                let mut allowed_ips: Vec<IpNet> = p
                    .config
                    .allowed_ips
                    .iter()
                    .filter_map(|a| IpNet::new(a.address, a.cidr).ok())
                    .collect();
                allowed_ips.sort();
                let handshake = p.stats.last_handshake_time.and_then(|t| {
                    t.duration_since(UNIX_EPOCH)
                        .ok()
                        .map(|d| d.as_secs() as i64)
                });
                (
                    to_key(&p.config.public_key),
                    ObservedPeer {
                        preshared_key: p
                            .config
                            .preshared_key
                            .filter(|k| k.0 != zero)
                            .as_ref()
                            .map(to_key),
                        allowed_ips,
                        endpoint: p.config.endpoint,
                        latest_handshake: handshake,
                        rx_bytes: p.stats.rx_bytes,
                        tx_bytes: p.stats.tx_bytes,
                    },
                )
            })
            .collect();
        Ok(ObservedInterface {
            private_key: dev.private_key.as_ref().map(to_key),
            listen_port: dev.listen_port.filter(|p| *p != 0),
            peers,
        })
    }

    fn apply(&mut self, diff: &Diff) -> Result<()> {
        if diff.is_empty() {
            return Ok(());
        }
        let mut update = DeviceUpdate::new();
        if let Some(k) = &diff.private_key {
            update = update.set_private_key(k.to_wg());
        }
        if let Some(p) = diff.listen_port {
            update = update.set_listen_port(p);
        }
        // Removals first, so an address freed by a deleted profile can go to a new one.
        for k in &diff.remove {
            update = update.remove_peer_by_key(&k.to_wg());
        }
        let peers: Vec<PeerConfigBuilder> = diff
            .add
            .iter()
            .chain(&diff.update)
            .map(spec_builder)
            .collect();
        update = update.add_peers(&peers);
        update.apply(&self.iface, self.backend).map_err(|e| {
            // wireguard-control reports a refused setting only as a bare error; the usual cause
            // of a refused port is another socket on it.
            let hint = diff
                .listen_port
                .map(|p| format!(" (is UDP port {p} already in use in this network namespace?)"))
                .unwrap_or_default();
            dataplane_err(
                &format!("applying [{}] to {}{hint}", diff.summary(), self.name),
                e,
            )
        })
    }

    fn check(&mut self) -> Result<()> {
        match &mut self.process {
            Some(p) => p.check(),
            None if self.backend == Backend::Userspace
                && !userspace::socket_answers(&self.name) =>
            {
                Err(Error::DataPlane(format!(
                    "the userspace WireGuard serving {} is gone",
                    self.name
                )))
            }
            None => Ok(()),
        }
    }

    fn shutdown(&mut self) {
        if let Some(mut p) = self.process.take() {
            p.stop();
        }
        if let Ok(Some(l)) = netlink::get_link(&self.name) {
            match netlink::delete_link(l.index) {
                Ok(()) => tracing::info!(interface = %self.name, "WireGuard interface removed"),
                Err(e) => {
                    tracing::warn!(interface = %self.name, error = %e, "cannot remove the WireGuard interface")
                }
            }
        }
    }

    fn detach(&mut self) {
        if let Some(p) = self.process.take() {
            p.detach();
        }
    }
}
