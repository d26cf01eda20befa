//! Coppercloud IP lists: one entry a line (address, CIDR or `first-last` range, IPv4 or IPv6),
//! comments after `#` or `;`. Parsing is strict: a list with one malformed line is refused as a
//! whole, with the line numbers, so a download that turned into an HTML error page never
//! replaces the last good copy.

use std::net::IpAddr;
use std::str::FromStr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use super::intervals::Intervals;
use crate::error::{Error, Result};

/// Largest list accepted (bytes).
pub const MAX_LIST_BYTES: usize = 64 * 1024 * 1024;

/// What a list does with its addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum ListMode {
    /// Traffic to and from these addresses is dropped.
    #[default]
    Block,
    /// These addresses are exempt from every block list.
    Allow,
}

impl ListMode {
    /// Stored and printed name.
    pub fn as_str(self) -> &'static str {
        match self {
            ListMode::Block => "block",
            ListMode::Allow => "allow",
        }
    }
}

impl FromStr for ListMode {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "block" => Ok(Self::Block),
            "allow" => Ok(Self::Allow),
            _ => Err(Error::invalid(
                "mode",
                format!("'{s}' is not 'block' or 'allow'"),
            )),
        }
    }
}

/// One line that is not an entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BadLine {
    /// 1-based line number.
    pub line: usize,
    /// The line as found (cut to 80 characters).
    pub text: String,
}

/// A parsed list: merged intervals per family.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ParsedList {
    /// Entries (lines holding an address, CIDR or range).
    pub entries: usize,
    /// IPv4 intervals.
    pub v4: Intervals,
    /// IPv6 intervals.
    pub v6: Intervals,
}

fn v4_bits(a: std::net::Ipv4Addr) -> u128 {
    u128::from(u32::from(a))
}

/// One entry as an inclusive interval, with its family (`true` = IPv6).
fn parse_entry(s: &str) -> Option<(bool, u128, u128)> {
    if let Some((a, b)) = s.split_once('-') {
        return match (
            IpAddr::from_str(a.trim()).ok()?,
            IpAddr::from_str(b.trim()).ok()?,
        ) {
            (IpAddr::V4(a), IpAddr::V4(b)) if a <= b => Some((false, v4_bits(a), v4_bits(b))),
            (IpAddr::V6(a), IpAddr::V6(b)) if a <= b => Some((true, u128::from(a), u128::from(b))),
            _ => None,
        };
    }
    if s.contains('/') {
        return match IpNet::from_str(s).ok()?.trunc() {
            IpNet::V4(n) => Some((false, v4_bits(n.network()), v4_bits(n.broadcast()))),
            IpNet::V6(n) => Some((true, u128::from(n.network()), u128::from(n.broadcast()))),
        };
    }
    match IpAddr::from_str(s).ok()? {
        IpAddr::V4(a) => Some((false, v4_bits(a), v4_bits(a))),
        IpAddr::V6(a) => Some((true, u128::from(a), u128::from(a))),
    }
}

/// Parses a list; every malformed line is reported with its number.
pub fn parse_list(text: &str) -> std::result::Result<ParsedList, Vec<BadLine>> {
    let mut v4 = Vec::new();
    let mut v6 = Vec::new();
    let mut bad = Vec::new();
    let mut entries = 0;
    for (i, raw) in text.lines().enumerate() {
        let line = raw.split(['#', ';']).next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        match parse_entry(line) {
            Some((true, s, e)) => v6.push((s, e)),
            Some((false, s, e)) => v4.push((s, e)),
            None => {
                bad.push(BadLine {
                    line: i + 1,
                    text: raw.chars().take(80).collect(),
                });
                continue;
            }
        }
        entries += 1;
    }
    if !bad.is_empty() {
        return Err(bad);
    }
    Ok(ParsedList {
        entries,
        v4: Intervals::merge(v4),
        v6: Intervals::merge(v6),
    })
}

/// Parses a list for storing: refuses malformed lines and empty lists with a clear error.
pub fn check_list(text: &str) -> Result<ParsedList> {
    if text.len() > MAX_LIST_BYTES {
        return Err(Error::invalid(
            "content",
            format!("the list is larger than {MAX_LIST_BYTES} bytes"),
        ));
    }
    match parse_list(text) {
        Ok(p) if p.entries == 0 => Err(Error::invalid(
            "content",
            "the list holds no address, CIDR or range",
        )),
        Ok(p) => Ok(p),
        Err(bad) => {
            let shown: Vec<String> = bad
                .iter()
                .take(5)
                .map(|b| format!("line {}: '{}'", b.line, b.text))
                .collect();
            let more = if bad.len() > 5 {
                format!(" (and {} more)", bad.len() - 5)
            } else {
                String::new()
            };
            Err(Error::invalid(
                "content",
                format!(
                    "not an IP address, CIDR or range: {}{more}",
                    shown.join(", ")
                ),
            ))
        }
    }
}
