//! The change watcher: turns other processes' writes into the same [`Change`] events this
//! process's own writes send. Every write bumps its domain's revision (`store::revision`); the
//! watcher learns of a bump from PostgreSQL `LISTEN` (the bump's `NOTIFY` arrives at commit) or,
//! on SQLite, by reading the five counters on a dedicated connection every [`SQLITE_POLL`]. A
//! domain whose counter moved past what this process announced is broadcast:
//! users as [`Change::Users`], profiles as [`Change::Peers`]`(`[`PeerChange::All`]`)`, DNS as
//! [`Change::Dns`], the firewall as [`Change::Firewall`], and sessions as one
//! [`Change::Access`] per tunnel address whose access changed (the open addresses before and
//! after are compared), so an MFA set or an identity map updates one element.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::time::Duration;

use sqlx::Connection;
use tokio::sync::watch;

use crate::error::Result;
use crate::mistborn::{Change, Mistborn, PeerChange};
use crate::store::Engine;
use crate::store::revision::{self, CHANNEL, Domain};

/// How often SQLite's counters are read (one indexed read of five rows on a connection of its
/// own; it never waits for a writer in WAL mode).
pub const SQLITE_POLL: Duration = Duration::from_millis(100);
/// How long to wait before reconnecting after the watch connection failed.
const RETRY: Duration = Duration::from_secs(1);

/// Compares the store's revisions with what this process announced and broadcasts the difference.
#[derive(Debug)]
pub struct ChangeWatcher {
    m: Mistborn,
    /// Tunnel addresses with a live login, as of the last sessions check.
    open: BTreeSet<IpAddr>,
}

impl ChangeWatcher {
    /// A watcher for `m`, knowing the open addresses now.
    pub async fn new(m: &Mistborn) -> Result<Self> {
        let open = m
            .auth()
            .open_addresses(crate::store::now_unix())
            .await?
            .into_iter()
            .collect();
        Ok(Self { m: m.clone(), open })
    }

    /// Reads the revisions once and broadcasts what other processes changed; returns the domains
    /// that moved.
    pub async fn check(&mut self) -> Result<Vec<Domain>> {
        let values = revision::read_all(self.m.store().pool()).await?;
        self.apply(values).await
    }

    /// Broadcasts the domains whose counters in `values` moved past what was announced.
    async fn apply(&mut self, values: [i64; 5]) -> Result<Vec<Domain>> {
        let mut moved = Vec::new();
        for domain in Domain::ALL {
            let rev = values[domain.index()];
            if rev <= self.m.announced_revision(domain) {
                continue;
            }
            // Read before marking, so a failed read is retried at the next check.
            let changes = match domain {
                Domain::Users => vec![Change::Users],
                Domain::Peers => vec![Change::Peers(PeerChange::All)],
                Domain::Sessions => self.sessions_diff().await?,
                Domain::Dns => vec![Change::Dns],
                Domain::Firewall => vec![Change::Firewall],
            };
            if self.m.advance(domain, rev) {
                for change in changes {
                    self.m.notify(change);
                }
            }
            tracing::debug!(%domain, revision = rev, "changed by another process");
            moved.push(domain);
        }
        Ok(moved)
    }

    /// The addresses that gained or lost their login since the last look.
    async fn sessions_diff(&mut self) -> Result<Vec<Change>> {
        let now: BTreeSet<IpAddr> = self
            .m
            .auth()
            .open_addresses(crate::store::now_unix())
            .await?
            .into_iter()
            .collect();
        let closed = self.open.difference(&now).map(|&address| Change::Access {
            address,
            open: false,
        });
        let opened = now.difference(&self.open).map(|&address| Change::Access {
            address,
            open: true,
        });
        let changes = closed.chain(opened).collect();
        self.open = now;
        Ok(changes)
    }

    /// Watches until `stop` turns true: LISTEN on PostgreSQL, a poll on SQLite. Connection
    /// failures are logged and retried; after a reconnect the revisions are read once, since
    /// notifications sent meanwhile are lost.
    pub async fn run(mut self, mut stop: watch::Receiver<bool>) {
        let url = self.m.config().effective_database_url();
        loop {
            let result = match self.m.store().engine() {
                Engine::Postgres => self.listen(&url, &mut stop).await,
                Engine::Sqlite => self.poll(&url, &mut stop).await,
            };
            match result {
                Ok(()) => return,
                Err(e) => tracing::warn!(error = %e, "watching the store for changes"),
            }
            tokio::select! {
                () = stopped(&mut stop) => return,
                () = tokio::time::sleep(RETRY) => {}
            }
        }
    }

    async fn listen(&mut self, url: &str, stop: &mut watch::Receiver<bool>) -> Result<()> {
        let mut listener = sqlx::postgres::PgListener::connect(url).await?;
        listener.listen(CHANNEL).await?;
        // Writes made before LISTEN took effect sent their NOTIFY to nobody.
        self.check().await?;
        loop {
            tokio::select! {
                () = stopped(stop) => return Ok(()),
                n = listener.try_recv() => {
                    // `None`: the connection was lost and is re-established by the next call;
                    // whatever was sent meanwhile is caught by reading the counters.
                    if let Some(n) = n? {
                        tracing::trace!(domain = n.payload(), "revision notification");
                    }
                    self.check().await?;
                }
            }
        }
    }

    async fn poll(&mut self, url: &str, stop: &mut watch::Receiver<bool>) -> Result<()> {
        let mut conn = sqlx::AnyConnection::connect(url).await?;
        let mut tick = tokio::time::interval(SQLITE_POLL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let result = loop {
            tokio::select! {
                () = stopped(stop) => break Ok(()),
                _ = tick.tick() => {
                    let values = match revision::read_all(&mut conn).await {
                        Ok(v) => v,
                        Err(e) => break Err(e),
                    };
                    if let Err(e) = self.apply(values).await {
                        break Err(e);
                    }
                }
            }
        };
        let _ = conn.close().await;
        result
    }
}

/// Completes when `stop` turns true (or its sender is gone).
pub(crate) async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}
