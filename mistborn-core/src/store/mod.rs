//! The database: an sqlx `Any` pool over SQLite (embedded default) or PostgreSQL (by URL), one set of
//! migrations for both, and the portable backup format. Domain queries live beside their domain
//! (`users/store.rs`, `peers/store.rs`); this module owns the connection and the schema.

mod backup;
pub mod revision;

pub use backup::Backup;

use std::str::FromStr;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, ConnectOptions};

use crate::error::{Error, Result};

/// Which database engine a URL points at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    /// Embedded SQLite file.
    Sqlite,
    /// PostgreSQL server.
    Postgres,
}

/// The pool and its engine.
#[derive(Debug, Clone)]
pub struct Store {
    pool: AnyPool,
    engine: Engine,
}

impl Store {
    /// Connects to `url` and brings the schema up to date.
    pub async fn connect(url: &str) -> Result<Self> {
        sqlx::any::install_default_drivers();
        let engine = if url.starts_with("sqlite:") {
            Engine::Sqlite
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Engine::Postgres
        } else {
            return Err(Error::Config(format!(
                "database URL must start with sqlite:// or postgres://, got '{}'",
                redact(url)
            )));
        };
        let sqlite_file = sqlite_path(url);
        if let Some(path) = &sqlite_file {
            // SQLite creates its -wal and -shm files with the database file's mode: 0600 here.
            crate::crypto::precreate_private(path)?;
        }
        let options = AnyConnectOptions::from_str(url)
            .map_err(|e| Error::Config(format!("database URL '{}': {e}", redact(url))))?
            .log_statements(tracing::log::LevelFilter::Trace);
        let pool = AnyPoolOptions::new()
            // SQLite allows one writer; more connections only add lock contention.
            .max_connections(if engine == Engine::Sqlite { 1 } else { 8 })
            .acquire_timeout(Duration::from_secs(10))
            // No idle/lifetime reaping: sqlx's reaper task can wrap its idle count and spin a
            // core forever, hanging the process at exit (seen here in a CLI run; sqlx issue
            // #3645, fix #4289 not released in 0.9.0). At most 8 connections need no reaping.
            .idle_timeout(None)
            .max_lifetime(None)
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    if engine == Engine::Sqlite {
                        use sqlx::Executor;
                        conn.execute("PRAGMA foreign_keys = ON; PRAGMA journal_mode = WAL; PRAGMA busy_timeout = 5000;")
                            .await?;
                    }
                    Ok(())
                })
            })
            .connect_with(options)
            .await?;
        sqlx::migrate!("./migrations").run(&pool).await?;
        if let Some(path) = &sqlite_file {
            // Installs made before this rule have 0644 files.
            for suffix in ["", "-wal", "-shm"] {
                let mut p = path.clone().into_os_string();
                p.push(suffix);
                crate::crypto::private_if_exists(std::path::Path::new(&p))?;
            }
        }
        Ok(Self { pool, engine })
    }

    /// The pool, for domain queries.
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// The engine in use.
    pub fn engine(&self) -> Engine {
        self.engine
    }

    /// Reads a setting.
    pub async fn setting(&self, key: &str) -> Result<Option<String>> {
        Ok(
            sqlx::query_scalar("SELECT value FROM settings WHERE key = $1")
                .bind(key)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    /// Writes a setting only if it is not set yet; returns the value in force.
    pub async fn setting_init(&self, key: &str, value: &str) -> Result<String> {
        sqlx::query(
            "INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING",
        )
        .bind(key)
        .bind(value)
        .execute(&self.pool)
        .await?;
        self.setting(key)
            .await?
            .ok_or_else(|| Error::Corrupt(format!("setting {key} vanished")))
    }

    /// Writes a setting, replacing any value.
    pub async fn set_setting(&self, key: &str, value: &str) -> Result<()> {
        sqlx::query(
            "INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        )
        .bind(key)
        .bind(value)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Closes every connection (flushes SQLite's WAL).
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// Whether a database error is a uniqueness violation (same on both engines: SQLSTATE 23505 /
/// SQLite 2067 or 1555).
pub(crate) fn is_unique_violation(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Database(db) => db.is_unique_violation(),
        _ => false,
    }
}

/// For `map_err`: a uniqueness violation becomes [`Error::Conflict`] with `message` (which should
/// say what is taken and what to do); other errors pass through.
pub(crate) fn conflict_if_taken(message: impl FnOnce() -> String) -> impl FnOnce(Error) -> Error {
    move |e| match e {
        Error::Store(ref s) if is_unique_violation(s) => Error::Conflict(message()),
        e => e,
    }
}

/// The database file of an `sqlite:` URL (`None` for an in-memory database).
fn sqlite_path(url: &str) -> Option<std::path::PathBuf> {
    let rest = url.strip_prefix("sqlite:")?;
    let rest = rest.strip_prefix("//").unwrap_or(rest);
    let path = rest.split('?').next().unwrap_or_default();
    (!path.is_empty() && !path.starts_with(":memory:")).then(|| std::path::PathBuf::from(path))
}

/// A URL with its password replaced, for messages.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.find(':') {
                Some(c) => format!("{}{}:***{}", &url[..s + 3], &creds[..c], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

/// Seconds since the Unix epoch, the stored time format.
pub(crate) fn now_unix() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

#[cfg(test)]
mod tests {
    #[test]
    fn sqlite_paths_from_urls() {
        use std::path::PathBuf;
        assert_eq!(
            super::sqlite_path("sqlite:///var/lib/m/mistborn.db?mode=rwc"),
            Some(PathBuf::from("/var/lib/m/mistborn.db"))
        );
        assert_eq!(
            super::sqlite_path("sqlite://rel/m.db"),
            Some(PathBuf::from("rel/m.db"))
        );
        assert_eq!(super::sqlite_path("sqlite::memory:"), None);
        assert_eq!(super::sqlite_path("postgres://u@h/db"), None);
    }

    #[test]
    fn redacts_passwords() {
        assert_eq!(
            super::redact("postgres://u:secret@h:1/db"),
            "postgres://u:***@h:1/db"
        );
        assert_eq!(super::redact("sqlite://x.db"), "sqlite://x.db");
    }
}
