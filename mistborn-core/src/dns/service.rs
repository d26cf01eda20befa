//! The DNS API of a [`Mistborn`] handle: lists (add by URL or upload, enable, refresh, delete),
//! the user's allow/deny rules, building the filter from the database, the query log and its
//! statistics. List and rule management needs a superuser; a regular user reads only the log rows
//! of their own profiles.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Duration;

use super::lists::parse_list;
use super::matcher::{Filter, FilterBuilder};
use super::store;
use super::types::{DnsList, DnsRule, DnsStats, ListRefresh, LogFilter, LoggedQuery, RuleKind};
use crate::actor::Actor;
use crate::error::{Error, Result};
use crate::mistborn::Mistborn;
use crate::store::now_unix;

/// Largest list download accepted.
const MAX_LIST_BYTES: usize = 64 * 1024 * 1024;

/// The DNS API.
#[derive(Debug, Clone, Copy)]
pub struct Dns<'a> {
    pub(crate) m: &'a Mistborn,
}

fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

fn check_list_name(name: &str) -> Result<String> {
    let name = name.trim();
    if name.is_empty() || name.len() > 64 || name.chars().any(char::is_control) {
        return Err(Error::invalid(
            "name",
            "a list name is 1-64 printable characters",
        ));
    }
    Ok(name.to_string())
}

/// Normalises and validates a rule's domain.
fn rule_name(kind: RuleKind, name: &str) -> Result<String> {
    let n = name.trim().trim_end_matches('.').to_ascii_lowercase();
    let n = match kind {
        RuleKind::Wildcard => n.trim_start_matches("*.").to_string(),
        _ => n,
    };
    super::lists::domain_hash(&n).map_err(|r| Error::invalid("name", format!("'{name}': {r}")))?;
    Ok(n)
}

impl Dns<'_> {
    fn pool(&self) -> &sqlx::AnyPool {
        self.m.store().pool()
    }

    /// Every list.
    pub async fn lists(&self, actor: &Actor) -> Result<Vec<DnsList>> {
        actor.require_superuser("managing DNS lists")?;
        store::lists(self.pool()).await
    }

    /// One list by id or name.
    pub async fn list(&self, actor: &Actor, key: &str) -> Result<DnsList> {
        actor.require_superuser("managing DNS lists")?;
        store::list(self.pool(), key)
            .await?
            .ok_or_else(|| Error::not_found(format!("DNS list '{key}'")))
    }

    /// Adds a list by URL and downloads it now. A failed or garbage download is an error and adds
    /// nothing.
    pub async fn add_list_url(&self, actor: &Actor, name: &str, url: &str) -> Result<ListRefresh> {
        actor.require_superuser("managing DNS lists")?;
        let name = check_list_name(name)?;
        let parsed_url =
            reqwest::Url::parse(url).map_err(|e| Error::invalid("url", format!("'{url}': {e}")))?;
        if !matches!(parsed_url.scheme(), "http" | "https") {
            return Err(Error::invalid("url", "only http and https URLs"));
        }
        let text = download(url).await.map_err(|e| Error::invalid("url", e))?;
        self.insert(name, Some(url.to_string()), &text).await
    }

    /// Adds an uploaded list.
    pub async fn add_list_text(
        &self,
        actor: &Actor,
        name: &str,
        text: &str,
    ) -> Result<ListRefresh> {
        actor.require_superuser("managing DNS lists")?;
        let name = check_list_name(name)?;
        self.insert(name, None, text).await
    }

    async fn insert(&self, name: String, url: Option<String>, text: &str) -> Result<ListRefresh> {
        if store::list(self.pool(), &name).await?.is_some() {
            return Err(Error::Conflict(format!("a DNS list named '{name}' exists")));
        }
        let parsed = parse_list(text);
        if let Some(reason) = parsed.garbage_reason() {
            return Err(Error::invalid("list", reason));
        }
        let now = now_unix();
        let list = DnsList {
            id: new_id(),
            name,
            url,
            enabled: true,
            entries: parsed.entries() as i64,
            invalid_lines: parsed.invalid_count as i64,
            updated_at: Some(now),
            checked_at: Some(now),
            last_error: None,
            created_at: now,
        };
        store::insert_list(self.pool(), &list, text).await.map_err(
            crate::store::conflict_if_taken(|| format!("a DNS list named '{}' exists", list.name)),
        )?;
        self.m
            .changed(
                crate::store::revision::Domain::Dns,
                [crate::mistborn::Change::Dns],
            )
            .await;
        Ok(ListRefresh {
            list,
            updated: true,
            invalid: invalid_lines(&parsed),
        })
    }

    /// Turns a list on or off.
    pub async fn set_enabled(&self, actor: &Actor, key: &str, enabled: bool) -> Result<DnsList> {
        let list = self.list(actor, key).await?;
        store::set_enabled(self.pool(), &list.id, enabled).await?;
        self.m
            .changed(
                crate::store::revision::Domain::Dns,
                [crate::mistborn::Change::Dns],
            )
            .await;
        self.list(actor, &list.id).await
    }

    /// Deletes a list.
    pub async fn delete_list(&self, actor: &Actor, key: &str) -> Result<()> {
        let list = self.list(actor, key).await?;
        store::delete_list(self.pool(), &list.id).await?;
        self.m
            .changed(
                crate::store::revision::Domain::Dns,
                [crate::mistborn::Change::Dns],
            )
            .await;
        Ok(())
    }

    /// Downloads a URL list again. A failed or garbage download keeps the last good copy and
    /// records why on the list (`last_error`); it is not an error of the call.
    pub async fn refresh_list(&self, actor: &Actor, key: &str) -> Result<ListRefresh> {
        let list = self.list(actor, key).await?;
        let Some(url) = list.url.clone() else {
            return Err(Error::invalid(
                "list",
                format!("'{}' was uploaded: upload a new copy", list.name),
            ));
        };
        let now = now_unix();
        let outcome = match download(&url).await {
            Err(e) => Err(e),
            Ok(text) => {
                let parsed = parse_list(&text);
                match parsed.garbage_reason() {
                    Some(reason) => Err(format!("rejected download: {reason}")),
                    None => Ok((text, parsed)),
                }
            }
        };
        match outcome {
            Ok((text, parsed)) => {
                store::store_content(
                    self.pool(),
                    &list.id,
                    &text,
                    parsed.entries() as i64,
                    parsed.invalid_count as i64,
                    now,
                )
                .await?;
                self.m
                    .changed(
                        crate::store::revision::Domain::Dns,
                        [crate::mistborn::Change::Dns],
                    )
                    .await;
                Ok(ListRefresh {
                    list: self.list(actor, &list.id).await?,
                    updated: true,
                    invalid: invalid_lines(&parsed),
                })
            }
            Err(reason) => {
                tracing::warn!(list = %list.name, %reason, "DNS list refresh failed; keeping the last good copy");
                store::store_failure(self.pool(), &list.id, &reason, now).await?;
                Ok(ListRefresh {
                    list: self.list(actor, &list.id).await?,
                    updated: false,
                    invalid: Vec::new(),
                })
            }
        }
    }

    /// Refreshes every enabled URL list last checked more than `max_age` ago.
    pub async fn refresh_due(
        &self,
        actor: &Actor,
        max_age: Duration,
        now: i64,
    ) -> Result<Vec<ListRefresh>> {
        let mut out = Vec::new();
        for l in self.lists(actor).await? {
            let due = l
                .checked_at
                .is_none_or(|t| now - t >= max_age.as_secs() as i64);
            if l.enabled && l.url.is_some() && due {
                out.push(self.refresh_list(actor, &l.id).await?);
            }
        }
        Ok(out)
    }

    /// The user's rules.
    pub async fn rules(&self, actor: &Actor) -> Result<Vec<DnsRule>> {
        actor.require_superuser("managing DNS rules")?;
        store::rules(self.pool()).await
    }

    /// Adds an allow, deny or wildcard-deny rule.
    pub async fn add_rule(&self, actor: &Actor, kind: RuleKind, name: &str) -> Result<DnsRule> {
        actor.require_superuser("managing DNS rules")?;
        let rule = DnsRule {
            id: new_id(),
            kind,
            name: rule_name(kind, name)?,
            created_at: now_unix(),
        };
        store::insert_rule(self.pool(), &rule)
            .await
            .map_err(crate::store::conflict_if_taken(|| {
                format!("{} rule for '{}' exists", kind.as_str(), rule.name)
            }))?;
        self.m
            .changed(
                crate::store::revision::Domain::Dns,
                [crate::mistborn::Change::Dns],
            )
            .await;
        Ok(rule)
    }

    /// Deletes a rule by id.
    pub async fn delete_rule(&self, actor: &Actor, id: &str) -> Result<()> {
        actor.require_superuser("managing DNS rules")?;
        if store::delete_rule(self.pool(), id).await? == 0 {
            return Err(Error::not_found(format!("DNS rule '{id}'")));
        }
        self.m
            .changed(
                crate::store::revision::Domain::Dns,
                [crate::mistborn::Change::Dns],
            )
            .await;
        Ok(())
    }

    /// Builds the filter from the enabled lists and the rules.
    pub async fn build_filter(&self) -> Result<Filter> {
        let lists = store::enabled_contents(self.pool()).await?;
        let rules = store::rules(self.pool()).await?;
        // Parsing a million lines is CPU work: off the async workers, below the serving threads.
        super::rebuild::off_workers("building the DNS filter", move || {
            let mut b = FilterBuilder::new();
            for (name, content) in &lists {
                b.add_list(name, &parse_list(content));
            }
            for r in &rules {
                match r.kind {
                    RuleKind::Allow => b.allow(&r.name),
                    RuleKind::Deny => b.deny_exact(&r.name),
                    RuleKind::Wildcard => b.deny_wildcard(&r.name),
                }
            }
            b.build()
        })
        .await
    }

    /// Query log rows, newest first. A regular user sees only their own profiles' queries.
    pub async fn query_log(&self, actor: &Actor, f: &LogFilter) -> Result<Vec<LoggedQuery>> {
        let user = match actor {
            Actor::User { id, .. } if !actor.is_superuser() => Some(id.as_str().to_string()),
            _ => f.user.clone(),
        };
        self.m.dns_log().await?.rows(f, user.as_deref()).await
    }

    /// Statistics since `since_ms` (whole minutes; rankings over whole hours), with `top`
    /// entries per ranking and buckets of `bucket_ms`; from the resolver's aggregates, never
    /// from the log rows.
    pub async fn stats(
        &self,
        actor: &Actor,
        since_ms: i64,
        top: i64,
        bucket_ms: i64,
    ) -> Result<DnsStats> {
        actor.require_superuser("reading DNS statistics")?;
        let top = usize::try_from(top.clamp(1, 1000)).unwrap_or(10);
        let bucket_ms = bucket_ms.max(super::stats::MINUTE_MS);
        self.m
            .dns_log()
            .await?
            .stats(since_ms, top, bucket_ms)
            .await
    }

    /// Applies the retention now: rows older than `retention` (from `now_ms`) and beyond
    /// `max_rows` (the resolver also applies the configured limits after every batch).
    pub async fn prune_log(&self, now_ms: i64, retention: Duration, max_rows: u64) -> Result<()> {
        let limits = super::logstore::Limits {
            max_rows,
            max_age: retention,
        };
        self.m.dns_log().await?.prune(limits, now_ms).await
    }

    /// Who is behind each tunnel address: profile id and name, user id and name.
    pub(crate) async fn attribution(&self) -> Result<HashMap<IpAddr, Owner>> {
        let mut map = HashMap::new();
        for p in self.m.peers().list(&Actor::System).await? {
            let owner = Owner {
                peer_id: p.id.to_string(),
                peer_name: p.name.to_string(),
                user_id: p.user_id.to_string(),
                username: p.username.to_string(),
            };
            map.insert(IpAddr::V4(p.address_v4), owner.clone());
            map.insert(IpAddr::V6(p.address_v6), owner);
        }
        Ok(map)
    }
}

/// The profile and user behind an address.
#[derive(Debug, Clone)]
pub(crate) struct Owner {
    pub peer_id: String,
    pub peer_name: String,
    pub user_id: String,
    pub username: String,
}

fn invalid_lines(p: &super::lists::ParsedList) -> Vec<(usize, String, String)> {
    p.invalid
        .iter()
        .map(|l| (l.line, l.reason.to_string(), l.text.clone()))
        .collect()
}

/// Downloads a list; the reason on failure.
async fn download(url: &str) -> std::result::Result<String, String> {
    let tls = super::upstream::tls_config(None).map_err(|e| e.to_string())?;
    let client = reqwest::Client::builder()
        .use_preconfigured_tls(tls)
        .timeout(Duration::from_secs(60))
        .build()
        .map_err(|e| format!("http client: {e}"))?;
    let resp = client
        .get(url)
        .send()
        .await
        .map_err(|e| format!("download failed: {e}"))?;
    if !resp.status().is_success() {
        return Err(format!("download failed: HTTP {}", resp.status()));
    }
    if resp
        .content_length()
        .is_some_and(|n| n > MAX_LIST_BYTES as u64)
    {
        return Err(format!("download is larger than {MAX_LIST_BYTES} bytes"));
    }
    let bytes = resp
        .bytes()
        .await
        .map_err(|e| format!("download failed: {e}"))?;
    if bytes.len() > MAX_LIST_BYTES {
        return Err(format!("download is larger than {MAX_LIST_BYTES} bytes"));
    }
    String::from_utf8(bytes.to_vec()).map_err(|_| "download is not UTF-8 text".to_string())
}
