//! The daemon: runs the planes and every periodic job of a Mistborn in order, supervises and
//! stops them. Every frontend (the `mistborn` binary, Python, an embedding program) starts the
//! same one with [`Daemon::start`] and gets a typed [`DaemonStatus`]; it adds only its own
//! listeners (the binary's HTTP API).
//!
//! Start order: the change watcher (other processes' writes become change events), the firewall
//! (its gate keeps peers off the tunnel until the table is in force; off with the data plane when
//! `wireguard.backend` is `none`, so an API-only server never touches the ruleset of its
//! namespace), the data plane, the DNS resolver, the reverse proxy, then the periodic jobs. Stop
//! order: jobs and proxy, firewall, data plane (the interface stays up for the next start when
//! `wireguard.keep_on_stop`), DNS last so clients keep their answers while the rest stops.

mod upkeep;
mod watch;

pub use watch::{ChangeWatcher, SQLITE_POLL};

use std::net::SocketAddr;

use serde::Serialize;
use tokio::task::JoinSet;

use crate::config::DataplaneBackend;
use crate::dns::Resolver;
use crate::error::{Error, Result};
use crate::firewall::{FirewallHandle, FirewallOptions, FirewallPlane, ForwardingStatus};
use crate::mistborn::Mistborn;
use crate::wireguard::{DataPlane, DataPlaneOptions};

/// How to run the daemon; [`DaemonOptions::default`] follows the configuration.
#[derive(Debug, Clone, Default)]
pub struct DaemonOptions {
    /// The data plane's options (`None`: from the configuration). The firewall's gate is added.
    pub dataplane: Option<DataPlaneOptions>,
    /// The firewall's options (`None`: from the configuration).
    pub firewall: Option<FirewallOptions>,
}

/// Whether a part of the daemon runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", content = "detail", rename_all = "snake_case")]
pub enum PartState {
    /// Running; what it does.
    On(String),
    /// Not running; why.
    Off(String),
}

impl PartState {
    /// Whether it runs.
    pub fn is_on(&self) -> bool {
        matches!(self, PartState::On(_))
    }
}

impl std::fmt::Display for PartState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PartState::On(d) => write!(f, "ON ({d})"),
            PartState::Off(why) => write!(f, "OFF: {why}"),
        }
    }
}

/// What the daemon runs, and what is off and why, as of [`Daemon::status`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DaemonStatus {
    /// The WireGuard interface and its peers.
    pub dataplane: PartState,
    /// Profiles the data plane left out, with the reason.
    pub skipped_profiles: Vec<(String, String)>,
    /// The nftables table.
    pub firewall: PartState,
    /// IP forwarding as the firewall last found it.
    pub forwarding: Option<ForwardingStatus>,
    /// The DNS resolver.
    pub dns: PartState,
    /// Where the resolver answers.
    pub dns_addrs: Vec<SocketAddr>,
    /// The reverse proxy (Caddy).
    pub proxy: PartState,
    /// Other processes' writes turned into change events.
    pub change_watcher: PartState,
    /// The periodic jobs that run.
    pub jobs: Vec<&'static str>,
}

/// A running daemon; [`Daemon::stop`] stops it in order.
#[derive(Debug)]
pub struct Daemon {
    m: Mistborn,
    firewall: Option<FirewallPlane>,
    dataplane: DataPlane,
    dns: Option<Resolver>,
    stop: tokio::sync::watch::Sender<bool>,
    tasks: JoinSet<&'static str>,
    /// The parts' states fixed at start (DNS, proxy, jobs); planes are read live.
    started: DaemonStatus,
}

/// What [`Daemon::stop`] did with the WireGuard interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InterfaceOnStop {
    /// The data plane was off: nothing to do.
    WasOff,
    /// Left up for the next start to adopt (`wireguard.keep_on_stop`).
    KeptUp,
    /// Taken down.
    TakenDown,
}

impl Daemon {
    /// Starts every part `m`'s configuration asks for, in order. A part that cannot run is off
    /// with its reason in the status (the API keeps being served); only a failure to read the
    /// store is an error.
    pub async fn start(m: &Mistborn, options: DaemonOptions) -> Result<Self> {
        let (stop, _) = tokio::sync::watch::channel(false);
        let mut tasks = JoinSet::new();
        let mut jobs = Vec::new();

        let watcher = ChangeWatcher::new(m).await?;
        tasks.spawn(run_until(watcher.run(stop.subscribe()), "change watcher"));
        let change_watcher = PartState::On(match m.store().engine() {
            crate::store::Engine::Postgres => "PostgreSQL LISTEN".into(),
            crate::store::Engine::Sqlite => format!("SQLite, every {} ms", SQLITE_POLL.as_millis()),
        });

        let firewall = if m.config().wireguard.backend == DataplaneBackend::None {
            None
        } else {
            let f = FirewallPlane::start_with(
                m,
                options
                    .firewall
                    .clone()
                    .unwrap_or_else(|| FirewallOptions::from_config(m.config())),
            );
            f.settled().await;
            Some(f)
        };
        let dataplane = DataPlane::start_with(
            m,
            DataPlaneOptions {
                gate: firewall.as_ref().map(|f| f.handle().peer_gate()),
                ..options
                    .dataplane
                    .clone()
                    .unwrap_or_else(|| DataPlaneOptions::from_config(m.config()))
            },
        );
        dataplane.settled().await;

        let (dns, dns_state) = if !m.config().dns.enabled {
            (None, PartState::Off("dns.enabled is false".into()))
        } else {
            match Resolver::start(m).await {
                Ok(r) => {
                    let state = PartState::On(format!("UDP and TCP on {:?}", r.local_addrs()));
                    (Some(r), state)
                }
                Err(e) => (
                    None,
                    PartState::Off(format!("{e}; set [dns] listen to serve elsewhere")),
                ),
            }
        };

        let proxy = match upkeep::start_proxy(m).await {
            Ok(Some(caddy)) => {
                let state = PartState::On(format!(
                    "{:?}, Caddyfile {}",
                    m.config().proxy.mode,
                    caddy.config_path().display()
                ));
                tasks.spawn(run_until(
                    upkeep::run(m.clone(), Some(caddy), stop.subscribe()),
                    "session expiry, certificates and proxy",
                ));
                state
            }
            Ok(None) => {
                tasks.spawn(run_until(
                    upkeep::run(m.clone(), None, stop.subscribe()),
                    "session expiry and certificates",
                ));
                PartState::Off(format!(
                    "set [proxy] mode = \"managed\" to serve home.{} and services",
                    m.config().dns_suffix
                ))
            }
            Err(e) => {
                tasks.spawn(run_until(
                    upkeep::run(m.clone(), None, stop.subscribe()),
                    "session expiry and certificates",
                ));
                PartState::Off(e.to_string())
            }
        };
        jobs.extend(["session expiry (1 min)", "certificate check (daily)"]);
        if proxy.is_on() && m.config().proxy.mode == crate::proxy::ProxyMode::Managed {
            jobs.push("Caddy supervision (10 s)");
        }
        tasks.spawn(run_until(
            upkeep::firewall(
                m.clone(),
                firewall.as_ref().map(FirewallPlane::handle),
                stop.subscribe(),
            ),
            "firewall jobs",
        ));
        if m.config().firewall.coppercloud_refresh_secs > 0 {
            jobs.push("Coppercloud refresh");
        }
        if firewall.is_some() {
            jobs.push("firewall metrics sampling");
        }

        let started = DaemonStatus {
            dataplane: PartState::Off(String::new()),
            skipped_profiles: Vec::new(),
            firewall: PartState::Off(String::new()),
            forwarding: None,
            dns_addrs: dns
                .as_ref()
                .map(|d| d.local_addrs().to_vec())
                .unwrap_or_default(),
            dns: dns_state,
            proxy,
            change_watcher,
            jobs,
        };
        Ok(Self {
            m: m.clone(),
            firewall,
            dataplane,
            dns,
            stop,
            tasks,
            started,
        })
    }

    /// What runs now, and what is off and why.
    pub fn status(&self) -> DaemonStatus {
        let mut s = self.started.clone();
        let dp = self.dataplane.status();
        s.dataplane = if dp.on {
            PartState::On(format!(
                "{} backend, interface {}, UDP {}",
                dp.backend.map_or("?", |b| b.as_str()),
                dp.interface,
                dp.listen_port
            ))
        } else {
            PartState::Off(dp.reason.unwrap_or_else(|| "unknown reason".into()))
        };
        s.skipped_profiles = dp
            .skipped
            .iter()
            .map(|p| (p.id.to_string(), p.reason.clone()))
            .collect();
        match &self.firewall {
            None => {
                s.firewall = PartState::Off(
                    "wireguard.backend is 'none' (no data plane, no firewall)".into(),
                );
            }
            Some(f) => {
                let fw = f.status();
                s.firewall = if fw.on {
                    PartState::On(format!(
                        "table inet mistborn, external interface {}, applied in {} ms",
                        fw.external_interface.as_deref().unwrap_or("none"),
                        fw.last_full_apply_ms.unwrap_or(0)
                    ))
                } else {
                    PartState::Off(format!(
                        "{} (IP forwarding is turned on only behind the firewall)",
                        fw.reason.as_deref().unwrap_or("unknown reason")
                    ))
                };
                s.forwarding = fw.forwarding;
            }
        }
        s
    }

    /// The firewall's handle, for frontends that show or resync it (`None` when it is off).
    pub fn firewall(&self) -> Option<FirewallHandle> {
        self.firewall.as_ref().map(FirewallPlane::handle)
    }

    /// The data plane.
    pub fn dataplane(&self) -> &DataPlane {
        &self.dataplane
    }

    /// The Mistborn this daemon runs.
    pub fn mistborn(&self) -> &Mistborn {
        &self.m
    }

    /// Completes when a supervised part stops on its own (it should not): the caller then
    /// stops the daemon and reports the error. Pending forever while all run.
    pub async fn failed(&mut self) -> Error {
        match self.tasks.join_next().await {
            Some(Ok(name)) => Error::Daemon(format!("{name} stopped unexpectedly")),
            Some(Err(e)) => Error::Daemon(format!("a daemon task panicked: {e}")),
            None => std::future::pending().await,
        }
    }

    /// Stops every part in order; returns what happened to the WireGuard interface.
    pub async fn stop(mut self) -> InterfaceOnStop {
        self.stop.send_replace(true);
        while let Some(done) = self.tasks.join_next().await {
            if let Err(e) = done {
                tracing::error!("a daemon task panicked while stopping: {e}");
            }
        }
        if let Some(f) = self.firewall.take() {
            f.stop().await;
        }
        let was_on = self.dataplane.status().on;
        self.dataplane.stop().await;
        if let Some(dns) = self.dns.take() {
            dns.shutdown().await;
        }
        match (was_on, self.m.config().wireguard.keep_on_stop) {
            (false, _) => InterfaceOnStop::WasOff,
            (true, true) => InterfaceOnStop::KeptUp,
            (true, false) => InterfaceOnStop::TakenDown,
        }
    }
}

async fn run_until(job: impl Future<Output = ()>, name: &'static str) -> &'static str {
    job.await;
    name
}
