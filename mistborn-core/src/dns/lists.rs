//! Block list parsing, the way Pi-hole and AdGuard Home read real lists: hosts files
//! (`0.0.0.0 name ...`, hosts(5)), plain domain lists (`name`, `*.name`) and the DNS part of
//! adblock syntax as AdGuard documents it (`||name^`, `||*.name^`, `@@||name^`, `$important`,
//! `$badfilter`), with `#` and `!` comments. The format is decided per line, so mixed files work.
//!
//! What is not a DNS rule is skipped and counted as "not for DNS" (cosmetic and scriptlet rules
//! such as `example.com##.banner`, rules with a path or a browser-only modifier); DNS modifiers this
//! resolver does not implement (`$client`, `$denyallow`, `$dnstype`, `$dnsrewrite`, `$ctag`) are
//! line errors, never read as a plain block. `localhost` and the special-use names are never
//! blocked; the usual header lines of hosts files pass silently. A public suffix (`com`, `co.uk`)
//! is refused with a line error: it would block every name under it. Unicode names are converted
//! to punycode (IDNA). Names are validated and hashed while parsing (no string per entry), and
//! every rejected line is counted with its number and reason.

use std::borrow::Cow;
use std::net::IpAddr;

use super::matcher::{ROOT_SEED, label_hash};

/// At most this many line errors are kept with their text; the rest are only counted.
pub const KEPT_LINE_ERRORS: usize = 50;

/// Names hosts files list for the machine itself (the header of nearly every hosts file), never
/// meant as blocks. Compared case-insensitively, without a trailing dot.
const HOSTS_SELF: &[&str] = &[
    "localhost",
    "localhost.localdomain",
    "local",
    "localdomain",
    "broadcasthost",
    "ip6-localhost",
    "ip6-loopback",
    "ip6-localnet",
    "ip6-mcastprefix",
    "ip6-allnodes",
    "ip6-allrouters",
    "ip6-allhosts",
];

/// Top-level names that are never blocked and never forwarded: `localhost` (RFC 6761 6.3),
/// `invalid` (RFC 6761 6.4), `onion` (RFC 7686) and `local` (multicast DNS, RFC 6762).
pub const SPECIAL_TLDS: &[&str] = &["localhost", "invalid", "onion", "local"];

/// DNS modifiers AdGuard Home documents that this resolver does not implement: a rule using one
/// is reported, never read as a plain block (it would block more than its author meant).
const UNSUPPORTED_DNS_MODIFIERS: &[(&str, &str)] = &[
    (
        "client",
        "the $client modifier is not supported (rule ignored)",
    ),
    ("ctag", "the $ctag modifier is not supported (rule ignored)"),
    (
        "denyallow",
        "the $denyallow modifier is not supported (rule ignored)",
    ),
    (
        "dnstype",
        "the $dnstype modifier is not supported (rule ignored)",
    ),
    (
        "dnsrewrite",
        "the $dnsrewrite modifier is not supported (rule ignored)",
    ),
];

/// Modifiers that restrict a rule to browsers (request types, pages, headers): such a rule is
/// not a DNS rule, and reading it as one would block a whole site.
const BROWSER_MODIFIERS: &[&str] = &[
    "1p",
    "3p",
    "all",
    "app",
    "badfilter-browser",
    "content",
    "cookie",
    "csp",
    "css",
    "doc",
    "document",
    "domain",
    "ehide",
    "elemhide",
    "empty",
    "extension",
    "first-party",
    "font",
    "frame",
    "from",
    "generichide",
    "genericblock",
    "ghide",
    "header",
    "hls",
    "image",
    "inline-font",
    "inline-script",
    "jsinject",
    "jsonprune",
    "match-case",
    "media",
    "method",
    "mp4",
    "network",
    "object",
    "object-subrequest",
    "other",
    "permissions",
    "ping",
    "popunder",
    "popup",
    "redirect",
    "redirect-rule",
    "referrerpolicy",
    "removeheader",
    "removeparam",
    "replace",
    "rewrite",
    "script",
    "shide",
    "specifichide",
    "stealth",
    "strict1p",
    "strict3p",
    "stylesheet",
    "subdocument",
    "third-party",
    "to",
    "urlblock",
    "webrtc",
    "websocket",
    "xhr",
    "xmlhttprequest",
];

/// What a rule does. Precedence, highest first: the user's allow rules and `@@..$important`,
/// then `$important` blocks, then `@@` exceptions, then plain blocks (AdGuard Home's order).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EntryKind {
    /// The name and its subdomains (`||name^`, hosts and plain lines).
    Block,
    /// Only the subdomains (`||*.name^`, `*.name`).
    BlockSubdomains,
    /// An exception for the name and its subdomains (`@@||name^`).
    Allow,
    /// A block that beats exceptions (`||name^$important`).
    ImportantBlock,
    /// An exception that beats important blocks (`@@||name^$important`).
    ImportantAllow,
}

/// A line that is not an entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidLine {
    /// 1-based line number.
    pub line: usize,
    /// Why it was rejected.
    pub reason: &'static str,
    /// The line, cut to 200 characters.
    pub text: String,
}

/// A parsed list: name hashes per kind of rule, plus what was rejected or skipped.
#[derive(Debug, Clone, Default)]
pub struct ParsedList {
    /// Hashes of blocked domains (each blocks its subdomains).
    pub block: Vec<u64>,
    /// Hashes of domains whose subdomains (only) are blocked.
    pub block_subdomains: Vec<u64>,
    /// Hashes of allowed domains (`@@||name^`).
    pub allow: Vec<u64>,
    /// Hashes of `$important` blocks.
    pub important_block: Vec<u64>,
    /// Hashes of `$important` exceptions.
    pub important_allow: Vec<u64>,
    /// Rules switched off by `$badfilter` (in every list of the filter).
    pub badfilter: Vec<(EntryKind, u64)>,
    /// Number of line errors (invalid lines and unsupported rules).
    pub invalid_count: usize,
    /// The first line errors, with line numbers.
    pub invalid: Vec<InvalidLine>,
    /// Lines that are rules, but not DNS rules (cosmetic, scriptlet, path or browser-only rules).
    pub not_for_dns: usize,
    /// Number of lines, comments included.
    pub lines: usize,
}

impl ParsedList {
    /// Number of entries (every kind, `$badfilter` rules included).
    pub fn entries(&self) -> usize {
        self.block.len()
            + self.block_subdomains.len()
            + self.allow.len()
            + self.important_block.len()
            + self.important_allow.len()
            + self.badfilter.len()
    }

    /// The hashes of one kind.
    pub fn of_kind(&self, kind: EntryKind) -> &[u64] {
        match kind {
            EntryKind::Block => &self.block,
            EntryKind::BlockSubdomains => &self.block_subdomains,
            EntryKind::Allow => &self.allow,
            EntryKind::ImportantBlock => &self.important_block,
            EntryKind::ImportantAllow => &self.important_allow,
        }
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

    fn push(&mut self, kind: EntryKind, h: u64) {
        match kind {
            EntryKind::Block => self.block.push(h),
            EntryKind::BlockSubdomains => self.block_subdomains.push(h),
            EntryKind::Allow => self.allow.push(h),
            EntryKind::ImportantBlock => self.important_block.push(h),
            EntryKind::ImportantAllow => self.important_allow.push(h),
        }
    }

    fn reject(&mut self, line: usize, reason: &'static str, text: &str) {
        self.invalid_count += 1;
        if self.invalid.len() < KEPT_LINE_ERRORS {
            self.invalid.push(InvalidLine {
                line,
                reason,
                text: text.chars().take(200).collect(),
            });
        }
    }
}

/// What one line holds.
enum Line {
    /// A comment, a blank line, a header, or a name that is never blocked.
    Nothing,
    /// A rule that is not a DNS rule.
    NotForDns,
    /// A rule (or, with `$badfilter`, a rule switched off).
    Entry {
        kind: EntryKind,
        hash: u64,
        badfilter: bool,
    },
    /// A hosts line: every name is a block.
    Hosts,
    /// A line error.
    Error(&'static str),
}

/// Parses a list text in any of the supported formats.
pub fn parse_list(text: &str) -> ParsedList {
    let mut out = ParsedList::default();
    for (i, raw) in text.lines().enumerate() {
        out.lines += 1;
        let number = i + 1;
        // A byte-order mark starts many files saved on Windows (and concatenated lists).
        let line = raw.trim_start_matches('\u{feff}').trim();
        match classify(line, &mut out, number) {
            Line::Nothing | Line::Hosts => {}
            Line::NotForDns => out.not_for_dns += 1,
            Line::Entry {
                kind,
                hash,
                badfilter: false,
            } => out.push(kind, hash),
            Line::Entry {
                kind,
                hash,
                badfilter: true,
            } => out.badfilter.push((kind, hash)),
            Line::Error(reason) => out.reject(number, reason, line),
        }
    }
    out
}

fn classify(line: &str, out: &mut ParsedList, number: usize) -> Line {
    if line.is_empty()
        || line.starts_with('#')
        || line.starts_with('!')
        || (line.starts_with('[') && line.ends_with(']'))
    {
        return Line::Nothing;
    }
    if is_cosmetic(line) {
        return Line::NotForDns;
    }
    if line.starts_with("||")
        || line.starts_with("@@")
        || line.starts_with('|')
        || (line.starts_with('/') && line.len() > 1)
        || line.contains(['^', '$'])
    {
        return adblock(line);
    }
    if line.starts_with("http://") || line.starts_with("https://") {
        return Line::NotForDns;
    }
    // Hosts and plain lists: drop an inline comment.
    let line = line.split('#').next().unwrap_or("").trim();
    let mut tokens = line.split_ascii_whitespace();
    let Some(first) = tokens.next() else {
        return Line::Nothing;
    };
    if let Some(addr) = host_address(first) {
        return hosts(addr, tokens, line, out, number);
    }
    if tokens.next().is_some() {
        return Line::Error("more than one word and not a hosts line (address first)");
    }
    if is_self_name(first) {
        return Line::Nothing;
    }
    let (kind, name) = match first.strip_prefix("*.") {
        Some(base) => (EntryKind::BlockSubdomains, base),
        None => (EntryKind::Block, first),
    };
    entry(kind, name, false)
}

/// `example.com##.banner`, `#@#`, `#?#`, `#$#`, `#%#` (and their `#@` exceptions), `##+js(..)`
/// scriptlets, and HTML filters `$$` / `$@$`: page rules for a browser, not for DNS. The marker
/// follows the (possibly empty) list of domains, which has no white space.
fn is_cosmetic(line: &str) -> bool {
    let head = line.split_ascii_whitespace().next().unwrap_or("");
    if head.contains("$$") || head.contains("$@$") {
        return true;
    }
    let Some(at) = head.find('#') else {
        return false;
    };
    let rest = &head[at + 1..];
    [
        "#", "@#", "?#", "$#", "%#", "@?#", "@$#", "@%#", "$?#", "@$?#",
    ]
    .iter()
    .any(|m| rest.starts_with(m))
}

/// The address of a hosts line; a link-local address may carry a zone (`fe80::1%lo0`).
fn host_address(token: &str) -> Option<IpAddr> {
    let addr = token.split_once('%').map_or(token, |(a, _)| a);
    addr.parse().ok()
}

fn is_self_name(name: &str) -> bool {
    let name = name.strip_suffix('.').unwrap_or(name);
    HOSTS_SELF.iter().any(|s| s.eq_ignore_ascii_case(name))
}

fn hosts<'a>(
    addr: IpAddr,
    names: impl Iterator<Item = &'a str>,
    line: &str,
    out: &mut ParsedList,
    number: usize,
) -> Line {
    // 0.0.0.0, ::, 127.0.0.1 and ::1 are the sinkholes of block lists; any other address maps a
    // name to a host (a local hosts file), which is not a block.
    let sinkhole = addr.is_unspecified() || addr.is_loopback();
    let mut any = false;
    let mut mapped = false;
    for name in names {
        any = true;
        if is_self_name(name) || host_address(name).is_some() {
            continue;
        }
        if !sinkhole {
            mapped = true;
            continue;
        }
        match entry(EntryKind::Block, name, false) {
            Line::Entry { kind, hash, .. } => out.push(kind, hash),
            Line::Error(reason) => out.reject(number, reason, line),
            _ => {}
        }
    }
    if !any {
        return Line::Error("an address without a name");
    }
    if mapped {
        return Line::Error(
            "a hosts line mapping names to a real address (not 0.0.0.0 or 127.0.0.1) is not a block",
        );
    }
    Line::Hosts
}

/// One adblock-syntax rule.
fn adblock(line: &str) -> Line {
    let (exception, rest) = match line.strip_prefix("@@") {
        Some(r) => (true, r),
        None => (false, line),
    };
    if rest.starts_with('/') {
        // `/regex/` (AdGuard Home supports them; this resolver matches names by hash only), or an
        // Adblock Plus path rule such as `/ads/banner.js`, which is for browsers.
        let inner = rest.split('$').next().unwrap_or(rest);
        if inner.len() > 2
            && inner.ends_with('/')
            && inner.contains(['\\', '(', '[', '{', '|', '+', '?', '^', '$'])
        {
            return Line::Error("regular-expression rules are not supported (rule ignored)");
        }
        return Line::NotForDns;
    }
    let (pattern, options) = match rest.split_once('$') {
        Some((p, o)) => (p, Some(o)),
        None => (rest, None),
    };
    let mut important = false;
    let mut badfilter = false;
    for opt in options.into_iter().flat_map(|o| o.split(',')) {
        let opt = opt.trim();
        let key = opt
            .trim_start_matches('~')
            .split('=')
            .next()
            .unwrap_or("")
            .to_ascii_lowercase();
        match key.as_str() {
            "important" => important = true,
            "badfilter" => badfilter = true,
            k => {
                if let Some((_, why)) = UNSUPPORTED_DNS_MODIFIERS.iter().find(|(m, _)| *m == k) {
                    return Line::Error(why);
                }
                if BROWSER_MODIFIERS.contains(&k) {
                    return Line::NotForDns;
                }
                return Line::Error("unknown adblock modifier");
            }
        }
    }
    let body = if let Some(b) = pattern.strip_prefix("||") {
        b
    } else if let Some(b) = pattern.strip_prefix('|') {
        // `|https://host/path`: an address rule for browsers.
        if b.contains("://") || b.contains('/') {
            return Line::NotForDns;
        }
        return Line::Error("a '|' start anchor is not supported in DNS rules (use ||name^)");
    } else {
        pattern
    };
    let body = body
        .strip_suffix("^|")
        .or_else(|| body.strip_suffix('^'))
        .or_else(|| body.strip_suffix('|'))
        .unwrap_or(body);
    if body.contains(['/', '^', ':', '?', '=', '&']) {
        return Line::NotForDns;
    }
    let (subdomains, name) = match body.strip_prefix("*.") {
        Some(b) => (true, b),
        None => (false, body),
    };
    if name.is_empty() || name == "*" {
        return Line::Error("a rule that matches every name");
    }
    if name.contains('*') {
        return Line::Error("wildcards inside a name are not supported (rule ignored)");
    }
    let kind = match (exception, important, subdomains) {
        (false, false, false) => EntryKind::Block,
        (false, false, true) => EntryKind::BlockSubdomains,
        (false, true, false) => EntryKind::ImportantBlock,
        (true, false, false) => EntryKind::Allow,
        (true, true, false) => EntryKind::ImportantAllow,
        (_, _, true) => {
            return Line::Error(
                "a subdomains-only rule (||*.name^) as an exception or $important is not supported",
            );
        }
    };
    entry(kind, name, badfilter)
}

/// A name as a list entry: refused when it is a public suffix, nothing when it is never blocked.
fn entry(kind: EntryKind, name: &str, badfilter: bool) -> Line {
    match list_name_hash(name) {
        Ok(Some(hash)) => Line::Entry {
            kind,
            hash,
            badfilter,
        },
        Ok(None) => Line::Nothing,
        Err(reason) => Line::Error(reason),
    }
}

/// How a valid name relates to the special and public names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameClass {
    /// An ordinary domain.
    Ordinary,
    /// `localhost`, a hosts-file self name or a name under a special-use top-level name: never
    /// blocked, never forwarded.
    Special,
    /// A public suffix (`com`, `co.uk`, or an unknown single label): blocking it blocks every
    /// name registered under it.
    PublicSuffix,
}

/// A validated name: lowercase ASCII (punycode for Unicode input), no trailing dot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckedName {
    /// The name.
    pub name: String,
    /// Special, public suffix or ordinary.
    pub class: NameClass,
}

/// Validates and normalises a name (for rules; lists use the allocation-free path).
pub fn check_name(name: &str) -> Result<CheckedName, &'static str> {
    let mut buf = [0u8; 253];
    let len = normalise(name, &mut buf)?;
    let lower = &buf[..len];
    Ok(CheckedName {
        name: String::from_utf8_lossy(lower).into_owned(),
        class: classify_name(lower),
    })
}

/// The hash of a list entry; `None` for a name that is never blocked.
fn list_name_hash(name: &str) -> Result<Option<u64>, &'static str> {
    let mut buf = [0u8; 253];
    let len = normalise(name, &mut buf)?;
    let lower = &buf[..len];
    match classify_name(lower) {
        NameClass::Special => Ok(None),
        NameClass::PublicSuffix => {
            Err("a public suffix: it would block every name under it (use an explicit rule)")
        }
        NameClass::Ordinary => Ok(Some(hash_lower(lower))),
    }
}

fn classify_name(lower: &[u8]) -> NameClass {
    let tld = lower.rsplit(|&b| b == b'.').next().unwrap_or(lower);
    if SPECIAL_TLDS.iter().any(|t| t.as_bytes() == tld)
        || HOSTS_SELF.iter().any(|s| s.as_bytes() == lower)
    {
        return NameClass::Special;
    }
    if is_public_suffix(lower) {
        return NameClass::PublicSuffix;
    }
    NameClass::Ordinary
}

/// Whether the whole name is a suffix under which the public registers names (the ICANN part of
/// the Public Suffix List, or an unknown top-level label). Private-section suffixes such as
/// `github.io` are companies' domains and may be listed.
fn is_public_suffix(lower: &[u8]) -> bool {
    match psl::suffix(lower) {
        Some(s) if s.as_bytes().len() == lower.len() => {
            !s.is_known() || s.typ() == Some(psl::Type::Icann)
        }
        Some(_) => false,
        None => true,
    }
}

/// Validates a domain name and hashes it (case-insensitively), without allocating for ASCII
/// input. Syntax only: no public-suffix or special-name check (see [`check_name`]).
pub fn domain_hash(name: &str) -> Result<u64, &'static str> {
    let mut buf = [0u8; 253];
    let len = normalise(name, &mut buf)?;
    Ok(hash_lower(&buf[..len]))
}

/// Writes `name` lowercased (and converted to punycode when it is Unicode) into `buf`; its length.
fn normalise(name: &str, buf: &mut [u8; 253]) -> Result<usize, &'static str> {
    let name = name.strip_suffix('.').unwrap_or(name);
    let name: Cow<'_, str> = if name.is_ascii() {
        Cow::Borrowed(name)
    } else {
        Cow::Owned(
            idna::domain_to_ascii(name)
                .map_err(|_| "a Unicode name that cannot be converted to punycode (IDNA)")?,
        )
    };
    let bytes = name.as_bytes();
    if bytes.is_empty() {
        return Err("empty name");
    }
    if bytes.len() > 253 {
        return Err("name longer than 253 characters");
    }
    if name.parse::<IpAddr>().is_ok() {
        return Err("an address, not a name");
    }
    for label in bytes.split(|&b| b == b'.') {
        if label.is_empty() {
            return Err("empty label (two dots in a row)");
        }
        if label.len() > 63 {
            return Err("label longer than 63 characters");
        }
        if !label
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err("character not allowed in a domain name");
        }
        if label.starts_with(b"-") || label.ends_with(b"-") {
            return Err("a label starts or ends with '-'");
        }
    }
    for (o, &b) in buf.iter_mut().zip(bytes) {
        *o = b.to_ascii_lowercase();
    }
    Ok(bytes.len())
}

/// The hash of a validated lowercase name, label by label from the root.
fn hash_lower(lower: &[u8]) -> u64 {
    lower.rsplit(|&b| b == b'.').fold(ROOT_SEED, label_hash)
}

#[cfg(test)]
mod tests;
