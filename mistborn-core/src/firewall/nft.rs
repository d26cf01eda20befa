//! The `nft` program: the atomic full replace (`nft -f -`, carrying the counters' values read
//! over netlink) and the table as text. Only ever names the `inet mistborn` table.

use std::io::Write as _;
use std::process::{Command, Stdio};

use super::policy::{Policy, TABLE};
use super::ruleset::{Carry, render_carrying};
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
    Err(Error::Firewall(format!(
        "nft refused the ruleset, the previous table stays in force: {}",
        explain(&stderr)
    )))
}

/// nft's complaint, short: each `Error:` with its line in the script and the part it points
/// at (nft echoes the whole offending line, which for a 100k-element set is huge).
pub(crate) fn explain(stderr: &str) -> String {
    let lines: Vec<&str> = stderr.lines().collect();
    let mut out = Vec::new();
    for (i, l) in lines.iter().enumerate() {
        let Some(at) = l.find("Error: ") else {
            continue;
        };
        let what = l[at + "Error: ".len()..].trim();
        // "/dev/stdin:2:81-87: Error: ..." -> line 2
        let line = l[..at]
            .split(':')
            .nth(1)
            .and_then(|n| n.parse::<u32>().ok());
        let span = match (lines.get(i + 1), lines.get(i + 2)) {
            (Some(src), Some(marks)) if marks.trim_start().starts_with('^') => {
                let start = marks.find('^').unwrap_or(0);
                let end = marks.rfind('^').map_or(start, |e| e + 1);
                let s: String = src.chars().skip(start).take(end - start).collect();
                let s: String = s.chars().take(80).collect();
                (!s.trim().is_empty()).then(|| s.trim().to_string())
            }
            _ => None,
        };
        let mut m: String = what.chars().take(200).collect();
        if let Some(span) = span {
            m.push_str(&format!(" (at `{span}`)"));
        }
        if let Some(n) = line {
            m = format!("line {n}: {m}");
        }
        out.push(m);
        if out.len() == 3 {
            break;
        }
    }
    if out.is_empty() {
        stderr.trim().chars().take(300).collect()
    } else {
        out.join("; ")
    }
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

/// The live table's counter values (empty when there is no table), over netlink: the nft CLI
/// would first load every set element of the table (seconds with a 100k-CIDR list).
pub(crate) fn read_carry() -> Result<Carry> {
    let mut carry = Carry::default();
    for c in super::netlink::read_counters()? {
        carry.counters.insert(c.name, (c.packets, c.bytes));
    }
    for (set, v6) in [("probes4", false), ("probes6", true)] {
        carry.probes.extend(super::netlink::read_probes(set, v6)?);
    }
    let sets = super::metrics::read_aggregates()?;
    carry.ports = sets.ports;
    carry.sources = sets.sources;
    carry.networks = sets.networks;
    Ok(carry)
}

/// Replaces the table with `policy` in one transaction, keeping the counters' values. When they
/// cannot be read the replace goes ahead and they restart from zero.
pub(crate) fn replace_table(policy: &Policy) -> Result<()> {
    let carry = read_carry().unwrap_or_else(|e| {
        tracing::warn!(error = %e, "firewall counters restart from zero");
        Carry::default()
    });
    apply_script(&render_carrying(policy, &carry))
}
