//! Portable backups: every table as JSON plus the secret key, so a backup taken on SQLite restores
//! onto PostgreSQL and back. The file holds the key that opens the stored private keys: it is written
//! mode 0600 and must be kept like the data dir itself.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};
use sqlx::{AnyPool, Row};

use crate::error::{Error, Result};

/// Current backup format version.
pub const BACKUP_VERSION: u32 = 1;

/// One table's rows as JSON values in column order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TableDump {
    /// Table name.
    pub table: String,
    /// Column names.
    pub columns: Vec<String>,
    /// Rows, each value a JSON string, integer or null.
    pub rows: Vec<Vec<serde_json::Value>>,
}

/// A whole-store backup.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Backup {
    /// Format version.
    pub version: u32,
    /// When it was taken, Unix seconds.
    pub created_at: i64,
    /// The data dir's secret key, base64.
    pub secret_key: String,
    /// Every table.
    pub tables: Vec<TableDump>,
}

/// Tables and their columns in restore order (parents before children). The column lists are
/// fixed strings, never user input.
const TABLES: &[(&str, &[&str])] = &[
    ("settings", &["key", "value"]),
    (
        "users",
        &["id", "username", "role", "password_hash", "created_at"],
    ),
    (
        "api_tokens",
        &[
            "id",
            "user_id",
            "name",
            "token_hash",
            "created_at",
            "last_used_at",
        ],
    ),
    (
        "peers",
        &[
            "id",
            "user_id",
            "name",
            "kind",
            "client_to_client",
            "listen_port",
            "addr_index",
            "public_key",
            "private_key",
            "preshared_key",
            "created_at",
        ],
    ),
    (
        "totp",
        &["user_id", "secret", "confirmed", "last_step", "created_at"],
    ),
    ("recovery_codes", &["id", "user_id", "code_hash", "used_at"]),
    (
        "sessions",
        &[
            "id",
            "user_id",
            "peer_id",
            "address",
            "created_at",
            "expires_at",
        ],
    ),
    // The DNS query log is left out on purpose: it is bulky, short-lived and personal. So are the
    // firewall's metrics samples (`firewall_samples`): counter deltas that expire on their own and
    // mean nothing on another host.
    (
        "dns_lists",
        &[
            "id",
            "name",
            "url",
            "enabled",
            "entries",
            "invalid_lines",
            "content",
            "updated_at",
            "checked_at",
            "last_error",
            "created_at",
        ],
    ),
    ("dns_rules", &["id", "kind", "name", "created_at"]),
    (
        "coppercloud_lists",
        &[
            "id",
            "name",
            "mode",
            "url",
            "enabled",
            "content",
            "entries",
            "refreshed_at",
            "last_error",
            "created_at",
            "updated_at",
        ],
    ),
];

/// Integer columns; every other column is text.
fn is_integer(column: &str) -> bool {
    matches!(
        column,
        "created_at"
            | "last_used_at"
            | "client_to_client"
            | "addr_index"
            | "confirmed"
            | "last_step"
            | "used_at"
            | "expires_at"
            | "enabled"
            | "entries"
            | "refreshed_at"
            | "updated_at"
            | "invalid_lines"
            | "checked_at"
    )
}

impl Backup {
    /// Reads every table.
    pub(crate) async fn take(pool: &AnyPool, secret_key: &[u8; 32], now: i64) -> Result<Self> {
        let mut tables = Vec::new();
        for (table, columns) in TABLES {
            let sql = format!("SELECT {} FROM {table} ORDER BY 1", columns.join(", "));
            let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
                .fetch_all(pool)
                .await?;
            let mut out = Vec::with_capacity(rows.len());
            for row in &rows {
                let mut values = Vec::with_capacity(columns.len());
                for (i, col) in columns.iter().enumerate() {
                    let v = if is_integer(col) {
                        row.try_get::<Option<i64>, _>(i)?
                            .map_or(serde_json::Value::Null, Into::into)
                    } else {
                        row.try_get::<Option<String>, _>(i)?
                            .map_or(serde_json::Value::Null, Into::into)
                    };
                    values.push(v);
                }
                out.push(values);
            }
            tables.push(TableDump {
                table: (*table).into(),
                columns: columns.iter().map(|c| (*c).into()).collect(),
                rows: out,
            });
        }
        Ok(Self {
            version: BACKUP_VERSION,
            created_at: now,
            secret_key: STANDARD.encode(secret_key),
            tables,
        })
    }

    /// Writes the backup as JSON to `path`, mode 0600 (it holds the secret key), through a temp
    /// file in the same directory and a rename. An existing `path` is refused (a conflict) unless
    /// `replace` is set; a symlink at `path` is replaced, never followed.
    pub fn write_file(&self, path: &std::path::Path, replace: bool) -> Result<()> {
        let json = serde_json::to_vec_pretty(self)
            .map_err(|e| Error::Corrupt(format!("backup does not serialize: {e}")))?;
        crate::crypto::write_new_private_file(path, &json, replace)
    }

    /// Reads and checks a backup file written by [`Backup::write_file`].
    pub fn read_file(path: &std::path::Path) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        let backup: Self = serde_json::from_slice(&bytes).map_err(|e| {
            Error::invalid(
                "backup",
                format!("{} is not a Mistborn backup: {e}", path.display()),
            )
        })?;
        backup.validate()?;
        Ok(backup)
    }

    /// The secret key bytes.
    pub fn secret_key_bytes(&self) -> Result<[u8; 32]> {
        STANDARD
            .decode(&self.secret_key)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| Error::invalid("backup", "secret_key is not 32 bytes of base64"))
    }

    /// Checks the shape before anything is written.
    pub fn validate(&self) -> Result<()> {
        if self.version != BACKUP_VERSION {
            return Err(Error::invalid(
                "backup",
                format!(
                    "format version {} is not supported (expected {BACKUP_VERSION})",
                    self.version
                ),
            ));
        }
        self.secret_key_bytes()?;
        for dump in &self.tables {
            let (_, columns) = TABLES
                .iter()
                .find(|(t, _)| *t == dump.table)
                .ok_or_else(|| {
                    Error::invalid("backup", format!("unknown table '{}'", dump.table))
                })?;
            if dump
                .columns
                .iter()
                .map(String::as_str)
                .ne(columns.iter().copied())
            {
                return Err(Error::invalid(
                    "backup",
                    format!("table '{}' has unexpected columns", dump.table),
                ));
            }
            if let Some(bad) = dump.rows.iter().position(|r| r.len() != columns.len()) {
                return Err(Error::invalid(
                    "backup",
                    format!(
                        "table '{}' row {bad} has the wrong number of values",
                        dump.table
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Writes every row into `pool` in one transaction. With `replace`, existing rows go first;
    /// without it, a store that already has users is refused.
    pub(crate) async fn load(&self, pool: &AnyPool, replace: bool) -> Result<()> {
        self.validate()?;
        let mut tx = pool.begin().await?;
        let users: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM users")
            .fetch_one(&mut *tx)
            .await?;
        if users > 0 && !replace {
            return Err(Error::Conflict(
                "the database already holds users: restore into a fresh data dir, or pass --force to replace everything".into(),
            ));
        }
        for (table, _) in TABLES.iter().rev() {
            sqlx::query(sqlx::AssertSqlSafe(format!("DELETE FROM {table}")))
                .execute(&mut *tx)
                .await?;
        }
        for (table, columns) in TABLES {
            let Some(dump) = self.tables.iter().find(|d| d.table == *table) else {
                continue;
            };
            let placeholders: Vec<String> = (1..=columns.len()).map(|i| format!("${i}")).collect();
            let sql = format!(
                "INSERT INTO {table} ({}) VALUES ({})",
                columns.join(", "),
                placeholders.join(", ")
            );
            for row in &dump.rows {
                let mut q = sqlx::query(sqlx::AssertSqlSafe(sql.clone()));
                for (col, v) in columns.iter().zip(row) {
                    q = if is_integer(col) {
                        match v {
                            serde_json::Value::Null => q.bind(None::<i64>),
                            v => q.bind(Some(v.as_i64().ok_or_else(|| {
                                Error::invalid("backup", format!("{table}.{col} is not an integer"))
                            })?)),
                        }
                    } else {
                        match v {
                            serde_json::Value::Null => q.bind(None::<String>),
                            v => q.bind(Some(
                                v.as_str()
                                    .ok_or_else(|| {
                                        Error::invalid(
                                            "backup",
                                            format!("{table}.{col} is not text"),
                                        )
                                    })?
                                    .to_string(),
                            )),
                        }
                    };
                }
                q.execute(&mut *tx).await?;
            }
        }
        // A daemon running on this database hears of everything that was replaced.
        for domain in super::revision::Domain::ALL {
            super::revision::bump(&mut tx, domain).await?;
        }
        tx.commit().await?;
        Ok(())
    }
}
