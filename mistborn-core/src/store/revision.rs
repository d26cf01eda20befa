//! Change counters: one row per tracked table group in `revisions`, bumped inside the same
//! transaction as every write it tracks. Another process reads it to learn that something changed
//! without reading the rows themselves.

use sqlx::{AnyConnection, AnyPool};

use crate::error::{Error, Result};

/// The counter of the `peers` table (profiles created, edited, deleted, or removed with a user).
pub(crate) const PEERS: &str = "peers";

/// Bumps counter `name` inside the caller's transaction and returns its new value.
pub(crate) async fn bump(conn: &mut AnyConnection, name: &str) -> Result<i64> {
    sqlx::query_scalar("UPDATE revisions SET value = value + 1 WHERE name = $1 RETURNING value")
        .bind(name)
        .fetch_optional(conn)
        .await?
        .ok_or_else(|| Error::Corrupt(format!("the revision counter '{name}' is missing")))
}

/// The current value of counter `name`.
pub(crate) async fn read(pool: &AnyPool, name: &str) -> Result<i64> {
    sqlx::query_scalar("SELECT value FROM revisions WHERE name = $1")
        .bind(name)
        .fetch_optional(pool)
        .await?
        .ok_or_else(|| Error::Corrupt(format!("the revision counter '{name}' is missing")))
}
