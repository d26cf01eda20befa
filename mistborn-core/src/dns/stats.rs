//! Statistics kept from the query stream, never computed by scanning the log: per-minute totals
//! and per-hour top counts (domains, blocked domains, clients).
//!
//! The log collector (`super::resolver`) updates an [`Aggregates`] once per batch of queries: the
//! minute totals come from the hot path's atomic counters (so they stay exact even when log rows
//! are dropped), the top counts from the batch's events. The open minutes and hours stay in
//! memory; every second what changed is persisted compactly in the log file (one row per minute,
//! the top [`PERSIST_TOP`] keys per hour and kind; see `super::logstore`). `GET /dns/stats` reads
//! those small tables and lets the in-memory copy override the persisted one for the same minute
//! or hour, so its cost depends on the time window, never on the number of queries.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::log::CounterSnapshot;
use super::types::{Bucket, Count, DnsStats};

/// One minute, in milliseconds.
pub const MINUTE_MS: i64 = 60_000;
/// One hour, in milliseconds.
pub const HOUR_MS: i64 = 3_600_000;
/// Keys persisted per hour and kind (the ranking of a past hour is this deep).
pub const PERSIST_TOP: usize = 200;
/// Distinct keys counted per hour and kind before the rarest half is forgotten.
const TOP_CAPACITY: usize = 8192;
/// Closed minutes and hours kept in memory after they were persisted (the API still reads them
/// from memory, which is cheaper and the same values).
const KEEP_MINUTES: i64 = 120;

/// Queries of one minute by outcome, and log rows lost in it.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct MinuteTotals {
    /// Every query answered.
    pub total: i64,
    /// Blocked.
    pub blocked: i64,
    /// Answered from the local zone.
    pub local: i64,
    /// Forwarded (or from the upstream cache).
    pub forwarded: i64,
    /// Failed or refused.
    pub failed: i64,
    /// Log rows dropped (the writer fell behind).
    pub dropped: i64,
}

impl MinuteTotals {
    /// What the hot path's counters gained from `before` to `now`.
    pub fn delta(now: &CounterSnapshot, before: &CounterSnapshot) -> Self {
        let d = |now: u64, before: u64| now.saturating_sub(before) as i64;
        Self {
            total: d(now.total, before.total),
            blocked: d(now.blocked, before.blocked),
            local: d(now.local, before.local),
            forwarded: d(now.forwarded, before.forwarded),
            failed: d(now.failed, before.failed),
            dropped: d(now.log_dropped, before.log_dropped),
        }
    }

    fn add(&mut self, o: &MinuteTotals) {
        self.total += o.total;
        self.blocked += o.blocked;
        self.local += o.local;
        self.forwarded += o.forwarded;
        self.failed += o.failed;
        self.dropped += o.dropped;
    }
}

/// Which ranking a top count belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TopKind {
    /// Every name asked for.
    Domain,
    /// Blocked names.
    Blocked,
    /// Clients ("user/profile", or the address).
    Client,
}

impl TopKind {
    /// Every kind.
    pub const ALL: [TopKind; 3] = [TopKind::Domain, TopKind::Blocked, TopKind::Client];

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            TopKind::Domain => "domain",
            TopKind::Blocked => "blocked",
            TopKind::Client => "client",
        }
    }

    /// From the stored name.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// Counts per key in bounded memory. When [`TOP_CAPACITY`] keys are held, the rarer half is
/// forgotten: a key that comes back starts again from 1, so counts are exact for keys that were
/// never evicted and an undercount otherwise. A flood of distinct names (each seen once) cannot
/// push out a name asked often.
#[derive(Debug, Default, Clone)]
pub struct TopCounter {
    counts: HashMap<Box<str>, i64>,
}

impl TopCounter {
    /// Adds `n` to `key`.
    pub fn add(&mut self, key: &str, n: i64) {
        if let Some(c) = self.counts.get_mut(key) {
            *c += n;
            return;
        }
        if self.counts.len() >= TOP_CAPACITY {
            self.shrink();
        }
        self.counts.insert(key.into(), n);
    }

    fn shrink(&mut self) {
        let mut v: Vec<i64> = self.counts.values().copied().collect();
        let mid = v.len() / 2;
        let (_, median, _) = v.select_nth_unstable(mid);
        let median = *median;
        self.counts.retain(|_, c| *c > median);
    }

    /// The `k` largest, count descending then key ascending.
    pub fn top(&self, k: usize) -> Vec<(String, i64)> {
        let mut v: Vec<(&str, i64)> = self.counts.iter().map(|(k, c)| (&**k, *c)).collect();
        v.sort_unstable_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
        v.truncate(k);
        v.into_iter().map(|(k, c)| (k.to_string(), c)).collect()
    }
}

/// The three rankings of one hour.
#[derive(Debug, Default, Clone)]
pub struct HourTops {
    /// Names asked for.
    pub domain: TopCounter,
    /// Blocked names.
    pub blocked: TopCounter,
    /// Clients.
    pub client: TopCounter,
}

impl HourTops {
    /// The counter of `kind`.
    pub fn get(&self, kind: TopKind) -> &TopCounter {
        match kind {
            TopKind::Domain => &self.domain,
            TopKind::Blocked => &self.blocked,
            TopKind::Client => &self.client,
        }
    }
}

/// One persisted ranking row: kind, key, count.
pub type TopRow = (TopKind, String, i64);

/// What changed since the last persist.
#[derive(Debug, Default)]
pub struct Dirty {
    /// Minutes with their full (not incremental) totals.
    pub minutes: Vec<(i64, MinuteTotals)>,
    /// Hours with their top [`PERSIST_TOP`] keys per kind (replacing what is stored).
    pub hours: Vec<(i64, Vec<TopRow>)>,
}

/// The aggregates of the recent minutes and hours, in memory.
#[derive(Debug, Default)]
pub struct Aggregates {
    minutes: BTreeMap<i64, MinuteTotals>,
    hours: BTreeMap<i64, HourTops>,
    dirty_minutes: BTreeSet<i64>,
    dirty_hours: BTreeSet<i64>,
}

fn floor(t: i64, unit: i64) -> i64 {
    t.div_euclid(unit) * unit
}

impl Aggregates {
    /// Adds `delta` to the minute of `now_ms`.
    pub fn add_minute(&mut self, now_ms: i64, delta: MinuteTotals) {
        if delta != MinuteTotals::default() {
            let minute = floor(now_ms, MINUTE_MS);
            self.minutes.entry(minute).or_default().add(&delta);
            self.dirty_minutes.insert(minute);
        }
    }

    /// Counts one query in the rankings of its hour.
    pub fn add_query(&mut self, at_ms: i64, name: &str, blocked: bool, client: &str) {
        let hour = floor(at_ms, HOUR_MS);
        let h = self.hours.entry(hour).or_default();
        h.domain.add(name, 1);
        if blocked {
            h.blocked.add(name, 1);
        }
        h.client.add(client, 1);
        self.dirty_hours.insert(hour);
    }

    /// Takes what changed since the last call and forgets what is old enough to be read from
    /// the log file only.
    pub fn take_dirty(&mut self, now_ms: i64) -> Dirty {
        let minutes = std::mem::take(&mut self.dirty_minutes)
            .into_iter()
            .filter_map(|m| self.minutes.get(&m).map(|t| (m, *t)))
            .collect();
        let hours = std::mem::take(&mut self.dirty_hours)
            .into_iter()
            .filter_map(|h| {
                let tops = self.hours.get(&h)?;
                let rows = TopKind::ALL
                    .into_iter()
                    .flat_map(|k| {
                        tops.get(k)
                            .top(PERSIST_TOP)
                            .into_iter()
                            .map(move |(key, n)| (k, key, n))
                    })
                    .collect();
                Some((h, rows))
            })
            .collect();
        let keep_minutes = floor(now_ms, MINUTE_MS) - KEEP_MINUTES * MINUTE_MS;
        self.minutes.retain(|&m, _| m >= keep_minutes);
        // The previous hour stays: its ranking is still being read often.
        let keep_hours = floor(now_ms, HOUR_MS) - HOUR_MS;
        self.hours.retain(|&h, _| h >= keep_hours);
        Dirty { minutes, hours }
    }

    /// Puts back what a failed persist took, so the next one retries it.
    pub fn restore_dirty(&mut self, d: &Dirty) {
        self.dirty_minutes.extend(d.minutes.iter().map(|(m, _)| *m));
        self.dirty_hours.extend(d.hours.iter().map(|(h, _)| *h));
    }

    /// Minutes and hours held in memory from `since_ms` on, for [`compute`].
    pub fn window(&self, since_ms: i64) -> Window {
        let since_minute = floor(since_ms, MINUTE_MS);
        let since_hour = floor(since_ms, HOUR_MS);
        Window {
            minutes: self
                .minutes
                .range(since_minute..)
                .map(|(m, t)| (*m, *t))
                .collect(),
            hours: self
                .hours
                .range(since_hour..)
                .map(|(h, t)| (*h, t.clone()))
                .collect(),
        }
    }
}

/// Minutes and hourly rankings of a time window (from the log file, or from memory).
#[derive(Debug, Default)]
pub struct Window {
    /// Minute start to totals.
    pub minutes: BTreeMap<i64, MinuteTotals>,
    /// Hour start to rankings.
    pub hours: BTreeMap<i64, HourTops>,
}

/// The statistics of `since_ms` on: `stored` (from the log file) overridden by `live` (from
/// memory) wherever both have the same minute or hour. Totals count whole minutes from the one
/// holding `since_ms`; rankings count whole hours from the one holding it.
pub fn compute(stored: Window, live: Window, top: usize, bucket_ms: i64) -> DnsStats {
    let mut minutes = stored.minutes;
    minutes.extend(live.minutes);
    let mut hours = stored.hours;
    hours.extend(live.hours);

    let mut sum = MinuteTotals::default();
    let mut buckets: BTreeMap<i64, (i64, i64)> = BTreeMap::new();
    for (m, t) in &minutes {
        sum.add(t);
        let b = buckets.entry(floor(*m, bucket_ms)).or_default();
        b.0 += t.total;
        b.1 += t.blocked;
    }
    let ranking = |kind: TopKind| {
        let mut merged: HashMap<&str, i64> = HashMap::new();
        for h in hours.values() {
            for (k, c) in &h.get(kind).counts {
                *merged.entry(k).or_default() += c;
            }
        }
        let mut v: Vec<(&str, i64)> = merged.into_iter().collect();
        v.sort_unstable_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
        v.into_iter()
            .take(top)
            .map(|(k, c)| Count {
                key: k.to_string(),
                count: c,
            })
            .collect()
    };
    DnsStats {
        total: sum.total,
        blocked: sum.blocked,
        blocked_share: if sum.total == 0 {
            0.0
        } else {
            sum.blocked as f64 / sum.total as f64
        },
        local: sum.local,
        forwarded: sum.forwarded,
        failed: sum.failed,
        log_dropped: sum.dropped,
        log_rows: 0,
        top_domains: ranking(TopKind::Domain),
        top_blocked: ranking(TopKind::Blocked),
        top_clients: ranking(TopKind::Client),
        over_time: buckets
            .into_iter()
            .map(|(start_ms, (total, blocked))| Bucket {
                start_ms,
                total,
                blocked,
            })
            .collect(),
    }
}

impl Window {
    /// Adds one persisted ranking row.
    pub fn add_top(&mut self, hour: i64, kind: TopKind, key: &str, count: i64) {
        let h = self.hours.entry(hour).or_default();
        let c = match kind {
            TopKind::Domain => &mut h.domain,
            TopKind::Blocked => &mut h.blocked,
            TopKind::Client => &mut h.client,
        };
        c.counts.insert(key.into(), count);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn snap(total: u64, blocked: u64, dropped: u64) -> CounterSnapshot {
        CounterSnapshot {
            total,
            blocked,
            local: 0,
            forwarded: total - blocked,
            failed: 0,
            log_dropped: dropped,
        }
    }

    #[test]
    fn minutes_take_counter_deltas_and_live_overrides_stored() {
        let mut a = Aggregates::default();
        let mut last = CounterSnapshot::default();
        for (at, c) in [
            (61_000, snap(5, 2, 0)),
            (62_000, snap(9, 3, 1)),
            (125_000, snap(10, 3, 1)),
        ] {
            a.add_minute(at, MinuteTotals::delta(&c, &last));
            last = c;
        }
        a.add_query(61_000, "ads.test", true, "bob/phone");
        a.add_query(61_500, "ads.test", true, "bob/phone");
        a.add_query(62_000, "ok.test", false, "127.0.0.9");
        let d = a.take_dirty(125_000);
        assert_eq!(d.minutes.len(), 2);
        assert_eq!(d.minutes[0].1.total, 9);
        assert_eq!(d.minutes[0].1.dropped, 1);
        assert_eq!(d.hours.len(), 1);
        assert!(a.take_dirty(125_000).minutes.is_empty(), "taken once");

        // The stored copy of minute 60000 is stale: memory wins.
        let mut stored = Window::default();
        stored.minutes.insert(
            0,
            MinuteTotals {
                total: 100,
                blocked: 1,
                ..Default::default()
            },
        );
        stored.minutes.insert(
            60_000,
            MinuteTotals {
                total: 1,
                ..Default::default()
            },
        );
        stored.add_top(0, TopKind::Domain, "old.test", 50);
        let s = compute(stored, a.window(0), 10, 60_000);
        assert_eq!((s.total, s.blocked, s.log_dropped), (110, 4, 1));
        assert_eq!(s.over_time.len(), 3);
        assert_eq!(s.top_domains[0].key, "ads.test", "memory overrides hour 0");
        assert_eq!(s.top_blocked[0].count, 2);
        assert_eq!(s.top_clients[0].key, "bob/phone");
    }

    #[test]
    fn a_flood_of_distinct_names_keeps_the_frequent_one() {
        let mut t = TopCounter::default();
        for _ in 0..50 {
            t.add("often.test", 1);
        }
        for i in 0..100_000 {
            t.add(&format!("n{i}.test"), 1);
        }
        assert!(t.counts.len() <= TOP_CAPACITY);
        assert_eq!(t.top(1), vec![("often.test".to_string(), 50)]);
    }
}
