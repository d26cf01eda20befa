//! The firewall reconciler: applies the whole table at start and when its structure changes
//! (Coppercloud lists, alternate ports, the external interface), and otherwise only set elements:
//! after a profile change, a login or sign-out ([`Change::Access`]) and on a timer that catches
//! expired sessions and a moved default route.
//!
//! `nft` and netlink calls block and must run inside the firewall's network namespace, so they
//! run on one dedicated thread that enters it first; the async task plans (pure) and hands over
//! small jobs.
//!
//! It also keeps the data plane's [`PeerGate`]: closed until the table is first in force and
//! whenever the kernel's state is unknown (a failed update whose repair failed too), so that with
//! `firewall.fail_closed` no device is carried without MFA gating and isolation.

use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::sync::{broadcast, mpsc, oneshot, watch};

use super::coppercloud::ParsedList;
use super::desired::{input, load_lists, load_profiles};
use super::forwarding::{ForwardingStatus, Sysctl};
use super::metrics::{Metrics, read_metrics};
use super::plan::{ElementChange, FirewallPlan, apply_changes, plan};
use super::policy::{AddressSet, ListRule, Policy, PolicyInput, ProfileRule, TABLE, policy};
use super::{netlink, nft};
use crate::error::{Error, Result};
use crate::mistborn::{Change, Mistborn};
use crate::peers::PeerKind;
use crate::store::now_unix;
use crate::wireguard::PeerGate;

/// How to run the firewall.
#[derive(Debug, Clone)]
pub struct FirewallOptions {
    /// Run every nft/netlink call inside this network namespace (e.g. `/run/netns/mistborn`).
    pub netns: Option<PathBuf>,
    /// How often sessions and the default route are re-checked.
    pub check_interval: Duration,
}

impl FirewallOptions {
    /// The options `config` asks for.
    pub fn from_config(config: &crate::Config) -> Self {
        let f = &config.firewall;
        Self {
            netns: None,
            check_interval: Duration::from_secs(f.session_check_secs.max(1)),
        }
    }
}

/// Whether the firewall is in force, and what it last did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FirewallStatus {
    /// The table is applied and current.
    pub on: bool,
    /// Why not (or why the last change failed).
    pub reason: Option<String>,
    /// The external interface in use.
    pub external_interface: Option<String>,
    /// Full replaces done.
    pub full_applies: u64,
    /// Element batches sent.
    pub element_updates: u64,
    /// Duration of the last full replace, in milliseconds.
    pub last_full_apply_ms: Option<u64>,
    /// IP forwarding in the firewall's namespace, as last checked (`None` until the table was
    /// first applied: forwarding is turned on only behind it).
    pub forwarding: Option<ForwardingStatus>,
}

/// A summary of the policy in force (sizes, not the elements).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyView {
    /// `inet mistborn`.
    pub table: String,
    /// Tunnel interface.
    pub tunnel_interface: String,
    /// External interface (default route), if any.
    pub external_interface: Option<String>,
    /// WireGuard port.
    pub wireguard_port: u16,
    /// Alternate ports redirected to it.
    pub redirect_ports: Vec<u16>,
    /// SSH port.
    pub ssh_port: u16,
    /// Admin source for SSH.
    pub admin_source: Option<String>,
    /// Web ports open to the tunnel.
    pub web_ports: Vec<u16>,
    /// Container bridges shielded from outside.
    pub container_bridges: Vec<String>,
    /// Addresses waiting for an MFA login.
    pub mfa_pending: Vec<String>,
    /// Addresses allowed client-to-client.
    pub client_to_client: Vec<String>,
    /// Coppercloud lists in force: id, mode, merged IPv4 and IPv6 ranges.
    pub lists: Vec<PolicyList>,
}

/// One list in the [`PolicyView`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyList {
    /// List id.
    pub id: String,
    /// block or allow.
    pub mode: String,
    /// Merged IPv4 ranges.
    pub ranges_v4: u64,
    /// Merged IPv6 ranges.
    pub ranges_v6: u64,
}

impl PolicyView {
    /// The policy the store and configuration ask for now, as [`FirewallPlane`] would apply it
    /// (superusers). Without a configured external interface, the default route's in the calling
    /// thread's network namespace is used.
    pub async fn desired(m: &Mistborn, actor: &crate::Actor, now: i64) -> Result<Self> {
        actor.require_superuser("viewing the firewall policy")?;
        let external = match m.config().firewall.external_interface.clone() {
            Some(i) => Some(i),
            None => netlink::default_route_interface()
                .map_err(|e| Error::Firewall(format!("reading the default route: {e}")))?,
        };
        let (profiles, open) = load_profiles(m, now).await?;
        let lists = load_lists(m, &mut HashMap::new()).await?;
        Ok(Self::of(&policy(&input(
            m, external, profiles, open, lists,
        ))))
    }

    fn of(p: &Policy) -> Self {
        let s = &p.structure;
        Self {
            table: format!("inet {TABLE}"),
            tunnel_interface: s.tunnel_interface.clone(),
            external_interface: s.external_interface.clone(),
            wireguard_port: s.wireguard_port,
            redirect_ports: s.redirect_ports.iter().copied().collect(),
            ssh_port: s.ssh_port,
            admin_source: s.admin_source.map(|a| a.to_string()),
            web_ports: s.web_ports.clone(),
            container_bridges: s.container_bridges.clone(),
            mfa_pending: p.mfa_pending.iter().map(ToString::to_string).collect(),
            client_to_client: p.client_to_client.iter().map(ToString::to_string).collect(),
            lists: s
                .lists
                .iter()
                .map(|l| PolicyList {
                    id: l.id.clone(),
                    mode: l.mode.as_str().into(),
                    ranges_v4: l.parsed.v4.len() as u64,
                    ranges_v6: l.parsed.v6.len() as u64,
                })
                .collect(),
        }
    }
}

type Job = Box<dyn FnOnce() + Send>;

/// The thread every nft/netlink call runs on (inside the firewall's network namespace).
struct Worker {
    tx: Option<std::sync::mpsc::Sender<Job>>,
    thread: Option<std::thread::JoinHandle<()>>,
    netns_error: Option<String>,
}

pub(super) fn enter_netns(path: &std::path::Path) -> std::result::Result<(), String> {
    let f = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    rustix::thread::move_into_link_name_space(
        std::os::fd::AsFd::as_fd(&f),
        Some(rustix::thread::LinkNameSpaceType::Network),
    )
    .map_err(|e| format!("entering network namespace {}: {e}", path.display()))
}

impl Worker {
    fn spawn(netns: Option<PathBuf>) -> Self {
        let (tx, rx) = std::sync::mpsc::channel::<Job>();
        let (etx, erx) = std::sync::mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("mistborn-firewall".into())
            .spawn(move || {
                let _ = etx.send(netns.as_deref().and_then(|p| enter_netns(p).err()));
                while let Ok(job) = rx.recv() {
                    job();
                }
            })
            .ok();
        let netns_error = match &thread {
            Some(_) => erx.recv().unwrap_or(None),
            None => Some("cannot start the firewall thread".into()),
        };
        Self {
            tx: Some(tx),
            thread,
            netns_error,
        }
    }

    async fn call<R: Send + 'static>(
        &self,
        f: impl FnOnce() -> Result<R> + Send + 'static,
    ) -> Result<R> {
        if let Some(e) = &self.netns_error {
            return Err(Error::Firewall(e.clone()));
        }
        let gone = || Error::Firewall("the firewall thread is gone".into());
        let (tx, rx) = oneshot::channel();
        self.tx
            .as_ref()
            .ok_or_else(gone)?
            .send(Box::new(move || {
                let _ = tx.send(f());
            }))
            .map_err(|_| gone())?;
        rx.await.map_err(|_| gone())?
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.tx = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

enum Cmd {
    Resync(oneshot::Sender<FirewallStatus>),
    Metrics(usize, oneshot::Sender<Result<Metrics>>),
    View(oneshot::Sender<Option<PolicyView>>),
    TableText(oneshot::Sender<Result<Option<String>>>),
}

/// A running firewall. Dropping it stops the reconciler (the table stays in force).
#[derive(Debug)]
pub struct FirewallPlane {
    stop: watch::Sender<bool>,
    cycles: watch::Receiver<u64>,
    handle: FirewallHandle,
    task: Option<tokio::task::JoinHandle<()>>,
}

/// A cheap, cloneable view on a running [`FirewallPlane`] for frontends (status, metrics, the
/// policy in force). It does not keep the plane running: once the plane stops, its queries
/// answer "not running".
#[derive(Debug, Clone)]
pub struct FirewallHandle {
    status: watch::Receiver<FirewallStatus>,
    gate: PeerGate,
    cmd: mpsc::Sender<Cmd>,
}

impl FirewallPlane {
    /// Starts the firewall `m`'s config asks for.
    pub fn start(m: &Mistborn) -> Self {
        Self::start_with(m, FirewallOptions::from_config(m.config()))
    }

    /// Starts with explicit options (tests: a network namespace, short intervals).
    pub fn start_with(m: &Mistborn, options: FirewallOptions) -> Self {
        let (stop, stop_rx) = watch::channel(false);
        let (status_tx, status) = watch::channel(FirewallStatus {
            reason: Some("starting".into()),
            ..FirewallStatus::default()
        });
        let (cycles_tx, cycles) = watch::channel(0u64);
        let (cmd, cmd_rx) = mpsc::channel(16);
        let fail_closed = m.config().firewall.enabled && m.config().firewall.fail_closed;
        let (gate_tx, gate) = watch::channel(
            fail_closed.then(|| "the firewall is starting (firewall.fail_closed)".to_string()),
        );
        let handle = FirewallHandle { status, gate, cmd };
        if !m.config().firewall.enabled {
            status_tx.send_modify(|s| {
                s.reason =
                    Some("firewall.enabled is false: the firewall is off by configuration".into())
            });
            let _ = cycles_tx.send(1);
            return Self {
                stop,
                cycles,
                handle,
                task: None,
            };
        }
        let r = Reconciler {
            m: m.clone(),
            worker: Worker::spawn(options.netns.clone()),
            status: status_tx,
            gate: gate_tx,
            fail_closed,
            cycles: cycles_tx,
            applied: None,
            profiles: Vec::new(),
            open: BTreeSet::new(),
            lists: Vec::new(),
            parsed: HashMap::new(),
            external: None,
            lists_stale: true,
        };
        let task = tokio::spawn(r.run(options, stop_rx, cmd_rx));
        Self {
            stop,
            cycles,
            handle,
            task: Some(task),
        }
    }

    /// A handle for frontends.
    pub fn handle(&self) -> FirewallHandle {
        self.handle.clone()
    }

    /// The current status.
    pub fn status(&self) -> FirewallStatus {
        self.handle.status()
    }

    /// Waits for the first apply (or its failure).
    pub async fn settled(&self) -> FirewallStatus {
        let mut rx = self.cycles.clone();
        let _ = rx.wait_for(|n| *n >= 1).await;
        self.status()
    }

    /// Re-reads the store and reconciles now (sessions, profiles, lists, default route).
    pub async fn resync(&self) -> FirewallStatus {
        self.handle.resync().await
    }

    /// Probe and hit metrics, top `n` ports and sources.
    pub async fn metrics(&self, n: usize) -> Result<Metrics> {
        self.handle.metrics(n).await
    }

    /// The policy in force, if one was applied.
    pub async fn view(&self) -> Option<PolicyView> {
        self.handle.view().await
    }

    /// `nft -s list table inet mistborn` (stateless: no counter values) from where it runs.
    pub async fn table_text(&self) -> Result<Option<String>> {
        self.handle.table_text().await
    }

    /// Stops the reconciler and waits for it.
    pub async fn stop(mut self) {
        let _ = self.stop.send(true);
        if let Some(t) = self.task.take() {
            let _ = t.await;
        }
    }
}

impl FirewallHandle {
    /// The current status.
    pub fn status(&self) -> FirewallStatus {
        self.status.borrow().clone()
    }

    /// The gate for the data plane ([`DataPlaneOptions::gate`](crate::wireguard::DataPlaneOptions)):
    /// with `firewall.fail_closed` (the default) it holds peers back while the table is not in
    /// force; always open when the firewall is off by configuration or `fail_closed` is false.
    pub fn peer_gate(&self) -> PeerGate {
        self.gate.clone()
    }

    async fn ask<T>(&self, make: impl FnOnce(oneshot::Sender<T>) -> Cmd) -> Option<T> {
        let (tx, rx) = oneshot::channel();
        self.cmd.send(make(tx)).await.ok()?;
        rx.await.ok()
    }

    /// Re-reads the store and reconciles now (sessions, profiles, lists, default route).
    pub async fn resync(&self) -> FirewallStatus {
        self.ask(Cmd::Resync).await.unwrap_or_else(|| self.status())
    }

    /// Probe and hit metrics, top `n` ports and sources.
    pub async fn metrics(&self, n: usize) -> Result<Metrics> {
        self.ask(|tx| Cmd::Metrics(n, tx))
            .await
            .unwrap_or_else(|| Err(Error::Firewall("the firewall is not running".into())))
    }

    /// The policy in force, if one was applied.
    pub async fn view(&self) -> Option<PolicyView> {
        self.ask(Cmd::View).await.flatten()
    }

    /// `nft -s list table inet mistborn` (stateless: no counter values) from where it runs.
    pub async fn table_text(&self) -> Result<Option<String>> {
        self.ask(Cmd::TableText)
            .await
            .unwrap_or_else(|| Err(Error::Firewall("the firewall is not running".into())))
    }
}

impl Drop for FirewallPlane {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

struct Reconciler {
    m: Mistborn,
    worker: Worker,
    status: watch::Sender<FirewallStatus>,
    gate: watch::Sender<Option<String>>,
    fail_closed: bool,
    cycles: watch::Sender<u64>,
    /// The policy the kernel holds, as last applied.
    applied: Option<Policy>,
    profiles: Vec<ProfileRule>,
    open: BTreeSet<std::net::IpAddr>,
    lists: Vec<ListRule>,
    parsed: HashMap<String, (u64, Arc<ParsedList>)>,
    external: Option<String>,
    lists_stale: bool,
}

impl Reconciler {
    async fn run(
        mut self,
        options: FirewallOptions,
        mut stop: watch::Receiver<bool>,
        mut cmds: mpsc::Receiver<Cmd>,
    ) {
        let mut changes = self.m.subscribe();
        self.full_check().await;
        self.cycles.send_modify(|n| *n += 1);
        let mut tick = tokio::time::interval(options.check_interval.max(Duration::from_millis(50)));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            tokio::select! {
                _ = stop.changed() => break,
                msg = changes.recv() => match msg {
                    Ok(Change::Peers(_)) => self.on_profiles().await,
                    Ok(Change::Access { address, open }) => self.on_access(address, open).await,
                    Ok(Change::Firewall) => {
                        self.lists_stale = true;
                        self.full_check().await;
                    }
                    Ok(_) => {}
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        self.lists_stale = true;
                        self.full_check().await;
                    }
                    Err(broadcast::error::RecvError::Closed) => break,
                },
                Some(cmd) = cmds.recv() => self.command(cmd).await,
                _ = tick.tick() => self.full_check().await,
            }
        }
    }

    async fn command(&mut self, cmd: Cmd) {
        match cmd {
            Cmd::Resync(tx) => {
                self.lists_stale = true;
                self.full_check().await;
                let _ = tx.send(self.status.borrow().clone());
            }
            Cmd::Metrics(n, tx) => {
                let r = self.worker.call(move || read_metrics(n)).await;
                let _ = tx.send(r);
            }
            Cmd::View(tx) => {
                let _ = tx.send(self.applied.as_ref().map(PolicyView::of));
            }
            Cmd::TableText(tx) => {
                let _ = tx.send(self.worker.call(|| nft::list_table_text(true)).await);
            }
        }
    }

    fn report(&self, reason: Option<String>) {
        let on = self.applied.is_some() && reason.is_none();
        if let Some(r) = &reason {
            tracing::warn!(reason = %r, "firewall");
        }
        // Held back only while the kernel's table is unknown: a table in force whose last change
        // failed still gates and isolates (the next check repairs it).
        let held = (self.fail_closed && self.applied.is_none()).then(|| {
            format!(
                "the firewall is not in force ({}); peers wait for it (firewall.fail_closed)",
                reason.as_deref().unwrap_or("not applied yet")
            )
        });
        self.gate.send_if_modified(|g| {
            let moved = *g != held;
            *g = held;
            moved
        });
        self.status.send_modify(|s| {
            s.on = on;
            s.reason = reason;
            s.external_interface = self.external.clone();
        });
    }

    fn desired(&self) -> Policy {
        policy(&self.policy_input())
    }

    fn policy_input(&self) -> PolicyInput {
        input(
            &self.m,
            self.external.clone(),
            self.profiles.clone(),
            self.open.clone(),
            self.lists.clone(),
        )
    }

    /// Re-reads everything (store, default route) and reconciles.
    async fn full_check(&mut self) {
        let configured = self.m.config().firewall.external_interface.clone();
        let external = match configured {
            Some(i) => Ok(Some(i)),
            None => {
                self.worker
                    .call(|| {
                        netlink::default_route_interface()
                            .map_err(|e| Error::Firewall(format!("reading the default route: {e}")))
                    })
                    .await
            }
        };
        match external {
            Ok(e) => self.external = e,
            Err(e) => return self.report(Some(e.to_string())),
        }
        match load_profiles(&self.m, now_unix()).await {
            Ok((p, o)) => {
                self.profiles = p;
                self.open = o;
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot read profiles; keeping the firewall as it is");
                return;
            }
        }
        if self.lists_stale {
            match load_lists(&self.m, &mut self.parsed).await {
                Ok(l) => {
                    self.lists = l;
                    self.lists_stale = false;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot read Coppercloud lists; keeping the firewall as it is");
                    return;
                }
            }
        }
        self.reconcile().await;
        if self.applied.is_some() {
            self.ensure_forwarding().await;
        }
    }

    /// Turns IP forwarding on (re-checked at every full check: an admin or another tool may
    /// have turned it off, or the default route moved to an interface whose `accept_ra` needs
    /// raising). Only ever behind an applied table, whose forward chain drops by default.
    async fn ensure_forwarding(&mut self) {
        let manage = self.m.config().firewall.ip_forwarding;
        let external = self.external.clone();
        let checked = self
            .worker
            .call(move || {
                let sysctl = Sysctl::default();
                if !manage {
                    return Ok(ForwardingStatus {
                        reason: Some(
                            "firewall.ip_forwarding is false: forwarding is left as the system has it"
                                .into(),
                        ),
                        ..sysctl.observe()
                    });
                }
                let mut ra: Vec<String> = external.into_iter().collect();
                if let Ok(Some(v6)) = netlink::default_route_interface_v6()
                    && !ra.contains(&v6)
                {
                    ra.push(v6);
                }
                Ok(sysctl.enable(&ra))
            })
            .await;
        let f = match checked {
            Ok(f) => f,
            Err(e) => ForwardingStatus {
                reason: Some(format!("cannot check IP forwarding: {e}")),
                ..ForwardingStatus::default()
            },
        };
        let before = self.status.borrow().forwarding.clone();
        if before.as_ref() != Some(&f) {
            for i in &f.accept_ra_raised {
                tracing::info!(interface = %i, "accept_ra 1 -> 2 so IPv6 router advertisements still count while forwarding");
            }
            match &f.reason {
                Some(r) if manage => {
                    tracing::warn!(reason = %r, ipv4 = f.ipv4, ipv6 = f.ipv6, "IP forwarding")
                }
                _ => tracing::info!(ipv4 = f.ipv4, ipv6 = f.ipv6, "IP forwarding"),
            }
        }
        self.status.send_modify(|s| s.forwarding = Some(f));
    }

    async fn on_profiles(&mut self) {
        match load_profiles(&self.m, now_unix()).await {
            Ok((p, o)) => {
                self.profiles = p;
                self.open = o;
            }
            Err(e) => return tracing::warn!(error = %e, "cannot read profiles after a change"),
        }
        self.reconcile().await;
    }

    /// A login or sign-out: at most one element, straight over netlink.
    async fn on_access(&mut self, address: std::net::IpAddr, open: bool) {
        if open {
            self.open.insert(address);
        } else {
            self.open.remove(&address);
        }
        let is_mfa = self.profiles.iter().any(|p| {
            p.kind == PeerKind::Mfa
                && (std::net::IpAddr::V4(p.address_v4) == address
                    || std::net::IpAddr::V6(p.address_v6) == address)
        });
        let Some(applied) = &self.applied else {
            return self.full_check().await;
        };
        let pending = applied.mfa_pending.contains(&address);
        let change = match (is_mfa, open, pending) {
            (_, true, true) => ElementChange {
                set: AddressSet::MfaPending,
                address,
                add: false,
            },
            (true, false, false) => ElementChange {
                set: AddressSet::MfaPending,
                address,
                add: true,
            },
            _ => return,
        };
        self.send_elements(vec![change]).await;
    }

    async fn send_elements(&mut self, changes: Vec<ElementChange>) {
        let batch = changes.clone();
        match self
            .worker
            .call(move || netlink::send_elements(&batch))
            .await
        {
            Ok(()) => {
                if let Some(a) = &mut self.applied {
                    apply_changes(a, &changes);
                }
                self.status.send_modify(|s| s.element_updates += 1);
                self.report(None);
            }
            Err(e) => {
                // The kernel state is unknown now: replace the table at once. Reported only if
                // the replace fails too, so the peer gate does not flap for a repaired slip.
                tracing::warn!(error = %e, "firewall element update failed; replacing the table");
                self.applied = None;
                let desired = self.desired();
                self.replace(desired).await;
            }
        }
    }

    async fn reconcile(&mut self) {
        let desired = self.desired();
        match plan(&desired, self.applied.as_ref()) {
            FirewallPlan::Nothing => {
                if self.status.borrow().reason.is_some() && self.applied.is_some() {
                    self.report(None);
                }
            }
            FirewallPlan::Elements(changes) => self.send_elements(changes).await,
            FirewallPlan::Replace => self.replace(desired).await,
        }
    }

    async fn replace(&mut self, desired: Policy) {
        {
            {
                let t0 = Instant::now();
                let policy = desired.clone();
                match self.worker.call(move || nft::replace_table(&policy)).await {
                    Ok(()) => {
                        let ms = u64::try_from(t0.elapsed().as_millis()).unwrap_or(u64::MAX);
                        tracing::info!(ms, "firewall table applied");
                        self.applied = Some(desired);
                        self.status.send_modify(|s| {
                            s.full_applies += 1;
                            s.last_full_apply_ms = Some(ms);
                        });
                        self.report(None);
                    }
                    Err(e) => {
                        // nft kept the previous table; what it holds is still `applied`.
                        self.report(Some(e.to_string()));
                    }
                }
            }
        }
    }
}
