//! The query log's hot-path side: the handler hands each answered query to a bounded channel
//! (`try_send`, never waits) and bumps a few atomic counters; a writer task drains the channel in
//! batches, attributes source addresses to profiles and users and stores rows (see
//! `super::querylog`). A full channel drops the row and counts the drop, so a slow database never
//! slows resolution.

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use hickory_server::proto::op::ResponseCode;
use hickory_server::proto::rr::{LowerName, RecordType};
use tokio::sync::mpsc;

/// How a query was answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Blocked; the list (or custom rule) that blocked it.
    Blocked(Arc<str>),
    /// Answered from the local zone.
    Local,
    /// Resolved upstream (or from the cache).
    Forwarded,
    /// The upstream failed or none is configured.
    Failed,
    /// The request was refused or malformed.
    Refused,
}

impl Outcome {
    /// The stored name.
    pub fn as_str(&self) -> &'static str {
        match self {
            Outcome::Blocked(_) => "blocked",
            Outcome::Local => "local",
            Outcome::Forwarded => "forwarded",
            Outcome::Failed => "failed",
            Outcome::Refused => "refused",
        }
    }
}

/// One answered query, as the handler saw it.
#[derive(Debug, Clone)]
pub struct QueryEvent {
    /// When it arrived, Unix milliseconds.
    pub at_ms: i64,
    /// The client's address (a tunnel address in production).
    pub client: IpAddr,
    /// The name asked for.
    pub name: LowerName,
    /// The type asked for.
    pub qtype: RecordType,
    /// How it was answered.
    pub outcome: Outcome,
    /// The response code sent.
    pub rcode: ResponseCode,
    /// A short text of the answer (addresses, or the sinkhole).
    pub answer: Option<String>,
    /// Time from arrival to the response being handed to the socket, microseconds.
    pub latency_us: u32,
}

/// Totals since start, kept with atomics so reading them never touches the hot path.
#[derive(Debug, Default)]
pub struct Counters {
    /// Every query answered.
    pub total: AtomicU64,
    /// Blocked queries.
    pub blocked: AtomicU64,
    /// Local-zone answers.
    pub local: AtomicU64,
    /// Forwarded (or cached) answers.
    pub forwarded: AtomicU64,
    /// Failed upstream lookups.
    pub failed: AtomicU64,
    /// Log rows dropped because the writer fell behind.
    pub log_dropped: AtomicU64,
}

/// A snapshot of [`Counters`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub struct CounterSnapshot {
    /// Every query answered.
    pub total: u64,
    /// Blocked queries.
    pub blocked: u64,
    /// Local-zone answers.
    pub local: u64,
    /// Forwarded (or cached) answers.
    pub forwarded: u64,
    /// Failed upstream lookups.
    pub failed: u64,
    /// Log rows dropped because the writer fell behind.
    pub log_dropped: u64,
}

impl Counters {
    /// Reads every counter.
    pub fn snapshot(&self) -> CounterSnapshot {
        let r = |c: &AtomicU64| c.load(Ordering::Relaxed);
        CounterSnapshot {
            total: r(&self.total),
            blocked: r(&self.blocked),
            local: r(&self.local),
            forwarded: r(&self.forwarded),
            failed: r(&self.failed),
            log_dropped: r(&self.log_dropped),
        }
    }
}

/// The handler's end of the log.
#[derive(Debug, Clone)]
pub struct QueryLogger {
    tx: Option<mpsc::Sender<QueryEvent>>,
    counters: Arc<Counters>,
}

/// Capacity of the channel to the writer (rows).
pub const LOG_CHANNEL: usize = 65_536;

impl QueryLogger {
    /// A logger feeding a new channel; the receiver goes to the writer task.
    pub fn channel() -> (Self, mpsc::Receiver<QueryEvent>) {
        let (tx, rx) = mpsc::channel(LOG_CHANNEL);
        (
            Self {
                tx: Some(tx),
                counters: Arc::default(),
            },
            rx,
        )
    }

    /// Counters only, no rows.
    pub fn counters_only() -> Self {
        Self {
            tx: None,
            counters: Arc::default(),
        }
    }

    /// The counters.
    pub fn counters(&self) -> &Arc<Counters> {
        &self.counters
    }

    /// Records one query; never waits.
    #[inline]
    pub fn record(&self, event: QueryEvent) {
        let c = &self.counters;
        c.total.fetch_add(1, Ordering::Relaxed);
        match event.outcome {
            Outcome::Blocked(_) => &c.blocked,
            Outcome::Local => &c.local,
            Outcome::Forwarded => &c.forwarded,
            Outcome::Failed | Outcome::Refused => &c.failed,
        }
        .fetch_add(1, Ordering::Relaxed);
        if let Some(tx) = &self.tx
            && tx.try_send(event).is_err()
        {
            c.log_dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}
