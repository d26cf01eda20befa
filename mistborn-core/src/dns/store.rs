//! SQL for DNS lists and rules (same text on SQLite and PostgreSQL). The query log has its own
//! database (`super::logstore`).

use sqlx::any::AnyRow;
use sqlx::{AnyPool, Row};

use super::types::{DnsList, DnsRule, RuleKind};
use crate::error::{Error, Result};

const LIST_COLUMNS: &str = "id, name, url, enabled, entries, invalid_lines, updated_at, checked_at, last_error, created_at";

fn list_from_row(row: &AnyRow) -> Result<DnsList> {
    Ok(DnsList {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        url: row.try_get("url")?,
        enabled: row.try_get::<i64, _>("enabled")? != 0,
        entries: row.try_get("entries")?,
        invalid_lines: row.try_get("invalid_lines")?,
        updated_at: row.try_get("updated_at")?,
        checked_at: row.try_get("checked_at")?,
        last_error: row.try_get("last_error")?,
        created_at: row.try_get("created_at")?,
    })
}

pub(crate) async fn lists(pool: &AnyPool) -> Result<Vec<DnsList>> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {LIST_COLUMNS} FROM dns_lists ORDER BY name"
    )))
    .fetch_all(pool)
    .await?;
    rows.iter().map(list_from_row).collect()
}

pub(crate) async fn list(pool: &AnyPool, key: &str) -> Result<Option<DnsList>> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {LIST_COLUMNS} FROM dns_lists WHERE id = $1 OR name = $1"
    )))
    .bind(key)
    .fetch_optional(pool)
    .await?;
    row.as_ref().map(list_from_row).transpose()
}

/// Names and contents of the enabled lists, in a stable order (earlier lists win attribution).
pub(crate) async fn enabled_contents(pool: &AnyPool) -> Result<Vec<(String, String)>> {
    let rows = sqlx::query(
        "SELECT name, content FROM dns_lists WHERE enabled = 1 ORDER BY created_at, name",
    )
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|r| Ok((r.try_get("name")?, r.try_get("content")?)))
        .collect()
}

pub(crate) async fn insert_list(pool: &AnyPool, l: &DnsList, content: &str) -> Result<()> {
    sqlx::query(
        "INSERT INTO dns_lists (id, name, url, enabled, entries, invalid_lines, content, updated_at, checked_at, last_error, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
    )
    .bind(&l.id)
    .bind(&l.name)
    .bind(l.url.clone())
    .bind(i64::from(l.enabled))
    .bind(l.entries)
    .bind(l.invalid_lines)
    .bind(content)
    .bind(l.updated_at)
    .bind(l.checked_at)
    .bind(l.last_error.clone())
    .bind(l.created_at)
    .execute(pool)
    .await?;
    Ok(())
}

/// Stores a new good copy.
pub(crate) async fn store_content(
    pool: &AnyPool,
    id: &str,
    content: &str,
    entries: i64,
    invalid: i64,
    now: i64,
) -> Result<()> {
    sqlx::query(
        "UPDATE dns_lists SET content = $1, entries = $2, invalid_lines = $3, updated_at = $4, checked_at = $4, last_error = NULL WHERE id = $5",
    )
    .bind(content)
    .bind(entries)
    .bind(invalid)
    .bind(now)
    .bind(id)
    .execute(pool)
    .await?;
    Ok(())
}

/// Records a failed refresh; the content (last good copy) stays.
pub(crate) async fn store_failure(pool: &AnyPool, id: &str, error: &str, now: i64) -> Result<()> {
    sqlx::query("UPDATE dns_lists SET last_error = $1, checked_at = $2 WHERE id = $3")
        .bind(error)
        .bind(now)
        .bind(id)
        .execute(pool)
        .await?;
    Ok(())
}

pub(crate) async fn set_enabled(pool: &AnyPool, id: &str, enabled: bool) -> Result<()> {
    sqlx::query("UPDATE dns_lists SET enabled = $1 WHERE id = $2")
        .bind(i64::from(enabled))
        .bind(id)
        .execute(pool)
        .await?;
    Ok(())
}

pub(crate) async fn delete_list(pool: &AnyPool, id: &str) -> Result<()> {
    sqlx::query("DELETE FROM dns_lists WHERE id = $1")
        .bind(id)
        .execute(pool)
        .await?;
    Ok(())
}

pub(crate) async fn rules(pool: &AnyPool) -> Result<Vec<DnsRule>> {
    let rows = sqlx::query("SELECT id, kind, name, created_at FROM dns_rules ORDER BY kind, name")
        .fetch_all(pool)
        .await?;
    rows.iter()
        .map(|r| {
            let kind: String = r.try_get("kind")?;
            Ok(DnsRule {
                id: r.try_get("id")?,
                kind: kind
                    .parse::<RuleKind>()
                    .map_err(|e| Error::Corrupt(format!("dns rule kind: {e}")))?,
                name: r.try_get("name")?,
                created_at: r.try_get("created_at")?,
            })
        })
        .collect()
}

pub(crate) async fn insert_rule(pool: &AnyPool, r: &DnsRule) -> Result<()> {
    sqlx::query("INSERT INTO dns_rules (id, kind, name, created_at) VALUES ($1, $2, $3, $4)")
        .bind(&r.id)
        .bind(r.kind.as_str())
        .bind(&r.name)
        .bind(r.created_at)
        .execute(pool)
        .await?;
    Ok(())
}

pub(crate) async fn delete_rule(pool: &AnyPool, id: &str) -> Result<u64> {
    Ok(sqlx::query("DELETE FROM dns_rules WHERE id = $1")
        .bind(id)
        .execute(pool)
        .await?
        .rows_affected())
}
