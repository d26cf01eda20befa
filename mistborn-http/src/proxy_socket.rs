//! The reverse proxy's own way in: a unix socket only the proxy may open, serving the same router
//! as the TCP listener. Every request over it carries [`ProxyHop`], which is what lets
//! `X-Forwarded-For` name the client; over TCP the header means nothing.

use std::future::Future;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};

use axum::Extension;
use tokio::net::UnixListener;

use crate::extract::ProxyHop;
use crate::state::AppState;

/// Binds the proxy's socket at `path`: mode 0600, or 0660 owned by `group` when given. The socket is
/// bound under a temporary name, restricted, then renamed into place, so there is no moment when
/// another user could connect. A stale socket from an earlier run is replaced; any other file at
/// `path` is an error (it is not ours to delete).
pub fn bind_proxy_socket(path: &Path, group: Option<&str>) -> std::io::Result<ProxySocket> {
    let gid = group.map(group_id).transpose()?;
    match std::fs::symlink_metadata(path) {
        Ok(meta) if !meta.file_type().is_socket() => {
            return Err(std::io::Error::other(format!(
                "{} exists and is not a socket",
                path.display()
            )));
        }
        _ => {}
    }
    let name = path
        .file_name()
        .ok_or_else(|| std::io::Error::other(format!("{} names no file", path.display())))?;
    let mut temp_name = std::ffi::OsString::from(".");
    temp_name.push(name);
    temp_name.push(format!(".{}.tmp", std::process::id()));
    let temp = path.with_file_name(temp_name);
    let _ = std::fs::remove_file(&temp);
    let listener = UnixListener::bind(&temp)?;
    let restrict = || -> std::io::Result<()> {
        let mode = if let Some(gid) = gid {
            std::os::unix::fs::chown(&temp, None, Some(gid))?;
            0o660
        } else {
            0o600
        };
        std::fs::set_permissions(&temp, std::fs::Permissions::from_mode(mode))?;
        std::fs::rename(&temp, path)
    };
    if let Err(e) = restrict() {
        let _ = std::fs::remove_file(&temp);
        return Err(e);
    }
    Ok(ProxySocket {
        listener,
        path: path.to_path_buf(),
    })
}

/// The bound proxy socket and where it lives.
#[derive(Debug)]
pub struct ProxySocket {
    listener: UnixListener,
    path: PathBuf,
}

impl ProxySocket {
    /// The socket's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// The id of a group by name.
fn group_id(name: &str) -> std::io::Result<u32> {
    let c_name = std::ffi::CString::new(name)
        .map_err(|_| std::io::Error::other(format!("bad group name '{name}'")))?;
    let mut group = std::mem::MaybeUninit::<libc::group>::uninit();
    let mut buf = vec![0 as libc::c_char; 16 * 1024];
    let mut found: *mut libc::group = std::ptr::null_mut();
    // SAFETY: every pointer is valid for the call; `buf` outlives the use of `group`, and only
    // `gr_gid` (no pointer into `buf`) is read, after getgrnam_r reported a match.
    let rc = unsafe {
        libc::getgrnam_r(
            c_name.as_ptr(),
            group.as_mut_ptr(),
            buf.as_mut_ptr(),
            buf.len(),
            &mut found,
        )
    };
    if rc != 0 || found.is_null() {
        return Err(std::io::Error::other(format!(
            "http_socket_group: no group named '{name}'"
        )));
    }
    // SAFETY: getgrnam_r filled `group` (found points to it).
    Ok(unsafe { group.assume_init() }.gr_gid)
}

/// Serves the router on the proxy's socket until `shutdown` completes, marking every request with
/// [`ProxyHop`]; removes the socket file when done.
pub async fn serve_proxy_socket(
    socket: ProxySocket,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let ProxySocket { listener, path } = socket;
    let app = crate::router(state).layer(Extension(ProxyHop));
    let served = axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await;
    let _ = std::fs::remove_file(path);
    served
}
