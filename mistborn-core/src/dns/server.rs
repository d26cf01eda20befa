//! Sockets: the handler served over UDP and TCP on each configured address (the tunnel addresses
//! in production, a loopback port for tests and unprivileged runs).

use std::net::SocketAddr;
use std::time::Duration;

use hickory_server::Server;
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::handler::DnsHandler;
use crate::error::{Error, Result};

/// Idle TCP connections are closed after this long.
const TCP_TIMEOUT: Duration = Duration::from_secs(10);

/// A running DNS server; stops when [`DnsServer::shutdown`] is called or it is dropped.
#[derive(Debug)]
pub struct DnsServer {
    addrs: Vec<SocketAddr>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl DnsServer {
    /// Binds UDP and TCP on every address (port 0 picks one free port for both) and serves.
    pub async fn start(handler: DnsHandler, listen: &[SocketAddr]) -> Result<Self> {
        if listen.is_empty() {
            return Err(Error::Config("dns: no address to listen on".into()));
        }
        let mut server = Server::new(handler);
        let mut addrs = Vec::new();
        for &addr in listen {
            let (udp, tcp) = bind_pair(addr).await?;
            widen_receive_buffer(&udp);
            addrs.push(udp.local_addr().map_err(|e| bind_error(addr, e))?);
            server.register_socket(udp);
            server.register_listener(tcp, TCP_TIMEOUT, 64 * 1024);
        }
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            tokio::select! {
                r = server.block_until_done() => {
                    if let Err(e) = r {
                        tracing::error!(error = %e, "DNS server stopped");
                    }
                }
                _ = stopped => {
                    if let Err(e) = server.shutdown_gracefully().await {
                        tracing::warn!(error = %e, "DNS server shutdown");
                    }
                }
            }
        });
        tracing::info!(?addrs, "serving DNS");
        Ok(Self {
            addrs,
            stop: Some(stop),
            task: Some(task),
        })
    }

    /// The bound addresses (UDP and TCP share each).
    pub fn local_addrs(&self) -> &[SocketAddr] {
        &self.addrs
    }

    /// Stops serving and waits for the sockets to close.
    pub async fn shutdown(mut self) {
        self.stop().await;
    }

    /// Stops serving (for owners that cannot give the server away).
    pub async fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for DnsServer {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// UDP receive buffer asked for: at 20k qps the default (208 KiB, ~270 queries) overflows after
/// ~15 ms without a read (a descheduled thread on a busy host); 4 MiB rides out a few hundred.
const UDP_RECEIVE_BUFFER: usize = 4 << 20;

/// Widens the socket's receive buffer, past `net.core.rmem_max` when privileged.
fn widen_receive_buffer(udp: &UdpSocket) {
    if rustix::net::sockopt::set_socket_recv_buffer_size_force(udp, UDP_RECEIVE_BUFFER).is_err()
        && let Err(e) = rustix::net::sockopt::set_socket_recv_buffer_size(udp, UDP_RECEIVE_BUFFER)
    {
        tracing::debug!(error = %e, "cannot widen the DNS receive buffer");
    }
}

fn bind_error(addr: SocketAddr, e: std::io::Error) -> Error {
    Error::Config(format!("dns: cannot listen on {addr}: {e}"))
}

/// UDP and TCP on the same port; with port 0, retries until one port is free for both. Sockets
/// the service manager passed for `addr` (socket activation) are used instead of binding.
async fn bind_pair(addr: SocketAddr) -> Result<(UdpSocket, TcpListener)> {
    let passed_udp = super::inherited::udp(addr).map_err(|e| bind_error(addr, e))?;
    let passed_tcp = super::inherited::tcp(addr).map_err(|e| bind_error(addr, e))?;
    if passed_udp.is_some() || passed_tcp.is_some() {
        let udp = match passed_udp {
            Some(s) => s,
            None => UdpSocket::bind(addr)
                .await
                .map_err(|e| bind_error(addr, e))?,
        };
        let tcp = match passed_tcp {
            Some(s) => s,
            None => TcpListener::bind(addr)
                .await
                .map_err(|e| bind_error(addr, e))?,
        };
        return Ok((udp, tcp));
    }
    let attempts = if addr.port() == 0 { 20 } else { 1 };
    let mut last = None;
    for _ in 0..attempts {
        let udp = UdpSocket::bind(addr)
            .await
            .map_err(|e| bind_error(addr, e))?;
        let bound = udp.local_addr().map_err(|e| bind_error(addr, e))?;
        match TcpListener::bind(bound).await {
            Ok(tcp) => return Ok((udp, tcp)),
            Err(e) => last = Some(bind_error(bound, e)),
        }
    }
    Err(last.unwrap_or_else(|| Error::Config(format!("dns: cannot listen on {addr}"))))
}
