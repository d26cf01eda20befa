//! `mistborn db backup|restore`: the whole store as one JSON file.

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use mistborn_core::store::Backup;
use mistborn_core::{Actor, Config, Error, Mistborn, Result};

/// Writes a backup of the open store to `file` (mode 0600: it holds the secret key).
pub async fn backup(m: &Mistborn, file: &Path) -> Result<()> {
    let backup = m.backup(&Actor::System).await?;
    let json = serde_json::to_vec_pretty(&backup)
        .map_err(|e| Error::invalid("backup", format!("cannot serialize: {e}")))?;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(file)
        .map_err(|e| Error::io(file, e))?;
    // An existing file keeps its old mode on open: tighten it before writing secrets.
    f.set_permissions(std::fs::Permissions::from_mode(0o600))
        .and_then(|()| f.write_all(&json))
        .and_then(|()| f.sync_all())
        .map_err(|e| Error::io(file, e))?;
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

/// Restores `file` into the configured data dir and database.
pub async fn restore(config: &Config, file: &Path, force: bool) -> Result<()> {
    let text = std::fs::read(file).map_err(|e| Error::io(file, e))?;
    let backup: Backup = serde_json::from_slice(&text).map_err(|e| {
        Error::invalid(
            "backup",
            format!("{} is not a Mistborn backup: {e}", file.display()),
        )
    })?;
    Mistborn::restore(config, &backup, force).await?;
    println!(
        "restored {} into {}",
        file.display(),
        config.data_dir.display()
    );
    Ok(())
}
