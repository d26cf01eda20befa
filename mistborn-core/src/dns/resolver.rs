//! The running resolver of a [`Mistborn`]: filter built from the database, local zone from the
//! config and the address pool, upstreams, sockets, and the background tasks (query log writer,
//! filter rebuild on changes, scheduled list refresh and log retention).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{broadcast, mpsc, oneshot};
use tokio::task::JoinHandle;

use super::handler::{DnsHandler, DnsState};
use super::log::{CounterSnapshot, Counters, Outcome, QueryEvent, QueryLogger};
use super::logstore::Limits;
use super::server::DnsServer;
use super::service::Owner;
use super::stats::MinuteTotals;
use super::types::LoggedQuery;
use super::upstream::Upstream;
use super::zone::{LocalHost, LocalZone};
use crate::actor::Actor;
use crate::error::Result;
use crate::mistborn::{Change, Mistborn};

/// Events taken from the channel at once (and rows written per transaction at most).
const LOG_BATCH: usize = 4096;
/// Batches waiting for the log database at most; beyond, rows are dropped and counted.
const PENDING_BATCHES: usize = 64;
/// How often the statistics are persisted (and the counters read when no query comes).
const STATS_TICK: Duration = Duration::from_secs(1);
/// How often retention by age runs when no row arrives (it also runs after every batch).
const IDLE_PRUNE: Duration = Duration::from_secs(60);
/// How often list refresh runs.
const HOUSEKEEPING: Duration = Duration::from_secs(600);

/// A running resolver; stops on [`Resolver::shutdown`] or drop.
#[derive(Debug)]
pub struct Resolver {
    state: Arc<DnsState>,
    server: DnsServer,
    writer: Option<(oneshot::Sender<()>, JoinHandle<()>)>,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for Resolver {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
        if let Some((_, w)) = &self.writer {
            w.abort();
        }
    }
}

impl Resolver {
    /// Builds everything from `m`'s database and config and starts serving.
    pub async fn start(m: &Mistborn) -> Result<Self> {
        let cfg = &m.config().dns;
        let (v4, v6) = m.address_pool().server_addresses();
        let zone = LocalZone::new(
            &m.config().dns_suffix,
            LocalHost {
                v4: Some(v4),
                v6: Some(v6),
            },
            &cfg.services,
        )?;
        let upstream = if cfg.upstreams.is_empty() {
            None
        } else {
            Some(Upstream::new(
                &cfg.upstreams,
                cfg.upstream_ca_file.as_deref(),
                cfg.cache_size,
            )?)
        };
        super::rebuild::tune_allocator();
        let filter = m.dns().build_filter().await?;
        // Opened before serving, so a data dir the log cannot live in fails the start.
        m.dns_log().await?;
        // The statistics need the events even when no row is stored.
        let (logger, rx) = QueryLogger::channel();
        let counters = logger.counters().clone();
        let state = Arc::new(DnsState::new(
            filter,
            zone,
            upstream,
            cfg.blocked_answer,
            cfg.blocked_ttl,
            cfg.local_ttl,
            logger,
        ));
        // Before the first query: an MFA-pending device must never get recursion, not even at start.
        let pending = m.auth().pending_addresses(crate::store::now_unix()).await?;
        state.set_pending(pending.into_iter().collect());
        let listen: Vec<SocketAddr> = if cfg.listen.is_empty() {
            vec![
                SocketAddr::new(IpAddr::V4(v4), 53),
                SocketAddr::new(IpAddr::V6(v6), 53),
            ]
        } else {
            cfg.listen.clone()
        };
        let server = DnsServer::start(DnsHandler::new(state.clone()), &listen).await?;

        let writer = {
            let (stop, stopped) = oneshot::channel();
            let task = tokio::spawn(collector(m.clone(), counters, rx, stopped, cfg.log_queries));
            Some((stop, task))
        };
        let tasks = vec![
            tokio::spawn(rebuild_on_change(m.clone(), state.clone(), m.subscribe())),
            tokio::spawn(pending_on_change(m.clone(), state.clone(), m.subscribe())),
            tokio::spawn(housekeeping(m.clone())),
        ];
        Ok(Self {
            state,
            server,
            writer,
            tasks,
        })
    }

    /// The shared state (filter swap, counters).
    pub fn state(&self) -> &Arc<DnsState> {
        &self.state
    }

    /// The bound addresses.
    pub fn local_addrs(&self) -> &[SocketAddr] {
        self.server.local_addrs()
    }

    /// Rebuilds the filter from the database now and swaps it in.
    pub async fn reload(&self, m: &Mistborn) -> Result<()> {
        self.state.set_filter(m.dns().build_filter().await?);
        Ok(())
    }

    /// Stops serving and the background tasks (the log writer flushes what it holds first).
    pub async fn shutdown(mut self) {
        self.server.stop().await;
        for t in std::mem::take(&mut self.tasks) {
            t.abort();
        }
        if let Some((stop, w)) = self.writer.take() {
            let _ = stop.send(());
            if tokio::time::timeout(Duration::from_secs(5), w)
                .await
                .is_err()
            {
                tracing::warn!("DNS log writer did not finish in 5 s");
            }
        }
    }
}

async fn rebuild_on_change(
    m: Mistborn,
    state: Arc<DnsState>,
    mut changes: broadcast::Receiver<Change>,
) {
    loop {
        match changes.recv().await {
            Ok(Change::Dns) | Err(broadcast::error::RecvError::Lagged(_)) => {
                let t = Instant::now();
                match m.dns().build_filter().await {
                    Ok(f) => {
                        let n = f.blocked_len();
                        state.set_filter(f);
                        tracing::info!(
                            names = n,
                            ms = t.elapsed().as_millis() as u64,
                            "DNS filter reloaded"
                        );
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "DNS filter rebuild failed; keeping the current one")
                    }
                }
            }
            Ok(_) => {}
            Err(broadcast::error::RecvError::Closed) => return,
        }
    }
}

/// Keeps the handler's set of MFA-pending addresses current: built at start, rebuilt on every
/// change to profiles, users or sign-ins (session expiry announces `Access` too).
async fn pending_on_change(
    m: Mistborn,
    state: Arc<DnsState>,
    mut changes: broadcast::Receiver<Change>,
) {
    loop {
        match m.auth().pending_addresses(crate::store::now_unix()).await {
            Ok(a) => state.set_pending(a.into_iter().collect()),
            Err(e) => tracing::error!(error = %e, "DNS: MFA-pending addresses not refreshed"),
        }
        loop {
            match changes.recv().await {
                Ok(Change::Peers(_) | Change::Access { .. } | Change::Users)
                | Err(broadcast::error::RecvError::Lagged(_)) => break,
                Ok(_) => {}
                Err(broadcast::error::RecvError::Closed) => return,
            }
        }
    }
}

async fn housekeeping(m: Mistborn) {
    let mut tick = tokio::time::interval(HOUSEKEEPING);
    loop {
        tick.tick().await;
        let cfg = &m.config().dns;
        let now = crate::store::now_unix();
        let max_age = Duration::from_secs(u64::from(cfg.list_refresh_hours) * 3600);
        if let Err(e) = m.dns().refresh_due(&Actor::System, max_age, now).await {
            tracing::warn!(error = %e, "DNS list refresh");
        }
    }
}

fn limits(m: &Mistborn) -> Limits {
    let cfg = &m.config().dns;
    Limits {
        max_rows: cfg.log_max_rows,
        max_age: Duration::from_secs(u64::from(cfg.log_retention_days) * 86400),
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Drains the query channel in batches: counts every batch into the statistics, attributes
/// addresses to profiles and users, and hands the rows to [`db_writer`] without waiting for it
/// (a full queue drops the batch and counts it). With `store_rows` off only the statistics are
/// kept.
async fn collector(
    m: Mistborn,
    counters: Arc<Counters>,
    mut rx: mpsc::Receiver<QueryEvent>,
    mut stop: oneshot::Receiver<()>,
    store_rows: bool,
) {
    let (rows_tx, rows_rx) = mpsc::channel(PENDING_BATCHES);
    let db = tokio::spawn(db_writer(m.clone(), counters.clone(), rows_rx));
    let mut owners: HashMap<IpAddr, Owner> = HashMap::new();
    let mut owners_at: Option<Instant> = None;
    let mut changes = m.subscribe();
    let mut batch = Vec::with_capacity(LOG_BATCH);
    let mut last = CounterSnapshot::default();
    let mut tick = tokio::time::interval(STATS_TICK);
    let mut stopping = false;
    loop {
        let closed = tokio::select! {
            n = rx.recv_many(&mut batch, LOG_BATCH) => n == 0,
            _ = tick.tick() => false,
            _ = &mut stop, if !stopping => {
                stopping = true;
                // Refuse new events; the next rounds take what is buffered, then see it closed.
                rx.close();
                false
            }
        };
        let mut stale = owners_at.is_none_or(|t| t.elapsed() > Duration::from_secs(60));
        loop {
            match changes.try_recv() {
                Ok(Change::Peers(_)) | Err(broadcast::error::TryRecvError::Lagged(_)) => {
                    stale = true
                }
                Ok(_) => {}
                Err(_) => break,
            }
        }
        if stale && !batch.is_empty() {
            match m.dns().attribution().await {
                Ok(map) => {
                    owners = map;
                    owners_at = Some(Instant::now());
                }
                Err(e) => tracing::warn!(error = %e, "DNS log: reading profiles"),
            }
        }
        let rows: Vec<LoggedQuery> = batch.drain(..).map(|e| row(e, &owners)).collect();
        let c = counters.snapshot();
        match m.dns_log().await {
            Ok(log) => log.live(|a| {
                a.add_minute(now_ms(), MinuteTotals::delta(&c, &last));
                for r in &rows {
                    let client = match (&r.username, &r.peer_name) {
                        (Some(u), Some(p)) => format!("{u}/{p}"),
                        _ => r.client.clone(),
                    };
                    a.add_query(r.at_ms, &r.name, r.outcome == "blocked", &client);
                }
            }),
            Err(e) => tracing::warn!(error = %e, "DNS statistics: opening the log database"),
        }
        last = c;
        if store_rows && !rows.is_empty() {
            let n = rows.len() as u64;
            let sent = if stopping {
                rows_tx.send(rows).await.is_ok()
            } else {
                rows_tx.try_send(rows).is_ok()
            };
            if !sent {
                counters
                    .log_dropped
                    .fetch_add(n, std::sync::atomic::Ordering::Relaxed);
            }
        }
        if closed {
            break;
        }
    }
    // The last drops are counted too.
    if let Ok(log) = m.dns_log().await {
        let c = counters.snapshot();
        log.live(|a| a.add_minute(now_ms(), MinuteTotals::delta(&c, &last)));
    }
    drop(rows_tx);
    let _ = db.await;
}

/// Writes row batches to the log database (retention after each) and persists the statistics
/// every [`STATS_TICK`]. Runs until the collector drops its sender, then persists once more.
async fn db_writer(
    m: Mistborn,
    counters: Arc<Counters>,
    mut rows_rx: mpsc::Receiver<Vec<LoggedQuery>>,
) {
    let log = match m.dns_log().await {
        Ok(l) => l,
        Err(e) => {
            tracing::error!(error = %e, "DNS log: cannot open the log database; rows are dropped");
            while let Some(rows) = rows_rx.recv().await {
                counters
                    .log_dropped
                    .fetch_add(rows.len() as u64, std::sync::atomic::Ordering::Relaxed);
            }
            return;
        }
    };
    let limits = limits(&m);
    let mut tick = tokio::time::interval(STATS_TICK);
    let mut last_prune = Instant::now();
    loop {
        let more = tokio::select! {
            rows = rows_rx.recv() => match rows {
                Some(rows) => {
                    if let Err(e) = log.append(&rows, limits).await {
                        tracing::warn!(error = %e, rows = rows.len(), "DNS log: dropping rows");
                        counters
                            .log_dropped
                            .fetch_add(rows.len() as u64, std::sync::atomic::Ordering::Relaxed);
                    }
                    last_prune = Instant::now();
                    continue;
                }
                None => false,
            },
            _ = tick.tick() => true,
        };
        let now = now_ms();
        let dirty = log.live(|a| a.take_dirty(now));
        if let Err(e) = log.persist(&dirty, now, limits.max_age).await {
            tracing::warn!(error = %e, "DNS statistics: persisting");
            log.live(|a| a.restore_dirty(&dirty));
        }
        if last_prune.elapsed() >= IDLE_PRUNE {
            last_prune = Instant::now();
            if let Err(e) = log.prune(limits, now).await {
                tracing::warn!(error = %e, "DNS query log retention");
            }
        }
        if !more {
            return;
        }
    }
}

fn row(e: QueryEvent, owners: &HashMap<IpAddr, Owner>) -> LoggedQuery {
    // A v4-mapped v6 source is the v4 tunnel address.
    let client = match e.client {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(e.client),
        v4 => v4,
    };
    let owner = owners.get(&client);
    let name = e.name.to_string();
    let blocked_by = match &e.outcome {
        Outcome::Blocked(by) => Some(by.to_string()),
        _ => None,
    };
    let answer = match (&e.outcome, e.answer) {
        (_, Some(a)) => Some(a),
        (Outcome::Blocked(_), None) => Some("blocked".into()),
        _ => None,
    };
    LoggedQuery {
        at_ms: e.at_ms,
        client: client.to_string(),
        peer_id: owner.map(|o| o.peer_id.clone()),
        peer_name: owner.map(|o| o.peer_name.clone()),
        user_id: owner.map(|o| o.user_id.clone()),
        username: owner.map(|o| o.username.clone()),
        name: name.trim_end_matches('.').to_string(),
        qtype: e.qtype.to_string(),
        outcome: e.outcome.as_str().to_string(),
        blocked_by,
        rcode: e.rcode.to_string(),
        answer,
        latency_us: i64::from(e.latency_us),
    }
}
