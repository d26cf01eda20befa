//! Change counters: one row per domain in `revisions`, bumped by every write of that domain. On
//! PostgreSQL the bump also sends `NOTIFY` on [`CHANNEL`] in the same transaction, so listeners
//! hear of it at commit; on SQLite other processes read the (tiny) table. A process compares the
//! counters with what it announced itself to learn that another process wrote, without reading
//! the rows.

use sqlx::{AnyConnection, AnyPool};

use crate::error::{Error, Result};

/// The PostgreSQL notification channel; the payload is the domain's name.
pub const CHANNEL: &str = "mistborn_revisions";

/// A group of tables with one change counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Domain {
    /// Users, roles, passwords and API tokens.
    Users,
    /// Profiles (created, edited, deleted, or removed with a user).
    Peers,
    /// Login sessions (login, sign-out, revocation, expiry, second factor reset).
    Sessions,
    /// DNS lists and rules.
    Dns,
    /// Firewall settings: Coppercloud lists and policy.
    Firewall,
}

impl Domain {
    /// Every domain, in the order of [`Domain::index`].
    pub const ALL: [Domain; 5] = [
        Domain::Users,
        Domain::Peers,
        Domain::Sessions,
        Domain::Dns,
        Domain::Firewall,
    ];

    /// The row name in `revisions` (and the NOTIFY payload).
    pub fn as_str(self) -> &'static str {
        match self {
            Domain::Users => "users",
            Domain::Peers => "peers",
            Domain::Sessions => "sessions",
            Domain::Dns => "dns",
            Domain::Firewall => "firewall",
        }
    }

    /// The domain a row name or payload names.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|d| d.as_str() == name)
    }

    /// Position in [`Domain::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }
}

impl std::fmt::Display for Domain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Bumps `domain`'s counter inside the caller's transaction and returns its new value. On
/// PostgreSQL the notification is queued in the same transaction (sent at commit, dropped on
/// rollback).
pub(crate) async fn bump(conn: &mut AnyConnection, domain: Domain) -> Result<i64> {
    let name = domain.as_str();
    let value: i64 = sqlx::query_scalar(
        "UPDATE revisions SET value = value + 1 WHERE name = $1 RETURNING value",
    )
    .bind(name)
    .fetch_optional(&mut *conn)
    .await?
    .ok_or_else(|| Error::Corrupt(format!("the revision counter '{name}' is missing")))?;
    if conn.backend_name() == "PostgreSQL" {
        // pg_notify returns void, which the Any driver cannot decode: count the one row instead.
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM (SELECT pg_notify($1, $2)) AS sent")
            .bind(CHANNEL)
            .bind(name)
            .fetch_one(&mut *conn)
            .await?;
    }
    Ok(value)
}

/// Bumps `domain`'s counter in a transaction of its own (for writes that are one statement).
pub(crate) async fn bump_alone(pool: &AnyPool, domain: Domain) -> Result<i64> {
    let mut tx = pool.begin().await?;
    let value = bump(&mut tx, domain).await?;
    tx.commit().await?;
    Ok(value)
}

/// Every counter, indexed like [`Domain::ALL`] (a missing row reads as 0).
pub(crate) async fn read_all<'e, E>(executor: E) -> Result<[i64; 5]>
where
    E: sqlx::Executor<'e, Database = sqlx::Any>,
{
    let rows: Vec<(String, i64)> = sqlx::query_as("SELECT name, value FROM revisions")
        .fetch_all(executor)
        .await?;
    let mut out = [0; 5];
    for (name, value) in rows {
        if let Some(d) = Domain::parse(&name) {
            out[d.index()] = value;
        }
    }
    Ok(out)
}
