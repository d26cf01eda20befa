//! Probe and Coppercloud hit counts over time. The nft counters are cumulative (a full replace
//! carries them over, see [`ruleset::Carry`](super::ruleset::Carry)), so a [`MetricsSampler`]
//! turns successive readings into per-interval deltas and [`Firewall::record_sample`] stores
//! them in `firewall_samples`. A counter that went down (it was lost and started over) or a new
//! one counts from zero, so a reset never gives negative counts; the first reading after a start
//! is only the baseline, so the counts a restarted daemon finds carried in the table are never
//! stored twice. Per interval the busiest [`SAMPLE_TOP`] ports, source networks and sources are
//! kept and the rest summed under key `*`: totals stay exact (the total comes from the table's
//! own counter, not from the bounded per-source sets) while a scan from thousands of sources
//! stays a bounded number of rows. What the table's full sets could not keep is stored too.
//!
//! The samples are not part of backups: they are bulky, derived from the kernel's counters and
//! expire on their own (like the DNS query log).

use std::collections::HashMap;
use std::net::IpAddr;

use ipnet::IpNet;

use serde::{Deserialize, Serialize};
use sqlx::Row;

use super::lists::Firewall;
use super::metrics::Metrics;
use crate::actor::Actor;
use crate::error::{Error, Result};

/// Ports and sources stored per interval; the rest is summed under `*`.
pub const SAMPLE_TOP: usize = 50;

/// How long samples are kept unless the caller says otherwise (30 days).
pub const DEFAULT_RETENTION_SECS: i64 = 30 * 86_400;

/// The key under which the ports or sources beyond [`SAMPLE_TOP`] are summed.
pub const OTHERS: &str = "*";

/// The packets counted in one interval.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SampleDeltas {
    /// All probe packets.
    pub total: u64,
    /// Per `protocol/port` (e.g. `tcp/22`), busiest first, at most [`SAMPLE_TOP`] + `*`.
    pub ports: Vec<(String, u64)>,
    /// Per source network (e.g. `198.51.100.0/24`), busiest first, at most [`SAMPLE_TOP`] + `*`.
    pub networks: Vec<(String, u64)>,
    /// Per source address, busiest first, at most [`SAMPLE_TOP`] + `*`.
    pub sources: Vec<(String, u64)>,
    /// Probe packets the table could not keep per `networks`, `sources` or `probes` (pairs).
    pub unkept: Vec<(String, u64)>,
    /// Per Coppercloud list id.
    pub lists: Vec<(String, u64)>,
}

/// Remembers the last counter values to turn cumulative readings into deltas. Bounded like the
/// table's sets it mirrors (ports, networks, sources).
#[derive(Debug, Default)]
pub struct MetricsSampler {
    started: bool,
    counters: HashMap<String, u64>,
    ports: HashMap<(String, u16), u64>,
    networks: HashMap<IpNet, u64>,
    sources: HashMap<IpAddr, u64>,
}

/// The deltas of `now` against `last` (keys gone from `now` are forgotten: an expired element
/// that comes back counts from zero), keyed by `show`.
fn deltas_of<K: Eq + std::hash::Hash + Clone>(
    last: &mut HashMap<K, u64>,
    now: impl Iterator<Item = (K, u64)>,
    show: impl Fn(&K) -> String,
) -> HashMap<String, u64> {
    let mut seen = HashMap::with_capacity(last.len());
    let mut out = HashMap::new();
    for (k, packets) in now {
        let d = delta(last.get(&k).copied(), packets);
        if d > 0 {
            *out.entry(show(&k)).or_default() += d;
        }
        seen.insert(k, packets);
    }
    *last = seen;
    out
}

/// The increase of a cumulative counter: from zero when it went down (it was reset).
fn delta(previous: Option<u64>, now: u64) -> u64 {
    match previous {
        Some(p) if now >= p => now - p,
        _ => now,
    }
}

fn top_with_others(counts: HashMap<String, u64>) -> Vec<(String, u64)> {
    let mut v: Vec<(String, u64)> = counts.into_iter().filter(|(_, n)| *n > 0).collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    if v.len() > SAMPLE_TOP {
        let rest: u64 = v[SAMPLE_TOP..].iter().map(|(_, n)| n).sum();
        v.truncate(SAMPLE_TOP);
        v.push((OTHERS.to_string(), rest));
    }
    v
}

impl MetricsSampler {
    /// A sampler with no previous reading.
    pub fn new() -> Self {
        Self::default()
    }

    /// The deltas since the previous reading; `None` for the first one, which only sets the
    /// baseline (the table may hold counts from before this process started, already stored).
    /// `m` must hold every port, network and source (read with no top limit).
    pub fn deltas(&mut self, m: &Metrics) -> Option<SampleDeltas> {
        let mut counters: Vec<(String, u64)> = vec![
            ("total".into(), m.total),
            ("unkept:networks".into(), m.unkept.networks),
            ("unkept:sources".into(), m.unkept.sources),
            ("unkept:probes".into(), m.unkept.probes),
        ];
        counters.extend(
            m.lists
                .iter()
                .map(|l| (format!("list:{}", l.id), l.packets)),
        );
        let c = deltas_of(&mut self.counters, counters.into_iter(), Clone::clone);
        let ports = deltas_of(
            &mut self.ports,
            m.top_ports
                .iter()
                .map(|p| ((p.protocol.clone(), p.port), p.packets)),
            |(proto, port)| format!("{proto}/{port}"),
        );
        let networks = deltas_of(
            &mut self.networks,
            m.top_networks.iter().map(|n| (n.network, n.packets)),
            IpNet::to_string,
        );
        let sources = deltas_of(
            &mut self.sources,
            m.top_sources.iter().map(|s| (s.source, s.packets)),
            IpAddr::to_string,
        );
        if !std::mem::replace(&mut self.started, true) {
            return None;
        }
        let prefixed = |prefix: &str| {
            let mut v: Vec<(String, u64)> = c
                .iter()
                .filter_map(|(k, n)| Some((k.strip_prefix(prefix)?.to_string(), *n)))
                .collect();
            v.sort();
            v
        };
        Some(SampleDeltas {
            total: c.get("total").copied().unwrap_or(0),
            ports: top_with_others(ports),
            networks: top_with_others(networks),
            sources: top_with_others(sources),
            unkept: prefixed("unkept:"),
            lists: prefixed("list:"),
        })
    }
}

/// Probes and list hits in one time bucket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryBucket {
    /// Bucket start (Unix seconds).
    pub start: i64,
    /// Probe packets.
    pub probes: u64,
    /// Coppercloud list hits.
    pub list_hits: u64,
}

/// A key ranked over a window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryCount {
    /// `protocol/port`, source address, or list id.
    pub key: String,
    /// Packets in the window.
    pub packets: u64,
}

/// Probe and hit counts since a time, in buckets, with the top keys over the whole window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetricsHistory {
    /// Window start (Unix seconds).
    pub since: i64,
    /// Bucket width (seconds).
    pub bucket_secs: i64,
    /// Probe packets in the window.
    pub total_probes: u64,
    /// Buckets with samples, oldest first.
    pub buckets: Vec<HistoryBucket>,
    /// Most probed ports (`protocol/port`), most packets first.
    pub top_ports: Vec<HistoryCount>,
    /// Most active source networks, most packets first.
    pub top_networks: Vec<HistoryCount>,
    /// Most active sources, most packets first.
    pub top_sources: Vec<HistoryCount>,
    /// Probe packets the table's full sets could not keep, per `networks`, `sources` and
    /// `probes` (source and port pairs); they are in the totals and per port all the same.
    pub unkept: Vec<HistoryCount>,
    /// Hits per Coppercloud list id.
    pub lists: Vec<HistoryCount>,
}

fn count(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

fn stored(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

impl Firewall<'_> {
    /// Stores one interval's deltas, ending at `now`, and drops samples older than
    /// `retention_secs`. Called by the daemon's sampling schedule (no actor: it is the system).
    pub async fn record_sample(
        &self,
        now: i64,
        d: &SampleDeltas,
        retention_secs: i64,
    ) -> Result<()> {
        let pool = self.m.store().pool();
        let mut rows: Vec<(&str, &str, u64)> = vec![("total", "", d.total)];
        rows.extend(d.ports.iter().map(|(k, n)| ("port", k.as_str(), *n)));
        rows.extend(d.networks.iter().map(|(k, n)| ("network", k.as_str(), *n)));
        rows.extend(d.sources.iter().map(|(k, n)| ("source", k.as_str(), *n)));
        rows.extend(d.unkept.iter().map(|(k, n)| ("unkept", k.as_str(), *n)));
        rows.extend(d.lists.iter().map(|(k, n)| ("list", k.as_str(), *n)));
        let mut tx = pool.begin().await?;
        for (kind, key, n) in rows {
            sqlx::query(
                "INSERT INTO firewall_samples (at, kind, key, packets) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (at, kind, key) DO UPDATE SET packets = firewall_samples.packets + excluded.packets",
            )
            .bind(now)
            .bind(kind)
            .bind(key)
            .bind(stored(n))
            .execute(&mut *tx)
            .await?;
        }
        sqlx::query("DELETE FROM firewall_samples WHERE at < $1")
            .bind(now.saturating_sub(retention_secs.max(0)))
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Probe and hit counts since `since` (Unix seconds) in buckets of `bucket_secs`, with the
    /// top `top` ports and sources over the window (superusers). Rankings add up each interval's
    /// busiest [`SAMPLE_TOP`]; what fell into `*` is counted in the totals only.
    pub async fn metrics_history(
        &self,
        actor: &Actor,
        since: i64,
        bucket_secs: i64,
        top: usize,
    ) -> Result<MetricsHistory> {
        actor.require_superuser("reading firewall metrics")?;
        if !(1..=366 * 86_400).contains(&bucket_secs) {
            return Err(Error::invalid(
                "bucket",
                format!("{bucket_secs} is not 1 second to 366 days"),
            ));
        }
        let pool = self.m.store().pool();
        let top = i64::try_from(top.clamp(1, 1000)).unwrap_or(1000);
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT (at / {bucket_secs}) * {bucket_secs} AS b, \
             CAST(SUM(CASE WHEN kind = 'total' THEN packets ELSE 0 END) AS BIGINT) AS p, \
             CAST(SUM(CASE WHEN kind = 'list' THEN packets ELSE 0 END) AS BIGINT) AS l \
             FROM firewall_samples WHERE at >= $1 AND kind IN ('total', 'list') GROUP BY b ORDER BY b"
        )))
        .bind(since)
        .fetch_all(pool)
        .await?;
        let buckets = rows
            .iter()
            .map(|r| {
                Ok(HistoryBucket {
                    start: r.try_get("b")?,
                    probes: count(r.try_get("p")?),
                    list_hits: count(r.try_get("l")?),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let ranked = |kind: &'static str, limit: i64| async move {
            let rows = sqlx::query(
                "SELECT key, CAST(SUM(packets) AS BIGINT) AS n FROM firewall_samples \
                 WHERE kind = $1 AND at >= $2 AND key <> '*' GROUP BY key ORDER BY n DESC, key LIMIT $3",
            )
            .bind(kind)
            .bind(since)
            .bind(limit)
            .fetch_all(pool)
            .await?;
            rows.iter()
                .map(|r| {
                    Ok(HistoryCount {
                        key: r.try_get("key")?,
                        packets: count(r.try_get("n")?),
                    })
                })
                .collect::<Result<Vec<_>>>()
        };
        Ok(MetricsHistory {
            since,
            bucket_secs,
            total_probes: buckets.iter().map(|b| b.probes).sum(),
            top_ports: ranked("port", top).await?,
            top_networks: ranked("network", top).await?,
            top_sources: ranked("source", top).await?,
            unkept: ranked("unkept", i64::MAX).await?,
            lists: ranked("list", i64::MAX).await?,
            buckets,
        })
    }
}
