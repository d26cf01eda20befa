//! The DNS API of a [`Mistborn`] handle: lists (add by URL or upload, enable, refresh, delete),
//! the user's allow/deny rules, building the filter from the database, the query log and its
//! statistics. List and rule management needs a superuser; a regular user reads only the log rows
//! of their own profiles.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Duration;

use super::lists::{CheckedName, NameClass, ParsedList, check_name, parse_list};
use super::matcher::{Filter, FilterBuilder};
use super::store::{self, ContentSummary};
use super::types::{
    DnsList, DnsRule, DnsStats, LineError, ListRefresh, LogFilter, LoggedQuery, RuleKind,
};
use crate::actor::Actor;
use crate::download::download_text;
use crate::error::{Error, Result};
use crate::mistborn::Mistborn;
use crate::store::now_unix;

/// The DNS API.
#[derive(Debug, Clone, Copy)]
pub struct Dns<'a> {
    pub(crate) m: &'a Mistborn,
}

fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// List names follow the Coppercloud rule (they show in logs and the panel; no paths, no
/// control characters).
fn check_list_name(name: &str) -> Result<String> {
    crate::firewall::check_list_name(name)
}

/// Normalises and validates a rule's domain (punycode for Unicode names). `localhost` and the
/// special-use names are never blocked, so deny rules for them are refused.
fn rule_name(kind: RuleKind, name: &str) -> Result<CheckedName> {
    let n = name.trim();
    let n = match kind {
        RuleKind::Wildcard => n.trim_start_matches("*."),
        _ => n,
    };
    let checked = check_name(n).map_err(|r| Error::invalid("name", format!("'{name}': {r}")))?;
    if checked.class == NameClass::Special && kind != RuleKind::Allow {
        return Err(Error::invalid(
            "name",
            format!("'{name}' is a special-use name: it is answered locally and never blocked"),
        ));
    }
    Ok(checked)
}

/// The warning shown with a rule: a deny rule for a public suffix blocks a whole registry.
fn rule_warning(kind: RuleKind, name: &str) -> Option<String> {
    let public = check_name(name).is_ok_and(|c| c.class == NameClass::PublicSuffix);
    (public && kind != RuleKind::Allow).then(|| {
        format!("'{name}' is a public suffix: this rule blocks every name registered under it")
    })
}

/// A parsed copy with what is stored beside it.
struct Parsed {
    text: String,
    list: ParsedList,
    errors: Vec<LineError>,
}

impl Parsed {
    fn summary(&self) -> ContentSummary<'_> {
        ContentSummary {
            entries: self.list.entries() as i64,
            invalid: self.list.invalid_count as i64,
            not_for_dns: self.list.not_for_dns as i64,
            line_errors: &self.errors,
        }
    }
}

/// Parses a list off the async workers (a million lines take a while).
async fn parse(text: String) -> Result<Parsed> {
    tokio::task::spawn_blocking(move || {
        let list = parse_list(&text);
        let errors = line_errors(&list);
        Parsed { text, list, errors }
    })
    .await
    .map_err(|e| Error::Config(format!("parsing a DNS list: {e}")))
}

impl Dns<'_> {
    fn pool(&self) -> &sqlx::AnyPool {
        self.m.store().pool()
    }

    fn max_bytes(&self) -> u64 {
        self.m.config().download.max_bytes
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

    /// The line errors of a list's last good copy (the first 50: number, reason, text).
    pub async fn line_errors(&self, actor: &Actor, key: &str) -> Result<Vec<LineError>> {
        let list = self.list(actor, key).await?;
        if let Some(errors) = store::line_errors(self.pool(), &list.id).await? {
            return Ok(errors);
        }
        // Stored before line errors were kept: work them out once from the content.
        let parsed = parse(store::content(self.pool(), &list.id).await?).await?;
        store::store_summary(self.pool(), &list.id, &parsed.summary()).await?;
        Ok(parsed.errors)
    }

    /// Adds a list by URL and downloads it now. A failed or garbage download is an error and adds
    /// nothing.
    pub async fn add_list_url(&self, actor: &Actor, name: &str, url: &str) -> Result<ListRefresh> {
        actor.require_superuser("managing DNS lists")?;
        let name = check_list_name(name)?;
        let text = download_text(url, &self.m.config().download)
            .await
            .map_err(|e| Error::invalid("url", e.to_string()))?;
        self.insert(name, Some(url.trim().to_string()), text).await
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
        self.check_size(text.len())?;
        self.insert(name, None, text.to_string()).await
    }

    /// Checks, before a large upload is read, that `actor` may upload lists and `name` is a valid
    /// list name; the size cap the upload must keep to.
    pub fn upload_allowed(&self, actor: &Actor, name: &str) -> Result<u64> {
        actor.require_superuser("managing DNS lists")?;
        check_list_name(name)?;
        Ok(self.max_bytes())
    }

    /// Stores an uploaded list under `name`: adds it, or replaces the copy of an uploaded list of
    /// that name (`updated` then says a copy was replaced). A list subscribed by URL is refreshed
    /// from its URL, not replaced by an upload. Garbage changes nothing.
    pub async fn put_list_text(
        &self,
        actor: &Actor,
        name: &str,
        text: String,
    ) -> Result<(ListRefresh, bool)> {
        actor.require_superuser("managing DNS lists")?;
        let name = check_list_name(name)?;
        self.check_size(text.len())?;
        let Some(list) = store::list(self.pool(), &name).await? else {
            return Ok((self.insert(name, None, text).await?, true));
        };
        if list.url.is_some() {
            return Err(Error::invalid(
                "list",
                format!(
                    "'{}' is downloaded from its URL: refresh it instead",
                    list.name
                ),
            ));
        }
        let parsed = parse(text).await?;
        if let Some(reason) = parsed.list.garbage_reason() {
            return Err(Error::invalid("list", reason));
        }
        store::store_content(
            self.pool(),
            &list.id,
            &parsed.text,
            &parsed.summary(),
            now_unix(),
        )
        .await?;
        self.m
            .changed(
                crate::store::revision::Domain::Dns,
                [crate::mistborn::Change::Dns],
            )
            .await;
        Ok((
            ListRefresh {
                list: self.list(actor, &list.id).await?,
                updated: true,
                invalid: parsed.errors,
            },
            false,
        ))
    }

    fn check_size(&self, len: usize) -> Result<()> {
        let limit = self.max_bytes();
        if len as u64 > limit {
            return Err(Error::invalid(
                "list",
                format!("the list is larger than {limit} bytes (download.max_bytes)"),
            ));
        }
        Ok(())
    }

    async fn insert(&self, name: String, url: Option<String>, text: String) -> Result<ListRefresh> {
        if store::list(self.pool(), &name).await?.is_some() {
            return Err(Error::Conflict(format!("a DNS list named '{name}' exists")));
        }
        let parsed = parse(text).await?;
        if let Some(reason) = parsed.list.garbage_reason() {
            return Err(Error::invalid("list", reason));
        }
        let now = now_unix();
        let summary = parsed.summary();
        let list = DnsList {
            id: new_id(),
            name,
            url,
            enabled: true,
            entries: summary.entries,
            invalid_lines: summary.invalid,
            not_for_dns: summary.not_for_dns,
            updated_at: Some(now),
            checked_at: Some(now),
            last_error: None,
            created_at: now,
        };
        store::insert_list(self.pool(), &list, &parsed.text, &parsed.errors)
            .await
            .map_err(crate::store::conflict_if_taken(|| {
                format!("a DNS list named '{}' exists", list.name)
            }))?;
        self.m
            .changed(
                crate::store::revision::Domain::Dns,
                [crate::mistborn::Change::Dns],
            )
            .await;
        Ok(ListRefresh {
            list,
            updated: true,
            invalid: parsed.errors,
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
        let outcome = match download_text(&url, &self.m.config().download).await {
            Err(e) => Err(e.to_string()),
            Ok(text) => {
                let parsed = parse(text).await?;
                match parsed.list.garbage_reason() {
                    Some(reason) => Err(format!("rejected download: {reason}")),
                    None => Ok(parsed),
                }
            }
        };
        match outcome {
            Ok(parsed) => {
                store::store_content(self.pool(), &list.id, &parsed.text, &parsed.summary(), now)
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
                    invalid: parsed.errors,
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
        let mut rules = store::rules(self.pool()).await?;
        for r in &mut rules {
            r.warning = rule_warning(r.kind, &r.name);
        }
        Ok(rules)
    }

    /// Adds an allow, deny or wildcard-deny rule. A deny rule for a public suffix is allowed (an
    /// explicit decision) and comes back with a warning.
    pub async fn add_rule(&self, actor: &Actor, kind: RuleKind, name: &str) -> Result<DnsRule> {
        actor.require_superuser("managing DNS rules")?;
        let name = rule_name(kind, name)?.name;
        let rule = DnsRule {
            id: new_id(),
            kind,
            warning: rule_warning(kind, &name),
            name,
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
        // Nothing was logged before 1970; an earlier start would overflow rounding to the minute.
        let since_ms = since_ms.max(0);
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

fn line_errors(p: &ParsedList) -> Vec<LineError> {
    p.invalid
        .iter()
        .map(|l| LineError {
            line: l.line,
            reason: l.reason.to_string(),
            text: l.text.clone(),
        })
        .collect()
}
