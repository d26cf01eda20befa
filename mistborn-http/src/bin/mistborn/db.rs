//! `mistborn db backup|restore`: the whole store as one JSON file.

use std::path::Path;

use mistborn_core::store::Backup;
use mistborn_core::{Actor, Config, Mistborn, Result};

/// Writes a backup of the open store to `file` (mode 0600: it holds the secret key).
pub async fn backup(m: &Mistborn, file: &Path, force: bool) -> Result<()> {
    let backup = m.backup(&Actor::System).await?;
    backup.write_file(file, force)?;
    let count = |t: &str| {
        backup
            .tables
            .iter()
            .find(|d| d.table == t)
            .map_or(0, |d| d.rows.len())
    };
    println!(
        "backup written to {} ({} users, {} profiles, {} tokens); it contains the secret key: keep it private",
        file.display(),
        count("users"),
        count("peers"),
        count("api_tokens")
    );
    Ok(())
}

/// `db migrate`: opening the store (done before this is called) applied every migration this
/// binary knows, each in its own transaction.
pub fn migrated(m: &Mistborn) -> Result<()> {
    println!(
        "database schema up to date (data dir {})",
        m.config().data_dir.display()
    );
    Ok(())
}

/// Restores `file` into the configured data dir and database.
pub async fn restore(config: &Config, file: &Path, force: bool) -> Result<()> {
    let backup = Backup::read_file(file)?;
    Mistborn::restore(config, &backup, force).await?;
    println!(
        "restored {} into {}",
        file.display(),
        config.data_dir.display()
    );
    Ok(())
}
