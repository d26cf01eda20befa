//! Running Caddy: start it on a generated Caddyfile, reload it through its admin API, restart it if it
//! dies. Caddy's own state (XDG dirs, storage) stays under Mistborn's data dir.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use tokio::process::{Child, Command};

use crate::error::{Error, Result};

/// The only search path Caddy gets (it runs no helpers; the binary itself is found by the daemon).
const CADDY_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The environment variables a Caddy started by Mistborn has, and nothing else.
pub const CADDY_ENV: &[&str] = &[
    "PATH",
    "HOME",
    "XDG_DATA_HOME",
    "XDG_CONFIG_HOME",
    "XDG_CACHE_HOME",
];

/// A Caddy process (managed) or an existing Caddy's admin endpoint (external).
#[derive(Debug)]
pub struct Caddy {
    bin: PathBuf,
    work_dir: PathBuf,
    admin: String,
    child: Option<Child>,
}

fn tool_error(what: &str, out: &std::process::Output) -> Error {
    Error::Config(format!(
        "caddy {what} failed: {}",
        String::from_utf8_lossy(&out.stderr)
            .lines()
            .last()
            .unwrap_or("no output")
    ))
}

impl Caddy {
    /// A handle for `bin`, keeping its files in `work_dir`, reached at `admin` (Caddy syntax).
    pub fn new(
        bin: impl Into<PathBuf>,
        work_dir: impl Into<PathBuf>,
        admin: impl Into<String>,
    ) -> Self {
        Self {
            bin: bin.into(),
            work_dir: work_dir.into(),
            admin: admin.into(),
            child: None,
        }
    }

    /// The Caddyfile path.
    pub fn config_path(&self) -> PathBuf {
        self.work_dir.join("Caddyfile")
    }

    /// A Caddy command with a cleared environment: the daemon's may hold secrets (a database URL
    /// with its password, tokens) that Caddy has no business seeing, and `{env.*}` placeholders
    /// would make them reachable from a config. Caddy gets a plain PATH and its home and XDG dirs
    /// inside its work dir.
    fn command(&self) -> Command {
        let mut c = Command::new(&self.bin);
        c.env_clear()
            .env("PATH", CADDY_PATH)
            .env("HOME", &self.work_dir)
            .env("XDG_DATA_HOME", self.work_dir.join("xdg-data"))
            .env("XDG_CONFIG_HOME", self.work_dir.join("xdg-config"))
            .env("XDG_CACHE_HOME", self.work_dir.join("xdg-cache"))
            .stdin(Stdio::null());
        c
    }

    fn write(&self, caddyfile: &str) -> Result<PathBuf> {
        std::fs::create_dir_all(&self.work_dir).map_err(|e| Error::io(&self.work_dir, e))?;
        let path = self.config_path();
        std::fs::write(&path, caddyfile).map_err(|e| Error::io(&path, e))?;
        Ok(path)
    }

    /// Checks a Caddyfile without applying it.
    pub async fn validate(&self, caddyfile: &str) -> Result<()> {
        let path = self.write_candidate(caddyfile)?;
        let out = self
            .command()
            .args(["validate", "--adapter", "caddyfile", "--config"])
            .arg(&path)
            .output()
            .await
            .map_err(|e| Error::io(&self.bin, e))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(tool_error("validate", &out))
        }
    }

    fn write_candidate(&self, caddyfile: &str) -> Result<PathBuf> {
        std::fs::create_dir_all(&self.work_dir).map_err(|e| Error::io(&self.work_dir, e))?;
        let path = self.work_dir.join("Caddyfile.candidate");
        std::fs::write(&path, caddyfile).map_err(|e| Error::io(&path, e))?;
        Ok(path)
    }

    /// Starts Caddy on `caddyfile` and waits until its admin API answers.
    pub async fn start(&mut self, caddyfile: &str) -> Result<()> {
        self.stop().await;
        if let Some(socket) = self.admin.strip_prefix("unix/") {
            // A killed Caddy leaves its socket file behind; a fresh one cannot bind over it.
            let _ = std::fs::remove_file(socket);
        }
        let path = self.write(caddyfile)?;
        let log = std::fs::File::create(self.work_dir.join("caddy.log"))
            .map_err(|e| Error::io(self.work_dir.join("caddy.log"), e))?;
        let child = self
            .command()
            .args(["run", "--adapter", "caddyfile", "--config"])
            .arg(&path)
            .stdout(Stdio::null())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| Error::Config(format!("cannot start {}: {e}", self.bin.display())))?;
        self.child = Some(child);
        self.wait_ready().await
    }

    async fn wait_ready(&mut self) -> Result<()> {
        for _ in 0..100 {
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    self.child = None;
                    let log = std::fs::read_to_string(self.work_dir.join("caddy.log"))
                        .unwrap_or_default();
                    return Err(Error::Config(format!(
                        "caddy exited at start ({status}): {}",
                        log.lines()
                            .rev()
                            .find(|l| l.contains("error"))
                            .unwrap_or("see caddy.log")
                    )));
                }
            }
            if self.admin_ready() {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Err(Error::Config(
            "caddy did not open its admin API within 5 s".into(),
        ))
    }

    fn admin_ready(&self) -> bool {
        match self.admin.strip_prefix("unix/") {
            Some(path) => std::os::unix::net::UnixStream::connect(path).is_ok(),
            None => std::net::TcpStream::connect(self.admin.as_str()).is_ok(),
        }
    }

    /// Loads a new Caddyfile into the running Caddy; on failure the old config keeps serving.
    pub async fn reload(&self, caddyfile: &str) -> Result<()> {
        self.validate(caddyfile).await?;
        let path = self.write(caddyfile)?;
        let out = self
            .command()
            .args([
                "reload",
                "--adapter",
                "caddyfile",
                "--address",
                &self.admin,
                "--config",
            ])
            .arg(&path)
            .output()
            .await
            .map_err(|e| Error::io(&self.bin, e))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(tool_error("reload", &out))
        }
    }

    /// The managed Caddy's process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().and_then(Child::id)
    }

    /// Restarts a managed Caddy that exited; returns whether it had to.
    pub async fn ensure_running(&mut self) -> Result<bool> {
        let exited = match self.child.as_mut() {
            Some(c) => matches!(c.try_wait(), Ok(Some(_))),
            None => true,
        };
        if !exited {
            return Ok(false);
        }
        let text = std::fs::read_to_string(self.config_path())
            .map_err(|e| Error::io(self.config_path(), e))?;
        tracing::warn!("caddy is not running: restarting it");
        self.start(&text).await?;
        Ok(true)
    }

    /// Stops a managed Caddy and reaps it.
    pub async fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.start_kill();
            let _ = child.wait().await;
        }
    }
}
