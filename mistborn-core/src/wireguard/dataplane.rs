//! The reconciler: brings the interface up, reconciles it with the store at start, after every
//! profile change and on a timer, and publishes peer statistics into the status hub.
//!
//! Backend calls block (netlink, UAPI socket) and must run inside the data plane's network
//! namespace, so they all run on one dedicated thread that enters `netns` first when asked; the
//! async task only plans (pure) and sends small diffs. The task keeps the last device state it
//! read or wrote and the desired state it last loaded, so a change of one profile costs one row
//! read, one decrypt, one plan of that peer and one small apply, not a reload of every profile
//! or a full device read. The timer re-reads the device and repairs any drift (a peer added by
//! hand is removed). Profiles written by another process (the CLI) arrive as change events from
//! the daemon's change watcher.
//!
//! With a [`PeerGate`] (the firewall's, `mistborn serve` passes it) the data plane fails closed:
//! while the gate holds peers back the interface stays up with no peer on it (a host that
//! already forwards would otherwise carry devices with no MFA gating or isolation), the status
//! says why, and the peers come back as soon as the gate opens.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{broadcast, mpsc, oneshot, watch};

use super::backend::{WireGuardBackend, open_backend};
use super::desired::{DesiredInterface, DisplayOrder, ServerSide, desired};
use super::plan::{ObservedInterface, plan, plan_peers};
use crate::config::{Config, DataplaneBackend};
use crate::error::{Error, Result};
use crate::mistborn::{Change, Mistborn, PeerChange};
use crate::peers::PeerId;
use crate::status::{ActiveBackend, DataPlaneStatus, PeerStatus, StatusHub, StatusSnapshot};
use crate::store::now_unix;

/// Makes a backend; called on the data plane thread (inside its network namespace), again after
/// a failure.
pub type BackendFactory = Arc<dyn Fn() -> Result<Box<dyn WireGuardBackend>> + Send + Sync>;

/// Whether peers may be on the interface: `None` lets them on, `Some(why)` holds every peer
/// back (the firewall is not in force). The firewall publishes it
/// ([`FirewallHandle::peer_gate`](crate::firewall::FirewallHandle::peer_gate)).
pub type PeerGate = watch::Receiver<Option<String>>;

/// How to run the data plane.
#[derive(Clone)]
pub struct DataPlaneOptions {
    /// How often peer statistics are polled and the device re-checked.
    pub status_interval: Duration,
    /// Run every backend call inside this network namespace (e.g. `/run/netns/mistborn`) instead
    /// of the process's own.
    pub netns: Option<PathBuf>,
    /// The backend; `None` means the one `wireguard.backend` selects.
    pub backend: Option<BackendFactory>,
    /// Peers go on the interface only while this gate is open (`None`: no gate).
    pub gate: Option<PeerGate>,
}

impl std::fmt::Debug for DataPlaneOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DataPlaneOptions")
            .field("status_interval", &self.status_interval)
            .field("netns", &self.netns)
            .field("custom_backend", &self.backend.is_some())
            .field("gate", &self.gate.as_ref().map(|g| g.borrow().clone()))
            .finish()
    }
}

impl DataPlaneOptions {
    /// The options `config` asks for.
    pub fn from_config(config: &Config) -> Self {
        Self {
            status_interval: Duration::from_millis(config.wireguard.status_interval_ms),
            netns: None,
            backend: None,
            gate: None,
        }
    }
}

/// A running data plane. Dropping it stops the reconciler; the interface stays up (and a
/// wireguard-go it started keeps running) unless `wireguard.keep_on_stop` is false.
#[derive(Debug)]
pub struct DataPlane {
    hub: StatusHub,
    stop: watch::Sender<bool>,
    cycles: watch::Receiver<u64>,
    resync: mpsc::Sender<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl DataPlane {
    /// Starts the data plane `m`'s config asks for. Never fails: when it cannot run, the status
    /// says why ([`DataPlane::status`]) and it retries on every status tick.
    pub fn start(m: &Mistborn) -> Self {
        Self::start_with(m, DataPlaneOptions::from_config(m.config()))
    }

    /// Starts with explicit options (tests: short intervals, a network namespace, a backend).
    pub fn start_with(m: &Mistborn, options: DataPlaneOptions) -> Self {
        let hub = m.status().clone();
        let (stop, stop_rx) = watch::channel(false);
        let (cycles_tx, cycles) = watch::channel(0u64);
        let (resync, resync_rx) = mpsc::channel(8);
        let wg = &m.config().wireguard;
        if wg.backend == DataplaneBackend::None && options.backend.is_none() {
            hub.set_dataplane(DataPlaneStatus::off(
                &wg.interface,
                wg.listen_port,
                "wireguard.backend is 'none': the data plane is off by configuration",
            ));
            let _ = cycles_tx.send(1);
            drop(stop_rx);
            return Self {
                hub,
                stop,
                cycles,
                resync,
                task: None,
            };
        }
        hub.set_dataplane(DataPlaneStatus::off(
            &wg.interface,
            wg.listen_port,
            "starting",
        ));
        let factory = options.backend.clone().unwrap_or_else(|| {
            let config = m.config().wireguard.clone();
            let log_dir = m.config().data_dir.clone();
            Arc::new(move || open_backend(&config, &log_dir))
        });
        let worker = Worker::spawn(options.netns.clone(), wg.keep_on_stop);
        let r = Reconciler {
            m: m.clone(),
            server: ServerSide::of(m),
            worker,
            factory,
            hub: hub.clone(),
            kind: None,
            cache: ObservedInterface::default(),
            desired: None,
            order: DisplayOrder::default(),
            stale: true,
            last_reason: None,
            cycles: cycles_tx,
            gate: options.gate.clone(),
        };
        let task = tokio::spawn(r.run(options.status_interval, stop_rx, resync_rx));
        Self {
            hub,
            stop,
            cycles,
            resync,
            task: Some(task),
        }
    }

    /// Whether the data plane is on, and why not.
    pub fn status(&self) -> DataPlaneStatus {
        self.hub.current(&crate::Actor::System).dataplane
    }

    /// Waits for the first full reconcile (or the first failure to start) and returns the state.
    pub async fn settled(&self) -> DataPlaneStatus {
        let mut rx = self.cycles.clone();
        let _ = rx.wait_for(|n| *n >= 1).await;
        self.status()
    }

    /// Runs a full cycle now (read the device, repair drift, poll statistics) and waits for it.
    pub async fn resync(&self) -> DataPlaneStatus {
        let (tx, rx) = oneshot::channel();
        if self.resync.send(tx).await.is_ok() {
            let _ = rx.await;
        }
        self.status()
    }

    /// Stops the reconciler and waits for it. With `wireguard.keep_on_stop` (the default) the
    /// interface keeps carrying traffic for the next start to adopt; without it the interface is
    /// taken down (a wireguard-go it started has exited when this returns).
    pub async fn stop(mut self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for DataPlane {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

/// What the data plane thread holds.
struct Slot {
    backend: Option<Box<dyn WireGuardBackend>>,
    netns_error: Option<String>,
}

impl Slot {
    fn backend(&mut self) -> Result<&mut Box<dyn WireGuardBackend>> {
        self.backend
            .as_mut()
            .ok_or_else(|| Error::DataPlane("the interface is not up".into()))
    }
}

type Job = Box<dyn FnOnce(&mut Slot) + Send>;

/// The dedicated thread all backend calls run on.
struct Worker {
    tx: Option<std::sync::mpsc::Sender<Job>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

fn enter_netns(path: &std::path::Path) -> std::result::Result<(), String> {
    let f = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    rustix::thread::move_into_link_name_space(
        std::os::fd::AsFd::as_fd(&f),
        Some(rustix::thread::LinkNameSpaceType::Network),
    )
    .map_err(|e| format!("entering network namespace {}: {e}", path.display()))
}

impl Worker {
    /// `keep_on_stop`: when the reconciler ends, leave the interface running (see
    /// [`WireGuardBackend::detach`]) instead of taking it down.
    fn spawn(netns: Option<PathBuf>, keep_on_stop: bool) -> Self {
        let (tx, rx) = std::sync::mpsc::channel::<Job>();
        let thread = std::thread::Builder::new()
            .name("mistborn-dataplane".into())
            .spawn(move || {
                let mut slot = Slot {
                    backend: None,
                    netns_error: netns.as_deref().and_then(|p| enter_netns(p).err()),
                };
                while let Ok(job) = rx.recv() {
                    job(&mut slot);
                }
                if let Some(mut b) = slot.backend.take() {
                    if keep_on_stop {
                        b.detach();
                    } else {
                        b.shutdown();
                    }
                }
            })
            .ok();
        Self {
            tx: Some(tx),
            thread,
        }
    }

    async fn call<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Slot) -> Result<R> + Send + 'static,
    ) -> Result<R> {
        let gone = || Error::DataPlane("the data plane thread is gone".into());
        let (tx, rx) = oneshot::channel();
        self.tx
            .as_ref()
            .ok_or_else(gone)?
            .send(Box::new(move |slot: &mut Slot| {
                let _ = tx.send(f(slot));
            }))
            .map_err(|_| gone())?;
        rx.await.map_err(|_| gone())?
    }

    /// Ends the thread after it shut the backend down.
    async fn finish(mut self) {
        self.tx = None;
        if let Some(t) = self.thread.take() {
            let _ = tokio::task::spawn_blocking(move || t.join()).await;
        }
    }
}

struct Reconciler {
    m: Mistborn,
    server: ServerSide,
    worker: Worker,
    factory: BackendFactory,
    hub: StatusHub,
    /// The backend in use while the interface is up.
    kind: Option<ActiveBackend>,
    /// The device as last read or written.
    cache: ObservedInterface,
    desired: Option<DesiredInterface>,
    /// `desired`'s peers in display order, for status.
    order: DisplayOrder,
    /// `desired` may be behind the store (a change arrived while the interface was down, or the
    /// store could not be read): the next cycle reloads every profile.
    stale: bool,
    last_reason: Option<String>,
    cycles: watch::Sender<u64>,
    gate: Option<PeerGate>,
}

/// Resolves when the gate moves; never without a gate or once its firewall is gone (its last
/// verdict stays).
async fn gate_moved(gate: &mut Option<PeerGate>) {
    let moved = match gate {
        Some(g) => g.changed().await.is_ok(),
        None => false,
    };
    if !moved {
        std::future::pending::<()>().await;
    }
}

fn tick_every(interval: Duration) -> tokio::time::Interval {
    let mut tick = tokio::time::interval(interval.max(Duration::from_millis(10)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick
}

impl Reconciler {
    async fn run(
        mut self,
        interval: Duration,
        mut stop: watch::Receiver<bool>,
        mut resync: mpsc::Receiver<oneshot::Sender<()>>,
    ) {
        // Subscribe before the first reconcile so no change slips between the two.
        let mut changes = self.m.subscribe();
        let mut tick = tick_every(interval);
        let mut gate = self.gate.clone();
        loop {
            tokio::select! {
                _ = stop.changed() => break,
                () = gate_moved(&mut gate) => {
                    // A reload, so that peers coming back are not taken for drift.
                    self.stale = true;
                    self.full_cycle().await;
                }
                msg = changes.recv() => match msg {
                    Ok(Change::Peers(PeerChange::Profiles(ids))) => self.on_profiles(&ids).await,
                    Ok(Change::Peers(PeerChange::All)) | Err(broadcast::error::RecvError::Lagged(_)) => {
                        self.on_change().await;
                    }
                    Ok(_) => {}
                    Err(broadcast::error::RecvError::Closed) => break,
                },
                Some(done) = resync.recv() => {
                    self.full_cycle().await;
                    let _ = done.send(());
                }
                _ = tick.tick() => self.full_cycle().await,
            }
        }
        self.worker.finish().await;
        let wg = &self.m.config().wireguard;
        self.hub.set_dataplane(DataPlaneStatus::off(
            &wg.interface,
            wg.listen_port,
            "the data plane was stopped",
        ));
    }

    fn set_desired(&mut self, d: DesiredInterface) {
        self.order = DisplayOrder::of(&d);
        self.desired = Some(d);
    }

    /// Reloads every profile into `desired`; on failure keeps the old one and stays stale.
    async fn load_desired(&mut self) -> Result<()> {
        let rows = self.m.peers().for_dataplane().await?;
        self.set_desired(desired(self.server.clone(), rows));
        self.stale = false;
        Ok(())
    }

    async fn bring_up(&self) -> Result<ActiveBackend> {
        let factory = self.factory.clone();
        let server = self.server.clone();
        self.worker
            .call(move |slot| {
                if let Some(e) = &slot.netns_error {
                    return Err(Error::DataPlane(e.clone()));
                }
                if slot.backend.is_none() {
                    slot.backend = Some(factory()?);
                }
                let b = slot.backend()?;
                let up = b.ensure_interface(&server).map(|()| b.kind());
                if up.is_err() {
                    // Dropping it stops a wireguard-go it started; the next tick starts afresh.
                    slot.backend = None;
                }
                up
            })
            .await
    }

    async fn take_down(&mut self, e: &Error) {
        self.kind = None;
        self.cache = ObservedInterface::default();
        self.stale = true;
        let _ = self
            .worker
            .call(|slot| {
                slot.backend = None;
                Ok(())
            })
            .await;
        self.report_off(e.to_string());
    }

    fn report_off(&mut self, reason: String) {
        if self.last_reason.as_deref() != Some(reason.as_str()) {
            tracing::warn!(%reason, "WireGuard data plane is off");
            self.last_reason = Some(reason.clone());
        }
        let wg = &self.m.config().wireguard;
        let mut status = DataPlaneStatus::off(&wg.interface, wg.listen_port, reason);
        if let Some(d) = &self.desired {
            status.skipped = d.skipped.clone();
        }
        self.hub.set_dataplane(status);
    }

    /// Bring up if needed, read the device, repair drift, publish statistics.
    async fn full_cycle(&mut self) {
        self.full_cycle_inner().await;
        self.cycles.send_modify(|n| *n += 1);
    }

    async fn full_cycle_inner(&mut self) {
        // Differences right after a reload are the store's changes, not drift.
        let drift_check = self.desired.is_some() && !self.stale;
        let need_up = self.kind.is_none();
        let load = self.stale.then(|| {
            let m = self.m.clone();
            async move {
                let t = std::time::Instant::now();
                let rows = m.peers().for_dataplane().await;
                if let Ok(r) = &rows {
                    tracing::info!(
                        profiles = r.len(),
                        ms = t.elapsed().as_millis() as u64,
                        "profiles loaded"
                    );
                }
                rows
            }
        });
        // Starting the interface (a process, netlink) and reading every profile overlap.
        let (up, rows) = tokio::join!(
            async {
                match need_up {
                    true => Some(self.bring_up().await),
                    false => None,
                }
            },
            async {
                match load {
                    Some(f) => Some(f.await),
                    None => None,
                }
            }
        );
        match rows {
            Some(Ok(rows)) => {
                self.set_desired(desired(self.server.clone(), rows));
                self.stale = false;
            }
            // Keep the interface as it is: the store being briefly unreadable is no reason to
            // cut every device off.
            Some(Err(e)) => {
                tracing::warn!(error = %e, "cannot read profiles; keeping the interface as it is")
            }
            None => {}
        }
        match up {
            Some(Ok(kind)) => {
                tracing::info!(interface = %self.server.interface, backend = kind.as_str(), "WireGuard interface up");
                self.kind = Some(kind);
                self.last_reason = None;
            }
            Some(Err(e)) => return self.report_off(e.to_string()),
            None => {}
        }
        if self.desired.is_none() {
            return;
        }
        let observed = self
            .worker
            .call(|slot| {
                let b = slot.backend()?;
                b.check()?;
                b.read()
            })
            .await;
        let observed = match observed {
            Ok(o) => o,
            Err(e) => return self.take_down(&e).await,
        };
        self.cache = observed;
        if let Err(e) = self.reconcile(drift_check).await {
            return self.take_down(&e).await;
        }
        self.publish();
    }

    /// These profiles changed: reload just their rows, plan just their peers against the cached
    /// device state and apply that small diff.
    async fn on_profiles(&mut self, ids: &[PeerId]) {
        let t = std::time::Instant::now();
        if self.kind.is_none() || self.stale || self.desired.is_none() || self.held_back().is_some()
        {
            self.stale = true;
            return; // the next tick starts again and reloads everything
        }
        let mut keys = Vec::with_capacity(ids.len() * 2);
        for id in ids {
            let row = match self.m.peers().one_for_dataplane(id).await {
                Ok(row) => row,
                Err(e) => {
                    tracing::warn!(error = %e, profile = %id, "cannot read a changed profile");
                    self.stale = true;
                    return;
                }
            };
            let Some(d) = self.desired.as_mut() else {
                return;
            };
            match d.replace_profile(id, row) {
                Some(touched) => keys.extend(touched),
                None => return self.on_change().await,
            }
        }
        let Some(desired) = &self.desired else {
            return;
        };
        self.order.update(desired, &keys);
        tracing::debug!(
            us = t.elapsed().as_micros() as u64,
            "changed profiles loaded"
        );
        let diff = plan_peers(desired, &self.cache, &keys);
        if let Err(e) = self.apply(diff, false).await {
            tracing::warn!(error = %e, "incremental reconcile failed; re-reading the device");
            return self.full_cycle().await;
        }
        self.publish();
    }

    /// Any profile may have changed: reload them all, plan against the cached device state and
    /// apply the diff.
    async fn on_change(&mut self) {
        if self.kind.is_none() {
            self.stale = true;
            return; // the next tick tries to start again
        }
        if let Err(e) = self.load_desired().await {
            tracing::warn!(error = %e, "cannot read profiles after a change");
            self.stale = true;
            return;
        }
        if let Err(e) = self.reconcile(false).await {
            tracing::warn!(error = %e, "incremental reconcile failed; re-reading the device");
            return self.full_cycle().await;
        }
        self.publish();
    }

    /// Why peers are held back, if the gate is closed.
    fn held_back(&self) -> Option<String> {
        self.gate.as_ref().and_then(|g| g.borrow().clone())
    }

    async fn reconcile(&mut self, is_drift: bool) -> Result<()> {
        let Some(desired) = &self.desired else {
            return Ok(());
        };
        let diff = if self.held_back().is_some() {
            let empty = DesiredInterface {
                server: desired.server.clone(),
                peers: Default::default(),
                skipped: desired.skipped.clone(),
            };
            plan(&empty, &self.cache)
        } else {
            plan(desired, &self.cache)
        };
        self.apply(diff, is_drift).await
    }

    async fn apply(&mut self, diff: super::plan::Diff, is_drift: bool) -> Result<()> {
        if diff.is_empty() {
            return Ok(());
        }
        if is_drift {
            tracing::warn!(change = %diff.summary(), "the device drifted from the store; repairing");
        }
        let t = std::time::Instant::now();
        let d = diff.clone();
        self.worker
            .call(move |slot| slot.backend()?.apply(&d))
            .await?;
        tracing::info!(change = %diff.summary(), ms = t.elapsed().as_millis() as u64, "WireGuard peers reconciled");
        self.cache.apply_diff(&diff);
        Ok(())
    }

    fn publish(&self) {
        let Some(desired) = &self.desired else {
            return;
        };
        let t = std::time::Instant::now();
        let now = now_unix();
        let peers = self
            .order
            .peers(desired)
            .map(|d| {
                let o = self.cache.peers.get(&d.spec.public_key);
                let p = &d.profile;
                let latest_handshake = o.and_then(|o| o.latest_handshake);
                PeerStatus {
                    peer_id: p.id.clone(),
                    user_id: p.user_id.clone(),
                    username: p.username.clone(),
                    name: p.name.clone(),
                    address_v4: p.address_v4,
                    address_v6: p.address_v6,
                    public_key: p.public_key.clone(),
                    endpoint: o.and_then(|o| o.endpoint),
                    latest_handshake,
                    rx_bytes: o.map_or(0, |o| o.rx_bytes),
                    tx_bytes: o.map_or(0, |o| o.tx_bytes),
                    connected: latest_handshake
                        .is_some_and(|h| now - h < crate::status::CONNECTED_WITHIN_SECS),
                }
            })
            .collect();
        let built = t.elapsed();
        let wg = &self.m.config().wireguard;
        let held = self.held_back();
        self.hub.publish(StatusSnapshot {
            dataplane: DataPlaneStatus {
                on: held.is_none(),
                backend: self.kind,
                interface: wg.interface.clone(),
                listen_port: wg.listen_port,
                reason: held.map(|why| format!("no peer is configured: {why}")),
                skipped: desired.skipped.clone(),
            },
            peers,
            updated_at: now,
        });
        tracing::debug!(
            build_us = built.as_micros() as u64,
            us = t.elapsed().as_micros() as u64,
            "status published"
        );
    }
}
