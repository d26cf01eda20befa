//! Block list parsing: hosts files (`0.0.0.0 name ...`), plain domain lists (`name`) and the DNS
//! subset of adblock syntax (`||name^`, `@@||name^` exceptions), with `#` and `!` comments. The
//! format is decided per line, so mixed files work. Names are validated and hashed while parsing
//! (no string per entry), and every rejected line is counted with its number and reason.

use std::net::IpAddr;

use super::matcher::{ROOT_SEED, label_hash};

/// At most this many invalid lines are kept with their text; the rest are only counted.
const KEPT_INVALID: usize = 50;

/// Names hosts files list for the machine itself, never meant as blocks.
const HOSTS_SELF: &[&str] = &[
    "localhost",
    "localhost.localdomain",
    "local",
    "broadcasthost",
    "ip6-localhost",
    "ip6-loopback",
    "ip6-localnet",
    "ip6-mcastprefix",
    "ip6-allnodes",
    "ip6-allrouters",
    "ip6-allhosts",
    "0.0.0.0",
];

/// A line that is not a valid entry.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct InvalidLine {
    /// 1-based line number.
    pub line: usize,
    /// Why it was rejected.
    pub reason: &'static str,
    /// The line, cut to 200 characters.
    pub text: String,
}

/// A parsed list: name hashes to block and to allow, plus what was rejected.
#[derive(Debug, Clone, Default)]
pub struct ParsedList {
    /// Hashes of blocked domains (each blocks its subdomains).
    pub block: Vec<u64>,
    /// Hashes of allowed domains (`@@||name^`).
    pub allow: Vec<u64>,
    /// Number of invalid lines.
    pub invalid_count: usize,
    /// The first invalid lines, with line numbers.
    pub invalid: Vec<InvalidLine>,
    /// Number of lines, comments included.
    pub lines: usize,
}

impl ParsedList {
    /// Number of entries (block + allow).
    pub fn entries(&self) -> usize {
        self.block.len() + self.allow.len()
    }

    /// Why this does not look like a block list (an HTML error page, a login wall, binary data),
    /// or `None` when it does. Callers keep the last good copy instead of a garbage download.
    pub fn garbage_reason(&self) -> Option<String> {
        if self.entries() == 0 {
            let first = self
                .invalid
                .first()
                .map(|l| format!("; line {}: {} ('{}')", l.line, l.reason, l.text))
                .unwrap_or_default();
            return Some(format!("no valid entry in {} lines{first}", self.lines));
        }
        if self.invalid_count > self.entries() {
            let first = &self.invalid[0];
            return Some(format!(
                "{} of {} lines are invalid (first at line {}: {})",
                self.invalid_count, self.lines, first.line, first.reason
            ));
        }
        None
    }

    fn reject(&mut self, line: usize, reason: &'static str, text: &str) {
        self.invalid_count += 1;
        if self.invalid.len() < KEPT_INVALID {
            self.invalid.push(InvalidLine {
                line,
                reason,
                text: text.chars().take(200).collect(),
            });
        }
    }
}

/// Parses a list text in any of the supported formats.
pub fn parse_list(text: &str) -> ParsedList {
    let mut out = ParsedList::default();
    for (i, raw) in text.lines().enumerate() {
        out.lines += 1;
        let number = i + 1;
        let line = raw.trim();
        if line.is_empty()
            || line.starts_with('#')
            || line.starts_with('!')
            || (line.starts_with('[') && line.ends_with(']'))
        {
            continue;
        }
        if let Some(rest) = line.strip_prefix("@@||") {
            match adblock_name(rest).and_then(domain_hash) {
                Ok(h) => out.allow.push(h),
                Err(reason) => out.reject(number, reason, line),
            }
            continue;
        }
        if let Some(rest) = line.strip_prefix("||") {
            match adblock_name(rest).and_then(domain_hash) {
                Ok(h) => out.block.push(h),
                Err(reason) => out.reject(number, reason, line),
            }
            continue;
        }
        // Hosts and plain lists: drop an inline comment.
        let line = line.split('#').next().unwrap_or("").trim();
        let mut tokens = line.split_ascii_whitespace();
        let Some(first) = tokens.next() else { continue };
        if first.parse::<IpAddr>().is_ok() {
            let mut any = false;
            for name in tokens {
                any = true;
                if HOSTS_SELF.contains(&name) {
                    continue;
                }
                match domain_hash(name) {
                    Ok(h) => out.block.push(h),
                    Err(reason) => out.reject(number, reason, line),
                }
            }
            if !any {
                out.reject(number, "an address without a name", line);
            }
            continue;
        }
        if tokens.next().is_some() {
            out.reject(
                number,
                "more than one word and not a hosts line (address first)",
                line,
            );
            continue;
        }
        if HOSTS_SELF.contains(&first) {
            continue;
        }
        match domain_hash(first) {
            Ok(h) => out.block.push(h),
            Err(reason) => out.reject(number, reason, line),
        }
    }
    out
}

/// The name inside `name^` or `name^$important`; other options and paths are not DNS rules.
fn adblock_name(rest: &str) -> Result<&str, &'static str> {
    let (body, options) = match rest.split_once('$') {
        Some((b, o)) => (b, Some(o)),
        None => (rest, None),
    };
    if let Some(options) = options
        && !options.split(',').all(|o| o == "important")
    {
        return Err("adblock rule with options other than $important");
    }
    let name = body
        .strip_suffix("^|")
        .or_else(|| body.strip_suffix('^'))
        .unwrap_or(body);
    if name.contains('/') || name.contains('^') {
        return Err("adblock rule with a path is not a DNS rule");
    }
    if name.contains('*') && !name.starts_with("*.") {
        return Err("adblock wildcard inside a name is not supported");
    }
    Ok(name.trim_start_matches("*."))
}

/// Validates a domain name and hashes it (case-insensitively), without allocating.
pub fn domain_hash(name: &str) -> Result<u64, &'static str> {
    let name = name.strip_suffix('.').unwrap_or(name);
    if name.is_empty() {
        return Err("empty name");
    }
    if name.len() > 253 {
        return Err("name longer than 253 characters");
    }
    if name.parse::<IpAddr>().is_ok() {
        return Err("an address, not a name");
    }
    let bytes = name.as_bytes();
    let mut buf = [0u8; 253];
    let mut h = ROOT_SEED;
    let mut end = bytes.len();
    loop {
        let start = bytes[..end]
            .iter()
            .rposition(|&b| b == b'.')
            .map_or(0, |d| d + 1);
        let label = &bytes[start..end];
        if label.is_empty() {
            return Err("empty label (two dots in a row)");
        }
        if label.len() > 63 {
            return Err("label longer than 63 characters");
        }
        let lower = &mut buf[..label.len()];
        for (o, &b) in lower.iter_mut().zip(label) {
            if !(b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
                return Err("character not allowed in a domain name");
            }
            *o = b.to_ascii_lowercase();
        }
        h = label_hash(h, lower);
        if start == 0 {
            return Ok(h);
        }
        end = start - 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dns::matcher::name_hash;

    #[test]
    fn all_three_formats_and_comments() {
        let text = "# hosts\n0.0.0.0 a.test b.test # two names\n127.0.0.1 localhost\n:: v6.test\n\
                    ! adblock\n[Adblock Plus 2.0]\n||c.test^\n||d.test^$important\n@@||ok.c.test^\n\
                    plain.test\nUPPER.Test.\n\n";
        let p = parse_list(text);
        assert_eq!(p.invalid_count, 0, "{:?}", p.invalid);
        let want: Vec<u64> = [
            "a.test",
            "b.test",
            "v6.test",
            "c.test",
            "d.test",
            "plain.test",
            "upper.test",
        ]
        .iter()
        .map(|n| name_hash(n))
        .collect();
        assert_eq!(p.block, want);
        assert_eq!(p.allow, vec![name_hash("ok.c.test")]);
        assert_eq!(p.entries(), 8);
        assert_eq!(p.lines, 12);
        assert!(p.garbage_reason().is_none());
    }

    #[test]
    fn invalid_lines_are_counted_with_numbers() {
        let text = "good.test\nbad name here\n||x.test^$third-party\n||x.test/path^\n0.0.0.0\nfoo..bar\nwe!rd.test\n1.2.3.4\n";
        let p = parse_list(text);
        assert_eq!(p.block, vec![name_hash("good.test")]);
        assert_eq!(p.invalid_count, 7);
        let lines: Vec<usize> = p.invalid.iter().map(|l| l.line).collect();
        assert_eq!(lines, vec![2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(p.invalid[4].reason, "empty label (two dots in a row)");
        let reason = p.garbage_reason().expect("mostly invalid");
        assert!(reason.contains("7 of 8 lines"), "{reason}");
    }

    #[test]
    fn html_is_garbage() {
        let p = parse_list("<!DOCTYPE html>\n<html><body>Not found</body></html>\n");
        let reason = p.garbage_reason().expect("garbage");
        assert!(reason.starts_with("no valid entry in 2 lines"), "{reason}");
        assert!(parse_list("").garbage_reason().is_some());
    }
}
