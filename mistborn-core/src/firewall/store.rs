//! SQL for Coppercloud lists.

use sqlx::any::AnyRow;
use sqlx::{AnyPool, Row};

use super::coppercloud::ListMode;
use super::lists::CopperList;
use crate::error::{Error, Result};

const COLUMNS: &str =
    "id, name, mode, url, enabled, entries, refreshed_at, last_error, created_at, updated_at";

fn list_from_row(r: &AnyRow) -> Result<CopperList> {
    let mode: String = r.try_get("mode")?;
    let enabled: i64 = r.try_get("enabled")?;
    let entries: i64 = r.try_get("entries")?;
    Ok(CopperList {
        id: r.try_get("id")?,
        name: r.try_get("name")?,
        mode: mode
            .parse::<ListMode>()
            .map_err(|_| Error::Corrupt(format!("coppercloud list mode '{mode}'")))?,
        url: r.try_get("url")?,
        enabled: enabled != 0,
        entries: u64::try_from(entries).unwrap_or(0),
        refreshed_at: r.try_get("refreshed_at")?,
        last_error: r.try_get("last_error")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
    })
}

pub(crate) async fn lists(pool: &AnyPool) -> Result<Vec<CopperList>> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM coppercloud_lists ORDER BY name"
    )))
    .fetch_all(pool)
    .await?;
    rows.iter().map(list_from_row).collect()
}

pub(crate) async fn list(pool: &AnyPool, key: &str) -> Result<Option<CopperList>> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM coppercloud_lists WHERE id = $1 OR name = $1"
    )))
    .bind(key)
    .fetch_optional(pool)
    .await?;
    row.as_ref().map(list_from_row).transpose()
}

/// Enabled lists with their last good content.
pub(crate) async fn enabled_contents(pool: &AnyPool) -> Result<Vec<(String, ListMode, String)>> {
    let rows = sqlx::query(
        "SELECT id, mode, content FROM coppercloud_lists WHERE enabled = 1 ORDER BY id",
    )
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|r| {
            let mode: String = r.try_get("mode")?;
            Ok((
                r.try_get("id")?,
                mode.parse::<ListMode>()
                    .map_err(|_| Error::Corrupt(format!("coppercloud list mode '{mode}'")))?,
                r.try_get("content")?,
            ))
        })
        .collect()
}

pub(crate) async fn insert(pool: &AnyPool, l: &CopperList, content: &str) -> Result<()> {
    sqlx::query(
        "INSERT INTO coppercloud_lists (id, name, mode, url, enabled, content, entries, refreshed_at, last_error, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
    )
    .bind(&l.id)
    .bind(&l.name)
    .bind(l.mode.as_str())
    .bind(l.url.clone())
    .bind(i64::from(l.enabled))
    .bind(content)
    .bind(i64::try_from(l.entries).unwrap_or(i64::MAX))
    .bind(l.refreshed_at)
    .bind(l.last_error.clone())
    .bind(l.created_at)
    .bind(l.updated_at)
    .execute(pool)
    .await
    .map_err(Error::from)
    .map_err(crate::store::conflict_if_taken(|| {
        format!("a Coppercloud list named '{}' exists", l.name)
    }))?;
    Ok(())
}

/// Writes every field but the content.
pub(crate) async fn update_meta(pool: &AnyPool, l: &CopperList) -> Result<()> {
    sqlx::query(
        "UPDATE coppercloud_lists SET name = $2, mode = $3, url = $4, enabled = $5, refreshed_at = $6, last_error = $7, updated_at = $8 WHERE id = $1",
    )
    .bind(&l.id)
    .bind(&l.name)
    .bind(l.mode.as_str())
    .bind(l.url.clone())
    .bind(i64::from(l.enabled))
    .bind(l.refreshed_at)
    .bind(l.last_error.clone())
    .bind(l.updated_at)
    .execute(pool)
    .await
    .map_err(Error::from)
    .map_err(crate::store::conflict_if_taken(|| {
        format!("a Coppercloud list named '{}' exists", l.name)
    }))?;
    Ok(())
}

/// Replaces the content (a new good copy).
pub(crate) async fn set_content(
    pool: &AnyPool,
    id: &str,
    content: &str,
    entries: u64,
    now: i64,
) -> Result<()> {
    sqlx::query(
        "UPDATE coppercloud_lists SET content = $2, entries = $3, refreshed_at = $4, last_error = NULL, updated_at = $4 WHERE id = $1",
    )
    .bind(id)
    .bind(content)
    .bind(i64::try_from(entries).unwrap_or(i64::MAX))
    .bind(now)
    .execute(pool)
    .await?;
    Ok(())
}

pub(crate) async fn delete(pool: &AnyPool, id: &str) -> Result<bool> {
    let r = sqlx::query("DELETE FROM coppercloud_lists WHERE id = $1")
        .bind(id)
        .execute(pool)
        .await?;
    Ok(r.rows_affected() > 0)
}
