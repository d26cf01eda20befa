//! The Coppercloud API: named IP lists from a URL or an upload, in block or allow mode. The
//! database keeps the last good copy of each; a refresh that fails or brings garbage keeps it and
//! records why.

use serde::{Deserialize, Serialize};

use super::coppercloud::{ListMode, check_list};
use super::store;
use crate::actor::Actor;
use crate::error::{Error, Result};
use crate::mistborn::{Change, Mistborn};

/// A stored list (without its content).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CopperList {
    /// Stable id (lowercase hex; names the nft sets).
    pub id: String,
    /// Unique name.
    pub name: String,
    /// Block or allow.
    pub mode: ListMode,
    /// Where it is downloaded from; `None` for an upload.
    pub url: Option<String>,
    /// Whether the firewall uses it.
    pub enabled: bool,
    /// Entries in the last good copy.
    pub entries: u64,
    /// When the last good copy was stored (Unix seconds).
    pub refreshed_at: Option<i64>,
    /// Why the last refresh was refused, if it was.
    pub last_error: Option<String>,
    /// Created (Unix seconds).
    pub created_at: i64,
    /// Last changed (Unix seconds).
    pub updated_at: i64,
}

/// A new list: give `content` (an upload) or `url` (downloaded now), or both (the content is
/// used now, the URL for refreshes).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewList {
    /// Unique name.
    pub name: String,
    /// Block or allow.
    #[serde(default)]
    pub mode: ListMode,
    /// Download source.
    #[serde(default)]
    pub url: Option<String>,
    /// Uploaded text.
    #[serde(default)]
    pub content: Option<String>,
}

/// A change to a list; `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListUpdate {
    /// New name.
    pub name: Option<String>,
    /// New mode.
    pub mode: Option<ListMode>,
    /// Switch on or off.
    pub enabled: Option<bool>,
    /// New download source: fetched now (unless `content` is given too); a failed or garbage
    /// download changes nothing.
    pub url: Option<String>,
    /// New uploaded content.
    pub content: Option<String>,
}

/// What a refresh did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefreshOutcome {
    /// The list after the refresh.
    pub list: CopperList,
    /// Whether a new copy replaced the old one.
    pub updated: bool,
}

/// The firewall's stored settings: Coppercloud lists. (The live table, metrics and policy view
/// come from the running [`FirewallPlane`](super::FirewallPlane).)
#[derive(Debug, Clone, Copy)]
pub struct Firewall<'a> {
    pub(crate) m: &'a Mistborn,
}

/// Validates a list name (Coppercloud and DNS lists): it names nft sets and shows in logs.
pub(crate) fn check_name(name: &str) -> Result<String> {
    let n = name.trim();
    if n.is_empty()
        || n.len() > 64
        || !n
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, ' ' | '-' | '_' | '.'))
    {
        return Err(Error::invalid(
            "name",
            "1-64 characters of letters, digits, space, '-', '_', '.'",
        ));
    }
    Ok(n.to_string())
}

fn check_url(url: &str) -> Result<String> {
    let parsed = reqwest::Url::parse(url.trim())
        .map_err(|e| Error::invalid("url", format!("'{url}': {e}")))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(Error::invalid("url", "must be http:// or https://"));
    }
    Ok(parsed.to_string())
}

fn new_id() -> String {
    use rand::Rng;
    let n: u64 = rand::rng().random();
    format!("{n:016x}")
}

impl Firewall<'_> {
    fn pool(&self) -> &sqlx::AnyPool {
        self.m.store().pool()
    }

    /// Every list (superusers).
    pub async fn lists(&self, actor: &Actor) -> Result<Vec<CopperList>> {
        actor.require_superuser("viewing Coppercloud lists")?;
        store::lists(self.pool()).await
    }

    /// One list by id or name (superusers).
    pub async fn list(&self, actor: &Actor, key: &str) -> Result<CopperList> {
        actor.require_superuser("viewing Coppercloud lists")?;
        store::list(self.pool(), key)
            .await?
            .ok_or_else(|| Error::not_found(format!("Coppercloud list '{key}'")))
    }

    /// Adds a list. Its content must parse; a URL without content is downloaded first.
    pub async fn add_list(&self, actor: &Actor, new: NewList, now: i64) -> Result<CopperList> {
        actor.require_superuser("adding Coppercloud lists")?;
        let name = check_name(&new.name)?;
        let url = new.url.as_deref().map(check_url).transpose()?;
        let content = match (&new.content, &url) {
            (Some(c), _) => c.clone(),
            (None, Some(u)) => download(self.m, u)
                .await
                .map_err(|e| Error::invalid("url", e))?,
            (None, None) => {
                return Err(Error::invalid(
                    "content",
                    "give the list's content or a URL to download it from",
                ));
            }
        };
        let parsed = check_list(&content)?;
        let list = CopperList {
            id: new_id(),
            name,
            mode: new.mode,
            url,
            enabled: true,
            entries: parsed.entries as u64,
            refreshed_at: Some(now),
            last_error: None,
            created_at: now,
            updated_at: now,
        };
        store::insert(self.pool(), &list, &content).await?;
        self.m
            .changed(crate::store::revision::Domain::Firewall, [Change::Firewall])
            .await;
        Ok(list)
    }

    /// Changes a list; new content must parse (or nothing changes).
    pub async fn update_list(
        &self,
        actor: &Actor,
        key: &str,
        update: ListUpdate,
        now: i64,
    ) -> Result<CopperList> {
        let mut list = self.list(actor, key).await?;
        let url = update.url.as_deref().map(check_url).transpose()?;
        let name = update.name.as_deref().map(check_name).transpose()?;
        let content = match (update.content, &url) {
            (Some(c), _) => Some(c),
            (None, Some(u)) => Some(
                download(self.m, u)
                    .await
                    .map_err(|e| Error::invalid("url", e))?,
            ),
            (None, None) => None,
        };
        let parsed = content.as_deref().map(check_list).transpose()?;
        if let Some(n) = name {
            list.name = n;
        }
        if url.is_some() {
            list.url = url;
        }
        if let Some(m) = update.mode {
            list.mode = m;
        }
        if let Some(e) = update.enabled {
            list.enabled = e;
        }
        list.updated_at = now;
        store::update_meta(self.pool(), &list).await?;
        if let (Some(content), Some(p)) = (&content, parsed) {
            store::set_content(self.pool(), &list.id, content, p.entries as u64, now).await?;
            list.entries = p.entries as u64;
            list.refreshed_at = Some(now);
            list.last_error = None;
        }
        self.m
            .changed(crate::store::revision::Domain::Firewall, [Change::Firewall])
            .await;
        Ok(list)
    }

    /// Deletes a list.
    pub async fn delete_list(&self, actor: &Actor, key: &str) -> Result<()> {
        let list = self.list(actor, key).await?;
        store::delete(self.pool(), &list.id).await?;
        self.m
            .changed(crate::store::revision::Domain::Firewall, [Change::Firewall])
            .await;
        Ok(())
    }

    /// Downloads a list again. A failed download or a copy that does not parse keeps the last
    /// good copy; the reason is stored in `last_error` and returned as the error.
    pub async fn refresh_list(&self, actor: &Actor, key: &str, now: i64) -> Result<RefreshOutcome> {
        let list = self.list(actor, key).await?;
        let Some(url) = list.url.clone() else {
            return Err(Error::invalid(
                "url",
                format!(
                    "list '{}' was uploaded: it has no URL to refresh from",
                    list.name
                ),
            ));
        };
        let text = download(self.m, &url).await;
        self.store_refresh(list, text, now).await
    }

    /// Stores the outcome of a download (also used by tests with a fixed text).
    pub(crate) async fn store_refresh(
        &self,
        mut list: CopperList,
        text: std::result::Result<String, String>,
        now: i64,
    ) -> Result<RefreshOutcome> {
        let checked = text.and_then(|t| {
            check_list(&t)
                .map(|p| (t, p.entries as u64))
                .map_err(|e| format!("refused, the last good copy stays: {e}"))
        });
        match checked {
            Ok((content, entries)) => {
                store::set_content(self.pool(), &list.id, &content, entries, now).await?;
                list.entries = entries;
                list.refreshed_at = Some(now);
                list.last_error = None;
                list.updated_at = now;
                self.m
                    .changed(crate::store::revision::Domain::Firewall, [Change::Firewall])
                    .await;
                Ok(RefreshOutcome {
                    list,
                    updated: true,
                })
            }
            Err(reason) => {
                list.last_error = Some(reason.clone());
                list.updated_at = now;
                store::update_meta(self.pool(), &list).await?;
                Err(Error::invalid("content", reason))
            }
        }
    }

    /// Refreshes every list with a URL whose copy is older than `max_age_secs`; returns how many
    /// were refreshed and the failures (each keeps its last good copy).
    pub async fn refresh_due(&self, now: i64, max_age_secs: u64) -> Result<(usize, Vec<String>)> {
        let age = i64::try_from(max_age_secs).unwrap_or(i64::MAX);
        let mut done = 0;
        let mut failed = Vec::new();
        for l in store::lists(self.pool()).await? {
            if l.url.is_none() || l.refreshed_at.is_some_and(|t| now - t < age) {
                continue;
            }
            let name = l.name.clone();
            match self.refresh_list(&Actor::System, &l.id, now).await {
                Ok(_) => done += 1,
                Err(e) => failed.push(format!("{name}: {e}")),
            }
        }
        Ok((done, failed))
    }
}

/// Downloads a list with the shared helper (size cap, timeout, no local targets); the reason on
/// failure.
async fn download(m: &Mistborn, url: &str) -> std::result::Result<String, String> {
    crate::download::download_text(url, &m.config().download)
        .await
        .map_err(|e| e.to_string())
}
