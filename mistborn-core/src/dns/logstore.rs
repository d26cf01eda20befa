//! The query log's own database: `dns-log.db`, an SQLite file in WAL mode in the data dir,
//! whichever engine holds the main store. It owns the log rows, their retention, and the
//! persisted statistics (`super::stats`).
//!
//! Why a separate SQLite file, also next to PostgreSQL: the log is the one high-volume,
//! disposable, per-host table. In the main store it competed with every API request for the one
//! SQLite writer (a `GET /dns/stats` scanning it stalled the API for seconds) and, on PostgreSQL,
//! it would cost a network round trip per batch, table bloat and autovacuum work on the database
//! that holds users and keys, and every host would need its own table anyway. A local file written
//! by one task with multi-row INSERTs in one transaction per batch costs a few microseconds per
//! row, never touches the main store's connections, is excluded from backups by construction, and
//! is read by the CLI of the same host like any SQLite file (WAL lets readers run beside the
//! writer).
//!
//! Retention is continuous and reclaims space. Rows go to time-partitioned tables (`q_<id>`,
//! catalogued in `log_partitions`), each closed after 1 % of the row limit or 1 % of the maximum
//! age. After every batch the oldest partitions are dropped whole once they are past the age, or
//! once the row count exceeds the limit by more than 1 %; so the log is never more than 1 % over
//! either limit, and retention never runs a large DELETE. The file is created with
//! `auto_vacuum = INCREMENTAL`, and the pages of a dropped partition go back to the file system
//! right after (`PRAGMA incremental_vacuum`). Row-level deletes happen only for row limits too
//! small to partition (under 6,400 rows).

use std::collections::VecDeque;
use std::path::Path;
use std::str::FromStr;
use std::sync::Mutex;
use std::time::Duration;

use sqlx::sqlite::{
    SqliteAutoVacuum, SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions,
    SqliteRow, SqliteSynchronous,
};
use sqlx::{QueryBuilder, Row, Sqlite};

use super::stats::{Aggregates, Dirty, HOUR_MS, MINUTE_MS, MinuteTotals, TopKind, Window};
use super::types::{DnsStats, LogFilter, LoggedQuery};
use crate::error::{Error, Result};

/// File name of the log database in the data dir.
pub const LOG_FILE: &str = "dns-log.db";
/// Smallest partition (rows), so small limits do not make a table per row.
const MIN_PARTITION_ROWS: i64 = 64;
/// Rows per INSERT statement (13 binds each; SQLite allows 32,766).
const INSERT_CHUNK: usize = 256;

const COLUMNS: &str = "at_ms, client, peer_id, peer_name, user_id, username, name, qtype, outcome, blocked_by, rcode, answer, latency_us";

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS log_partitions (
    id       INTEGER PRIMARY KEY,
    first_ms INTEGER NOT NULL,
    last_ms  INTEGER NOT NULL,
    rows     INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS stat_minutes (
    minute_ms INTEGER PRIMARY KEY,
    total     INTEGER NOT NULL,
    blocked   INTEGER NOT NULL,
    local     INTEGER NOT NULL,
    forwarded INTEGER NOT NULL,
    failed    INTEGER NOT NULL,
    dropped   INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS stat_tops (
    hour_ms INTEGER NOT NULL,
    kind    TEXT NOT NULL,
    key     TEXT NOT NULL,
    count   INTEGER NOT NULL,
    PRIMARY KEY (hour_ms, kind, key)
) WITHOUT ROWID;
";

/// How much log to keep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// At most this many rows (plus 1 %).
    pub max_rows: u64,
    /// Rows older than this are dropped (at most 1 % of it late).
    pub max_age: Duration,
}

impl Limits {
    fn partition_rows(&self) -> i64 {
        (i64::try_from(self.max_rows / 100).unwrap_or(i64::MAX)).max(MIN_PARTITION_ROWS)
    }
    fn partition_span_ms(&self) -> i64 {
        (i64::try_from(self.max_age.as_millis() / 100).unwrap_or(i64::MAX)).max(1000)
    }
    fn slack(&self) -> i64 {
        i64::try_from(self.max_rows / 100).unwrap_or(i64::MAX)
    }
    fn max_rows(&self) -> i64 {
        i64::try_from(self.max_rows).unwrap_or(i64::MAX)
    }
}

#[derive(Debug, Clone, Copy)]
struct Partition {
    id: i64,
    first_ms: i64,
    last_ms: i64,
    rows: i64,
}

/// The log database of one data dir, shared by the resolver's writer and the API.
#[derive(Debug)]
pub struct LogStore {
    pool: SqlitePool,
    /// The open minutes and hours (see `super::stats`).
    live: Mutex<Aggregates>,
    /// The partitions, oldest first; loaded on first use. Held across a write, so the writer and
    /// an explicit prune never interleave.
    catalog: tokio::sync::Mutex<Option<VecDeque<Partition>>>,
}

fn table(id: i64) -> String {
    format!("q_{id}")
}

fn is_missing_table(e: &sqlx::Error) -> bool {
    e.as_database_error()
        .is_some_and(|d| d.message().contains("no such table"))
}

impl LogStore {
    /// Opens (creating) the log file in `data_dir`.
    pub async fn open(data_dir: &Path) -> Result<Self> {
        let path = data_dir.join(LOG_FILE);
        let opts = SqliteConnectOptions::from_str("sqlite://")
            .map_err(|e| Error::Config(format!("dns log: {e}")))?
            .filename(&path)
            .create_if_missing(true)
            // Must be set before the first table exists; a no-op on an existing file.
            .auto_vacuum(SqliteAutoVacuum::Incremental)
            .journal_mode(SqliteJournalMode::Wal)
            // A crash may lose the last batches, never corrupt the file: right for a log.
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(5));
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(opts)
            .await?;
        sqlx::raw_sql(SCHEMA).execute(&pool).await?;
        // Who asked for what is private: owner only, like the main database.
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
                .map_err(|e| Error::io(&path, e))?;
        }
        Ok(Self {
            pool,
            live: Mutex::default(),
            catalog: tokio::sync::Mutex::new(None),
        })
    }

    /// Closes the connections (checkpoints the WAL).
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Runs `f` on the in-memory aggregates (a short critical section, never across an await).
    pub fn live<T>(&self, f: impl FnOnce(&mut Aggregates) -> T) -> T {
        let mut guard = match self.live.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        f(&mut guard)
    }

    async fn load_catalog(&self) -> Result<VecDeque<Partition>> {
        let rows =
            sqlx::query("SELECT id, first_ms, last_ms, rows FROM log_partitions ORDER BY id")
                .fetch_all(&self.pool)
                .await?;
        rows.iter()
            .map(|r| {
                Ok(Partition {
                    id: r.try_get("id")?,
                    first_ms: r.try_get("first_ms")?,
                    last_ms: r.try_get("last_ms")?,
                    rows: r.try_get("rows")?,
                })
            })
            .collect()
    }

    /// Appends rows (in arrival order) and applies `limits` as of the newest row, in one
    /// transaction.
    pub async fn append(&self, rows: &[LoggedQuery], limits: Limits) -> Result<()> {
        let now_ms = rows.iter().map(|r| r.at_ms).max().unwrap_or(0);
        self.append_at(rows, limits, now_ms).await
    }

    /// Applies `limits` as of `now_ms` now (retention also runs after every append).
    pub async fn prune(&self, limits: Limits, now_ms: i64) -> Result<()> {
        self.append_at(&[], limits, now_ms).await
    }

    async fn append_at(&self, rows: &[LoggedQuery], limits: Limits, now_ms: i64) -> Result<()> {
        let mut guard = self.catalog.lock().await;
        let mut parts = match guard.take() {
            Some(p) => p,
            None => self.load_catalog().await?,
        };
        // On error the in-memory catalog stays empty and is read again next time.
        let dropped = self.write(&mut parts, rows, limits, now_ms).await?;
        *guard = Some(parts);
        drop(guard);
        if dropped {
            self.reclaim().await?;
        }
        Ok(())
    }

    /// Gives the pages of dropped partitions back to the file system.
    async fn reclaim(&self) -> Result<()> {
        sqlx::query("PRAGMA incremental_vacuum")
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Inserts and enforces the limits in one transaction; true when a partition was dropped.
    async fn write(
        &self,
        parts: &mut VecDeque<Partition>,
        rows: &[LoggedQuery],
        limits: Limits,
        now_ms: i64,
    ) -> Result<bool> {
        let mut tx = self.pool.begin().await?;
        let mut rest = rows;
        let mut touched: Vec<i64> = Vec::new();
        while let Some(first) = rest.first() {
            let need_new = parts.back().is_none_or(|p| {
                p.rows >= limits.partition_rows()
                    || first.at_ms - p.first_ms >= limits.partition_span_ms()
            });
            if need_new {
                let id = parts.back().map_or(1, |p| p.id + 1);
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "CREATE TABLE {} (at_ms INTEGER NOT NULL, client TEXT NOT NULL, peer_id TEXT, peer_name TEXT, user_id TEXT, username TEXT, name TEXT NOT NULL, qtype TEXT NOT NULL, outcome TEXT NOT NULL, blocked_by TEXT, rcode TEXT NOT NULL, answer TEXT, latency_us INTEGER NOT NULL)",
                    table(id)
                )))
                .execute(&mut *tx)
                .await?;
                sqlx::query("INSERT INTO log_partitions (id, first_ms, last_ms, rows) VALUES ($1, $2, $2, 0)")
                    .bind(id)
                    .bind(first.at_ms)
                    .execute(&mut *tx)
                    .await?;
                parts.push_back(Partition {
                    id,
                    first_ms: first.at_ms,
                    last_ms: first.at_ms,
                    rows: 0,
                });
            }
            let Some(p) = parts.back_mut() else {
                unreachable!("a partition was just ensured")
            };
            let room = usize::try_from(limits.partition_rows() - p.rows)
                .unwrap_or(0)
                .max(1);
            let (now, later) = rest.split_at(room.min(rest.len()));
            for chunk in now.chunks(INSERT_CHUNK) {
                let mut q: QueryBuilder<Sqlite> =
                    QueryBuilder::new(format!("INSERT INTO {} ({COLUMNS}) ", table(p.id)));
                q.push_values(chunk, |mut b, r| {
                    b.push_bind(r.at_ms)
                        .push_bind(r.client.as_str())
                        .push_bind(r.peer_id.as_deref())
                        .push_bind(r.peer_name.as_deref())
                        .push_bind(r.user_id.as_deref())
                        .push_bind(r.username.as_deref())
                        .push_bind(r.name.as_str())
                        .push_bind(r.qtype.as_str())
                        .push_bind(r.outcome.as_str())
                        .push_bind(r.blocked_by.as_deref())
                        .push_bind(r.rcode.as_str())
                        .push_bind(r.answer.as_deref())
                        .push_bind(r.latency_us);
                });
                q.build().execute(&mut *tx).await?;
            }
            p.rows += now.len() as i64;
            p.last_ms = p
                .last_ms
                .max(now.iter().map(|r| r.at_ms).max().unwrap_or(p.last_ms));
            if touched.last() != Some(&p.id) {
                touched.push(p.id);
            }
            rest = later;
        }

        // Age: whole partitions whose newest row is past it.
        let cutoff =
            now_ms.saturating_sub(i64::try_from(limits.max_age.as_millis()).unwrap_or(i64::MAX));
        let mut dropped = false;
        while parts.front().is_some_and(|p| p.last_ms < cutoff) {
            let Some(p) = parts.pop_front() else { break };
            drop_partition(&mut tx, p.id).await?;
            dropped = true;
        }
        // Rows: once more than 1 % over, back to the limit, whole partitions where possible.
        let max = limits.max_rows();
        let mut total: i64 = parts.iter().map(|p| p.rows).sum();
        if total > max.saturating_add(limits.slack()) {
            while total > max {
                let Some(p) = parts.front_mut() else { break };
                if total - p.rows >= max {
                    total -= p.rows;
                    let id = p.id;
                    parts.pop_front();
                    drop_partition(&mut tx, id).await?;
                    dropped = true;
                } else {
                    let n = total - max;
                    sqlx::query(sqlx::AssertSqlSafe(format!(
                        "DELETE FROM {0} WHERE rowid IN (SELECT rowid FROM {0} ORDER BY rowid LIMIT $1)",
                        table(p.id)
                    )))
                    .bind(n)
                    .execute(&mut *tx)
                    .await?;
                    p.rows -= n;
                    total = max;
                    if touched.last() != Some(&p.id) {
                        touched.push(p.id);
                    }
                }
            }
        }
        for id in touched {
            if let Some(p) = parts.iter().find(|p| p.id == id) {
                sqlx::query("UPDATE log_partitions SET last_ms = $1, rows = $2 WHERE id = $3")
                    .bind(p.last_ms)
                    .bind(p.rows)
                    .bind(p.id)
                    .execute(&mut *tx)
                    .await?;
            }
        }
        tx.commit().await?;
        Ok(dropped)
    }

    /// Rows stored now (from the catalog).
    pub async fn row_count(&self) -> Result<i64> {
        Ok(
            sqlx::query_scalar("SELECT COALESCE(SUM(rows), 0) FROM log_partitions")
                .fetch_one(&self.pool)
                .await?,
        )
    }

    /// Log rows matching `f`, newest first; `user` (id or name) restricts to one user.
    pub async fn rows(&self, f: &LogFilter, user: Option<&str>) -> Result<Vec<LoggedQuery>> {
        let since = f.since_ms.unwrap_or(0);
        let limit = f.limit.unwrap_or(100).clamp(1, 10_000);
        let ids: Vec<i64> = sqlx::query_scalar(
            "SELECT id FROM log_partitions WHERE last_ms >= $1 ORDER BY id DESC",
        )
        .bind(since)
        .fetch_all(&self.pool)
        .await?;
        let mut out = Vec::new();
        for id in ids {
            let remaining = limit - out.len() as i64;
            if remaining <= 0 {
                break;
            }
            let mut sql = format!("SELECT {COLUMNS} FROM {} WHERE at_ms >= $1", table(id));
            let mut n = 1;
            if user.is_some() {
                n += 1;
                sql.push_str(&format!(" AND (user_id = ${n} OR username = ${n})"));
            }
            if f.client.is_some() {
                n += 1;
                sql.push_str(&format!(" AND client = ${n}"));
            }
            if f.blocked_only {
                sql.push_str(" AND outcome = 'blocked'");
            }
            sql.push_str(&format!(" ORDER BY rowid DESC LIMIT {remaining}"));
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(since);
            if let Some(u) = user {
                q = q.bind(u);
            }
            if let Some(c) = &f.client {
                q = q.bind(c);
            }
            match q.fetch_all(&self.pool).await {
                Ok(rows) => {
                    for r in &rows {
                        out.push(query_from_row(r)?);
                    }
                }
                // Dropped by retention between the catalog read and this one.
                Err(e) if is_missing_table(&e) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(out)
    }

    /// Stores what changed in the aggregates and forgets statistics older than `max_age`.
    pub async fn persist(&self, d: &Dirty, now_ms: i64, max_age: Duration) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        for (minute, t) in &d.minutes {
            sqlx::query(
                "INSERT INTO stat_minutes (minute_ms, total, blocked, local, forwarded, failed, dropped) VALUES ($1, $2, $3, $4, $5, $6, $7) \
                 ON CONFLICT (minute_ms) DO UPDATE SET total = excluded.total, blocked = excluded.blocked, local = excluded.local, \
                 forwarded = excluded.forwarded, failed = excluded.failed, dropped = excluded.dropped",
            )
            .bind(minute)
            .bind(t.total)
            .bind(t.blocked)
            .bind(t.local)
            .bind(t.forwarded)
            .bind(t.failed)
            .bind(t.dropped)
            .execute(&mut *tx)
            .await?;
        }
        for (hour, rows) in &d.hours {
            sqlx::query("DELETE FROM stat_tops WHERE hour_ms = $1")
                .bind(hour)
                .execute(&mut *tx)
                .await?;
            for chunk in rows.chunks(INSERT_CHUNK) {
                let mut q: QueryBuilder<Sqlite> =
                    QueryBuilder::new("INSERT INTO stat_tops (hour_ms, kind, key, count) ");
                q.push_values(chunk, |mut b, (kind, key, n)| {
                    b.push_bind(*hour)
                        .push_bind(kind.as_str())
                        .push_bind(key.clone())
                        .push_bind(*n);
                });
                q.build().execute(&mut *tx).await?;
            }
        }
        let cutoff = now_ms.saturating_sub(i64::try_from(max_age.as_millis()).unwrap_or(i64::MAX));
        sqlx::query("DELETE FROM stat_minutes WHERE minute_ms < $1")
            .bind(cutoff - MINUTE_MS)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM stat_tops WHERE hour_ms < $1")
            .bind(cutoff - HOUR_MS)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Statistics from `since_ms` on: persisted minutes and rankings, overridden by the ones in
    /// memory. Reads at most one row per minute and [`super::stats::PERSIST_TOP`] per hour and
    /// kind.
    pub async fn stats(&self, since_ms: i64, top: usize, bucket_ms: i64) -> Result<DnsStats> {
        let since_minute = since_ms.div_euclid(MINUTE_MS) * MINUTE_MS;
        let since_hour = since_ms.div_euclid(HOUR_MS) * HOUR_MS;
        let mut stored = Window::default();
        let minutes = sqlx::query(
            "SELECT minute_ms, total, blocked, local, forwarded, failed, dropped FROM stat_minutes WHERE minute_ms >= $1",
        )
        .bind(since_minute)
        .fetch_all(&self.pool)
        .await?;
        for r in &minutes {
            stored.minutes.insert(
                r.try_get("minute_ms")?,
                MinuteTotals {
                    total: r.try_get("total")?,
                    blocked: r.try_get("blocked")?,
                    local: r.try_get("local")?,
                    forwarded: r.try_get("forwarded")?,
                    failed: r.try_get("failed")?,
                    dropped: r.try_get("dropped")?,
                },
            );
        }
        let tops =
            sqlx::query("SELECT hour_ms, kind, key, count FROM stat_tops WHERE hour_ms >= $1")
                .bind(since_hour)
                .fetch_all(&self.pool)
                .await?;
        for r in &tops {
            let kind: String = r.try_get("kind")?;
            let Some(kind) = TopKind::parse(&kind) else {
                continue;
            };
            let key: String = r.try_get("key")?;
            stored.add_top(r.try_get("hour_ms")?, kind, &key, r.try_get("count")?);
        }
        let live = self.live(|a| a.window(since_ms));
        let mut s = super::stats::compute(stored, live, top, bucket_ms);
        s.log_rows = self.row_count().await?;
        Ok(s)
    }
}

async fn drop_partition(tx: &mut sqlx::Transaction<'_, Sqlite>, id: i64) -> Result<()> {
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "DROP TABLE IF EXISTS {}",
        table(id)
    )))
    .execute(&mut **tx)
    .await?;
    sqlx::query("DELETE FROM log_partitions WHERE id = $1")
        .bind(id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

fn query_from_row(r: &SqliteRow) -> Result<LoggedQuery> {
    Ok(LoggedQuery {
        at_ms: r.try_get("at_ms")?,
        client: r.try_get("client")?,
        peer_id: r.try_get("peer_id")?,
        peer_name: r.try_get("peer_name")?,
        user_id: r.try_get("user_id")?,
        username: r.try_get("username")?,
        name: r.try_get("name")?,
        qtype: r.try_get("qtype")?,
        outcome: r.try_get("outcome")?,
        blocked_by: r.try_get("blocked_by")?,
        rcode: r.try_get("rcode")?,
        answer: r.try_get("answer")?,
        latency_us: r.try_get("latency_us")?,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn rows(from_ms: i64, n: usize, step_ms: i64) -> Vec<LoggedQuery> {
        (0..n)
            .map(|i| LoggedQuery {
                at_ms: from_ms + i as i64 * step_ms,
                client: "10.8.0.2".into(),
                peer_id: None,
                peer_name: None,
                user_id: Some("u1".into()),
                username: Some("bob".into()),
                name: format!("n{}.example.test", from_ms + i as i64),
                qtype: "A".into(),
                outcome: if i % 2 == 0 { "blocked" } else { "forwarded" }.into(),
                blocked_by: None,
                rcode: "NoError".into(),
                answer: None,
                latency_us: 12,
            })
            .collect()
    }

    async fn pages(s: &LogStore) -> i64 {
        sqlx::query_scalar("PRAGMA page_count")
            .fetch_one(&s.pool)
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn rows_stay_within_one_percent_of_the_limit_after_every_batch() {
        let dir = tempfile::tempdir().unwrap();
        let s = LogStore::open(dir.path()).await.unwrap();
        let limits = Limits {
            max_rows: 10_000,
            max_age: Duration::from_secs(86_400),
        };
        let mut t = 1_000_000;
        let mut peak = 0;
        for _ in 0..40 {
            s.append(&rows(t, 777, 1), limits).await.unwrap();
            t += 777;
            let n = s.row_count().await.unwrap();
            peak = peak.max(n);
            assert!(n <= 10_100, "{n} rows: more than 1 % over");
        }
        assert!(peak >= 9_900, "the log fills up to the limit ({peak})");
        // Newest first, and the newest survived.
        let newest = s.rows(&LogFilter::default(), None).await.unwrap();
        assert_eq!(newest.len(), 100);
        assert_eq!(newest[0].at_ms, t - 1);
        assert!(newest.windows(2).all(|w| w[0].at_ms > w[1].at_ms));
        // The catalog matches the tables (dropped whole: ~100 partitions, not 300).
        let tables: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name LIKE 'q\\_%' ESCAPE '\\'",
        )
        .fetch_one(&s.pool)
        .await
        .unwrap();
        let catalogued: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM log_partitions")
            .fetch_one(&s.pool)
            .await
            .unwrap();
        assert_eq!(tables, catalogued);
        assert!(tables <= 102, "{tables} partitions");
        // Filters: user, blocked only.
        let f = LogFilter {
            blocked_only: true,
            limit: Some(10),
            ..LogFilter::default()
        };
        let blocked = s.rows(&f, Some("bob")).await.unwrap();
        assert_eq!(blocked.len(), 10);
        assert!(blocked.iter().all(|r| r.outcome == "blocked"));
        assert!(s.rows(&f, Some("alice")).await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn age_is_enforced_continuously_and_space_is_given_back() {
        let dir = tempfile::tempdir().unwrap();
        let s = LogStore::open(dir.path()).await.unwrap();
        let limits = Limits {
            max_rows: 1_000_000,
            max_age: Duration::from_secs(100),
        };
        // 250 s of traffic, 200 rows a second, in 1 s batches.
        let start = 10_000_000;
        for sec in 0..250 {
            let now = start + sec * 1000;
            s.append(&rows(now, 200, 5), limits).await.unwrap();
            let oldest: i64 = sqlx::query_scalar("SELECT MIN(first_ms) FROM log_partitions")
                .fetch_one(&s.pool)
                .await
                .unwrap();
            let newest = now + 199 * 5;
            // At most 1 % of the age (1 s) plus one batch late.
            assert!(
                newest - oldest <= 100_000 + 1_000 + 1_000,
                "oldest row {} ms old",
                newest - oldest
            );
        }
        let full = pages(&s).await;
        // Everything ages out: the file gives its pages back.
        s.prune(limits, start + 1_000_000).await.unwrap();
        assert_eq!(s.row_count().await.unwrap(), 0);
        let empty = pages(&s).await;
        assert!(
            empty * 10 < full,
            "pages {full} -> {empty}: dropped partitions are reclaimed"
        );
    }
}
