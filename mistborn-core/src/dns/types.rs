//! Value types of the DNS API (lists, rules, log rows, statistics).

use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// A block list: subscribed by URL or uploaded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DnsList {
    /// Stable id.
    pub id: String,
    /// Unique display name (shown as "blocked by" in the log).
    pub name: String,
    /// Where it is downloaded from; `None` for an uploaded list.
    pub url: Option<String>,
    /// Whether it is part of the filter.
    pub enabled: bool,
    /// Entries in the last good copy.
    pub entries: i64,
    /// Line errors (invalid lines and unsupported rules) in the last good copy.
    pub invalid_lines: i64,
    /// Lines of the last good copy that are rules, but not DNS rules (cosmetic, scriptlet, path
    /// or browser-only rules): skipped.
    pub not_for_dns: i64,
    /// When the last good copy was stored, Unix seconds.
    pub updated_at: Option<i64>,
    /// When a download was last tried, Unix seconds.
    pub checked_at: Option<i64>,
    /// Why the last download was rejected (the last good copy stays in use).
    pub last_error: Option<String>,
    /// Creation time, Unix seconds.
    pub created_at: i64,
}

/// The outcome of refreshing one list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListRefresh {
    /// The list after the refresh.
    pub list: DnsList,
    /// Whether a new copy was stored.
    pub updated: bool,
    /// The first line errors of the new copy.
    pub invalid: Vec<LineError>,
}

/// A line of a list that is not an entry: invalid, or a rule this resolver does not support.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LineError {
    /// 1-based line number.
    pub line: usize,
    /// Why it is not an entry.
    pub reason: String,
    /// The line (cut to 200 characters).
    pub text: String,
}

/// Kind of a user rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RuleKind {
    /// Never block this name or its subdomains.
    Allow,
    /// Block exactly this name.
    Deny,
    /// Block every subdomain of this name (`*.example.com`).
    Wildcard,
}

impl RuleKind {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            RuleKind::Allow => "allow",
            RuleKind::Deny => "deny",
            RuleKind::Wildcard => "wildcard",
        }
    }
}

impl FromStr for RuleKind {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "allow" => Ok(Self::Allow),
            "deny" => Ok(Self::Deny),
            "wildcard" => Ok(Self::Wildcard),
            _ => Err(Error::invalid(
                "kind",
                format!("'{s}' is not allow, deny or wildcard"),
            )),
        }
    }
}

/// A user rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DnsRule {
    /// Stable id.
    pub id: String,
    /// Allow, deny or wildcard deny.
    pub kind: RuleKind,
    /// The domain (for wildcards without the `*.`), lowercase, punycode for Unicode names.
    pub name: String,
    /// Creation time, Unix seconds.
    pub created_at: i64,
    /// Why the rule deserves a second look (a deny rule for a public suffix blocks every name
    /// under it), worked out from the name.
    pub warning: Option<String>,
}

/// One logged query, attributed to the profile and user behind the client address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoggedQuery {
    /// Arrival, Unix milliseconds.
    pub at_ms: i64,
    /// Client address.
    pub client: String,
    /// Profile id, when the address is a profile's tunnel address.
    pub peer_id: Option<String>,
    /// Profile name.
    pub peer_name: Option<String>,
    /// Owner's id.
    pub user_id: Option<String>,
    /// Owner's name.
    pub username: Option<String>,
    /// Name asked for (no trailing dot).
    pub name: String,
    /// Record type.
    pub qtype: String,
    /// blocked, local, forwarded, failed, refused.
    pub outcome: String,
    /// The list or rule that blocked it.
    pub blocked_by: Option<String>,
    /// Response code sent.
    pub rcode: String,
    /// Short text of the answer.
    pub answer: Option<String>,
    /// Microseconds from arrival to the response being sent.
    pub latency_us: i64,
}

/// Which log rows to read.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct LogFilter {
    /// Only rows at or after this time, Unix milliseconds.
    pub since_ms: Option<i64>,
    /// Only this client address.
    pub client: Option<String>,
    /// Only this user (id or name).
    pub user: Option<String>,
    /// Only blocked queries.
    pub blocked_only: bool,
    /// At most this many rows, newest first (default 100, at most 10,000).
    pub limit: Option<i64>,
}

/// A name or client with its count.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Count {
    /// The domain, or the client (username/profile, or the address).
    pub key: String,
    /// How many queries.
    pub count: i64,
}

/// Queries in one time bucket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bucket {
    /// Bucket start, Unix milliseconds.
    pub start_ms: i64,
    /// Queries in the bucket.
    pub total: i64,
    /// Blocked queries in the bucket.
    pub blocked: i64,
}

/// Statistics of a time window (whole minutes for the counts, whole hours for the rankings),
/// from the resolver's aggregates.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DnsStats {
    /// Queries since `since_ms`.
    pub total: i64,
    /// Blocked queries.
    pub blocked: i64,
    /// blocked / total (0 when there is none).
    pub blocked_share: f64,
    /// Answered from the local zone.
    pub local: i64,
    /// Forwarded upstream (or answered from the upstream cache).
    pub forwarded: i64,
    /// Failed upstream lookups and refused queries.
    pub failed: i64,
    /// Query log rows lost because the log writer fell behind (the queries were answered and are
    /// counted above; only their log rows are missing).
    pub log_dropped: i64,
    /// Query log rows stored now (bounded by the configured rows and age).
    pub log_rows: i64,
    /// Most asked names.
    pub top_domains: Vec<Count>,
    /// Most blocked names.
    pub top_blocked: Vec<Count>,
    /// Most active clients ("user/profile", or the address without a profile).
    pub top_clients: Vec<Count>,
    /// Queries over time.
    pub over_time: Vec<Bucket>,
}
