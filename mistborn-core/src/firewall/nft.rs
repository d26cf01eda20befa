//! The `nft` program: the atomic full replace (`nft -f -`) and JSON reads (`nft -j list ...`).
//! Only ever names the `inet mistborn` table.

use std::io::Write as _;
use std::process::{Command, Stdio};

use super::policy::TABLE;
use crate::error::{Error, Result};

fn nft_error(what: &str, e: std::io::Error) -> Error {
    Error::Firewall(format!(
        "{what}: cannot run nft ({e}); install the nftables package"
    ))
}

/// Runs `script` as one transaction. On failure the previous table stays in force and the
/// error carries nft's own message.
pub(crate) fn apply_script(script: &str) -> Result<()> {
    let mut child = Command::new("nft")
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| nft_error("applying the ruleset", e))?;
    let written = child
        .stdin
        .take()
        .map(|mut stdin| stdin.write_all(script.as_bytes()));
    let out = child
        .wait_with_output()
        .map_err(|e| nft_error("applying the ruleset", e))?;
    if out.status.success() {
        if let Some(Err(e)) = written {
            return Err(Error::Firewall(format!("writing the ruleset to nft: {e}")));
        }
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    // nft echoes the offending line; keep the message short (a 100k-element line is huge).
    let msg: Vec<String> = stderr
        .lines()
        .filter(|l| l.contains("Error"))
        .take(3)
        .map(|l| l.chars().take(300).collect())
        .collect();
    Err(Error::Firewall(format!(
        "nft refused the ruleset, the previous table stays in force: {}",
        if msg.is_empty() {
            stderr.chars().take(300).collect::<String>()
        } else {
            msg.join("; ")
        }
    )))
}

/// `nft -j list <what...>` parsed; `Ok(None)` when the table does not exist.
pub(crate) fn list_json(what: &[&str]) -> Result<Option<serde_json::Value>> {
    let out = Command::new("nft")
        .arg("-j")
        .arg("list")
        .args(what)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| nft_error("reading the ruleset", e))?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        if stderr.contains("No such file or directory") {
            return Ok(None);
        }
        return Err(Error::Firewall(format!(
            "nft list {}: {}",
            what.join(" "),
            stderr.trim()
        )));
    }
    serde_json::from_slice(&out.stdout)
        .map(Some)
        .map_err(|e| Error::Firewall(format!("nft printed JSON that does not parse: {e}")))
}

/// `nft list table inet mistborn` as text (`None` when absent); `stateless` hides counters.
pub(crate) fn list_table_text(stateless: bool) -> Result<Option<String>> {
    let mut cmd = Command::new("nft");
    if stateless {
        cmd.arg("-s");
    }
    let out = cmd
        .args(["list", "table", "inet", TABLE])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| nft_error("reading the ruleset", e))?;
    if out.status.success() {
        return Ok(Some(String::from_utf8_lossy(&out.stdout).into_owned()));
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    if stderr.contains("No such file or directory") {
        return Ok(None);
    }
    Err(Error::Firewall(format!(
        "nft list table: {}",
        stderr.trim()
    )))
}

/// Deletes the table (used when the firewall is switched off); absent is fine.
pub(crate) fn delete_table() -> Result<()> {
    apply_script(&format!("table inet {TABLE}\ndelete table inet {TABLE}\n"))
}
