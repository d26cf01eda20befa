//! SQL for DNS lists and rules (same text on SQLite and PostgreSQL). The query log has its own
//! database (`super::logstore`).

use sqlx::any::AnyRow;
use sqlx::{AnyPool, Row};

use super::types::{DnsList, DnsRule, LineError, RuleKind};
use crate::error::{Error, Result};

const LIST_COLUMNS: &str = "id, name, url, enabled, entries, invalid_lines, not_for_dns, updated_at, checked_at, last_error, created_at";

fn list_from_row(row: &AnyRow) -> Result<DnsList> {
    Ok(DnsList {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        url: row.try_get("url")?,
        enabled: row.try_get::<i64, _>("enabled")? != 0,
        entries: row.try_get("entries")?,
        invalid_lines: row.try_get("invalid_lines")?,
        not_for_dns: row.try_get("not_for_dns")?,
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

pub(crate) async fn insert_list(
    pool: &AnyPool,
    l: &DnsList,
    content: &str,
    line_errors: &[LineError],
) -> Result<()> {
    sqlx::query(
        "INSERT INTO dns_lists (id, name, url, enabled, entries, invalid_lines, content, updated_at, checked_at, last_error, created_at, not_for_dns, line_errors) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
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
    .bind(l.not_for_dns)
    .bind(errors_json(line_errors)?)
    .execute(pool)
    .await?;
    Ok(())
}

fn errors_json(line_errors: &[LineError]) -> Result<String> {
    serde_json::to_string(line_errors).map_err(|e| Error::Corrupt(format!("line errors: {e}")))
}

/// What parsing a copy found, stored with it.
pub(crate) struct ContentSummary<'a> {
    pub entries: i64,
    pub invalid: i64,
    pub not_for_dns: i64,
    pub line_errors: &'a [LineError],
}

/// Stores a new good copy.
pub(crate) async fn store_content(
    pool: &AnyPool,
    id: &str,
    content: &str,
    summary: &ContentSummary<'_>,
    now: i64,
) -> Result<()> {
    sqlx::query(
        "UPDATE dns_lists SET content = $1, entries = $2, invalid_lines = $3, updated_at = $4, checked_at = $4, last_error = NULL, not_for_dns = $5, line_errors = $6 WHERE id = $7",
    )
    .bind(content)
    .bind(summary.entries)
    .bind(summary.invalid)
    .bind(now)
    .bind(summary.not_for_dns)
    .bind(errors_json(summary.line_errors)?)
    .bind(id)
    .execute(pool)
    .await?;
    Ok(())
}

/// The stored line errors; `None` for a list stored before they were kept.
pub(crate) async fn line_errors(pool: &AnyPool, id: &str) -> Result<Option<Vec<LineError>>> {
    let json: Option<String> =
        sqlx::query_scalar("SELECT line_errors FROM dns_lists WHERE id = $1")
            .bind(id)
            .fetch_one(pool)
            .await?;
    json.map(|j| {
        serde_json::from_str(&j).map_err(|e| Error::Corrupt(format!("dns list line errors: {e}")))
    })
    .transpose()
}

/// The last good copy of a list.
pub(crate) async fn content(pool: &AnyPool, id: &str) -> Result<String> {
    Ok(
        sqlx::query_scalar("SELECT content FROM dns_lists WHERE id = $1")
            .bind(id)
            .fetch_one(pool)
            .await?,
    )
}

/// Stores the line errors and counts worked out again from the stored content.
pub(crate) async fn store_summary(
    pool: &AnyPool,
    id: &str,
    summary: &ContentSummary<'_>,
) -> Result<()> {
    sqlx::query(
        "UPDATE dns_lists SET entries = $1, invalid_lines = $2, not_for_dns = $3, line_errors = $4 WHERE id = $5",
    )
    .bind(summary.entries)
    .bind(summary.invalid)
    .bind(summary.not_for_dns)
    .bind(errors_json(summary.line_errors)?)
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
                warning: None,
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
