//! Files and directories only their owner may read: the data dir (0700: it holds the database with
//! every user's password hash and DNS log) and the SQLite files (0600).

use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

use crate::error::{Error, Result};

/// Creates `dir` (and missing parents) mode 0700, or narrows an existing one to 0700: installs made
/// before this rule had 0755.
pub(crate) fn private_dir(dir: &Path) -> Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| Error::io(dir, e))?;
    restrict(dir, 0o700)
}

/// Narrows an existing file to 0600 (a missing file is fine).
pub(crate) fn private_if_exists(path: &Path) -> Result<()> {
    match std::fs::metadata(path) {
        Ok(_) => restrict(path, 0o600),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io(path, e)),
    }
}

/// Creates an empty file mode 0600 unless it exists, so a program that opens it later (SQLite)
/// does not create it with the umask's mode.
pub(crate) fn precreate_private(path: &Path) -> Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    }
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => private_if_exists(path),
        Err(e) => Err(Error::io(path, e)),
    }
}

fn restrict(path: &Path, mode: u32) -> Result<()> {
    let meta = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
    if meta.permissions().mode() & 0o777 == mode {
        return Ok(());
    }
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .map_err(|e| Error::io(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).expect("meta").permissions().mode() & 0o777
    }

    #[test]
    fn dirs_and_files_become_private() {
        let t = tempfile::tempdir().expect("tmp");
        let dir = t.path().join("a/b");
        private_dir(&dir).expect("create");
        assert_eq!(mode(&dir), 0o700);
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        private_dir(&dir).expect("narrow");
        assert_eq!(mode(&dir), 0o700);
        let f = dir.join("db");
        precreate_private(&f).expect("create");
        assert_eq!(mode(&f), 0o600);
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        precreate_private(&f).expect("narrow");
        assert_eq!(mode(&f), 0o600);
        private_if_exists(&dir.join("missing")).expect("missing is fine");
    }
}
