//! The one error type of `mistborn-core`. Frontends map [`ErrorKind`] to HTTP status codes, Python
//! exceptions and FFI errors; [`Error::code`] is a stable machine-readable string for clients.

use std::path::PathBuf;

/// Result alias used throughout the core.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Broad classes of failure, stable across versions, for frontends to map once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// Input was malformed or out of range; nothing was changed.
    InvalidInput,
    /// The thing asked for does not exist (or the actor may not know it exists).
    NotFound,
    /// No valid credentials were given.
    Unauthenticated,
    /// The actor is known but may not do this.
    Forbidden,
    /// The request clashes with existing state (duplicate name, full pool, ...).
    Conflict,
    /// Too many failed attempts: wait before trying again.
    RateLimited,
    /// Something outside the caller's control failed (database, disk, data plane).
    Internal,
}

/// Every failure the core reports.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A field of the input is malformed.
    #[error("invalid {field}: {reason}")]
    Invalid {
        /// Which input field.
        field: &'static str,
        /// What is wrong with it and what is expected.
        reason: String,
    },
    /// No such object, or not visible to the actor.
    #[error("{what} not found")]
    NotFound {
        /// What was looked for, e.g. "user 'bob'".
        what: String,
    },
    /// Missing or wrong credentials.
    #[error("authentication failed: {0}")]
    Unauthenticated(String),
    /// The actor lacks the right.
    #[error("permission denied: {0}")]
    Forbidden(String),
    /// A uniqueness rule was broken.
    #[error("{0}")]
    Conflict(String),
    /// Every address of the tunnel subnet is taken.
    #[error(
        "the tunnel address pool {pool} is full ({size} client addresses in use); delete unused profiles or widen the subnet in the config"
    )]
    PoolExhausted {
        /// The exhausted subnet.
        pool: String,
        /// How many client addresses it holds.
        size: u64,
    },
    /// The firewall could not be applied or read (nft missing, refused ruleset, netlink).
    #[error("firewall: {0}")]
    Firewall(String),
    /// Too many failed attempts from this user or address.
    #[error("too many failed attempts: try again in {retry_after_secs} seconds")]
    Throttled {
        /// Seconds until attempts are accepted again.
        retry_after_secs: u64,
    },
    /// The configuration could not be read or is inconsistent.
    #[error("configuration: {0}")]
    Config(String),
    /// A database query failed.
    #[error("database: {0}")]
    Store(#[from] sqlx::Error),
    /// Schema migration failed.
    #[error("database migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// Encrypted data at rest could not be opened (wrong or missing key file, corrupt value).
    #[error("secret store: {0}")]
    Crypto(String),
    /// A stored value does not parse; the database was edited by hand or is corrupt.
    #[error("corrupt stored data: {0}")]
    Corrupt(String),
    /// The WireGuard data plane cannot run or failed (no root, no module, no wireguard-go...).
    #[error("data plane: {0}")]
    DataPlane(String),
    /// A part of the running daemon (a supervised task, the HTTP server a frontend added) failed
    /// or stopped on its own.
    #[error("daemon: {0}")]
    Daemon(String),
}

impl Error {
    /// Shorthand for [`Error::Invalid`].
    pub fn invalid(field: &'static str, reason: impl Into<String>) -> Self {
        Error::Invalid {
            field,
            reason: reason.into(),
        }
    }

    /// Shorthand for [`Error::NotFound`].
    pub fn not_found(what: impl Into<String>) -> Self {
        Error::NotFound { what: what.into() }
    }

    /// Shorthand for an I/O error on `path`.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    /// The broad class, for frontends.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Invalid { .. } => ErrorKind::InvalidInput,
            Error::NotFound { .. } => ErrorKind::NotFound,
            Error::Unauthenticated(_) => ErrorKind::Unauthenticated,
            Error::Forbidden(_) => ErrorKind::Forbidden,
            Error::Conflict(_) | Error::PoolExhausted { .. } => ErrorKind::Conflict,
            Error::Throttled { .. } => ErrorKind::RateLimited,
            Error::Firewall(_) => ErrorKind::Internal,
            Error::Config(_) => ErrorKind::InvalidInput,
            Error::Store(_)
            | Error::Migrate(_)
            | Error::Io { .. }
            | Error::Crypto(_)
            | Error::Corrupt(_)
            | Error::DataPlane(_)
            | Error::Daemon(_) => ErrorKind::Internal,
        }
    }

    /// A stable code for API clients, e.g. `pool_exhausted`.
    pub fn code(&self) -> &'static str {
        match self {
            Error::Invalid { .. } => "invalid_input",
            Error::NotFound { .. } => "not_found",
            Error::Unauthenticated(_) => "unauthenticated",
            Error::Forbidden(_) => "forbidden",
            Error::Conflict(_) => "conflict",
            Error::PoolExhausted { .. } => "pool_exhausted",
            Error::Throttled { .. } => "throttled",
            Error::Firewall(_) => "firewall",
            Error::Config(_) => "config",
            Error::Store(_) | Error::Migrate(_) => "store",
            Error::Io { .. } => "io",
            Error::Crypto(_) => "crypto",
            Error::Corrupt(_) => "corrupt",
            Error::DataPlane(_) => "dataplane",
            Error::Daemon(_) => "daemon",
        }
    }
}
