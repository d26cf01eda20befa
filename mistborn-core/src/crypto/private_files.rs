//! Files and directories only their owner may read: the data dir (0700: it holds the database with
//! every user's password hash and DNS log), the SQLite files (0600), and files written whole and
//! atomically (a backup: a temp file in the same directory, then a rename).

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// Creates the data dir `dir` (and missing parents) mode 0700, or narrows an existing one to 0700
/// (installs made before this rule had 0755). An existing directory is narrowed only when it is
/// empty or already holds Mistborn's key file `marker`: a data dir set by mistake to a shared
/// directory (`/var/lib`, a home) is left as it is.
pub(crate) fn private_dir(dir: &Path, marker: &str) -> Result<()> {
    let existed = dir.is_dir();
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| Error::io(dir, e))?;
    let ours = !existed
        || dir.join(marker).exists()
        || std::fs::read_dir(dir)
            .map_err(|e| Error::io(dir, e))?
            .next()
            .is_none();
    if ours {
        restrict(dir, 0o700)
    } else {
        tracing::warn!(
            dir = %dir.display(),
            "the data dir holds other files and no {marker}: its mode is left as it is"
        );
        Ok(())
    }
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

/// Writes `bytes` to `path` mode 0600 through a temp file in the same directory and a rename, so a
/// reader never sees half a file and nothing is written through a symlink planted at `path`. An
/// existing `path` is refused unless `replace` is set.
pub(crate) fn write_new_private_file(path: &Path, bytes: &[u8], replace: bool) -> Result<()> {
    if !replace && std::fs::symlink_metadata(path).is_ok() {
        return Err(Error::Conflict(format!(
            "{} already exists: choose another file or replace it explicitly (--force)",
            path.display()
        )));
    }
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path
        .file_name()
        .ok_or_else(|| Error::invalid("path", format!("{} names no file", path.display())))?;
    let tmp = dir.join(format!(
        ".{}.{}.tmp",
        name.to_string_lossy(),
        uuid::Uuid::new_v4().simple()
    ));
    let written = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(Error::io(&tmp, e));
    }
    // Without `replace`, link the finished file into place: that fails if `path` appeared
    // meanwhile, where a rename would silently replace it.
    let placed = if replace {
        std::fs::rename(&tmp, path)
    } else {
        std::fs::hard_link(&tmp, path).and_then(|()| std::fs::remove_file(&tmp))
    };
    if let Err(e) = placed {
        let _ = std::fs::remove_file(&tmp);
        if e.kind() == std::io::ErrorKind::AlreadyExists {
            return Err(Error::Conflict(format!(
                "{} already exists: choose another file or replace it explicitly (--force)",
                path.display()
            )));
        }
        return Err(Error::io(path, e));
    }
    Ok(())
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
        private_dir(&dir, "secret.key").expect("create");
        assert_eq!(mode(&dir), 0o700);
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        private_dir(&dir, "secret.key").expect("narrow an empty dir");
        assert_eq!(mode(&dir), 0o700);
        std::fs::write(dir.join("secret.key"), b"k").expect("write");
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        private_dir(&dir, "secret.key").expect("narrow a data dir");
        assert_eq!(mode(&dir), 0o700);
        // A shared directory named by mistake keeps its mode.
        let shared = t.path().join("shared");
        std::fs::create_dir(&shared).expect("mkdir");
        std::fs::write(shared.join("other"), b"x").expect("write");
        std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        private_dir(&shared, "secret.key").expect("left alone");
        assert_eq!(mode(&shared), 0o755);
        let f = dir.join("db");
        precreate_private(&f).expect("create");
        assert_eq!(mode(&f), 0o600);
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        precreate_private(&f).expect("narrow");
        assert_eq!(mode(&f), 0o600);
        private_if_exists(&dir.join("missing")).expect("missing is fine");
    }

    #[test]
    fn new_private_files_refuse_existing_paths_unless_replacing() {
        let t = tempfile::tempdir().expect("tmp");
        let p = t.path().join("backup.json");
        write_new_private_file(&p, b"one", false).expect("new");
        assert_eq!(mode(&p), 0o600);
        let err = write_new_private_file(&p, b"two", false).expect_err("exists");
        assert!(err.to_string().contains("already exists"), "{err}");
        assert_eq!(std::fs::read(&p).expect("read"), b"one");
        // A symlink planted at the path is not followed.
        let target = t.path().join("target");
        std::fs::write(&target, b"keep").expect("write");
        let link = t.path().join("link.json");
        std::os::unix::fs::symlink(&target, &link).expect("symlink");
        write_new_private_file(&link, b"x", false).expect_err("symlink exists");
        write_new_private_file(&link, b"x", true).expect("replace the link itself");
        assert_eq!(std::fs::read(&target).expect("read"), b"keep");
        write_new_private_file(&p, b"two", true).expect("replace");
        assert_eq!(std::fs::read(&p).expect("read"), b"two");
        let leftovers = std::fs::read_dir(t.path())
            .expect("ls")
            .filter(|e| {
                e.as_ref()
                    .is_ok_and(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
            })
            .count();
        assert_eq!(leftovers, 0);
    }
}
