//! Firewall metrics over time against the real store (SQLite, and PostgreSQL when configured):
//! counter readings become per-interval deltas (a table replace or a counter going down never
//! gives negative or double counts), buckets and rankings add up, retention drops old samples,
//! and only superusers read them.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::net::IpAddr;

use mistborn_core::firewall::{
    ListHits, Metrics, MetricsSampler, NetworkCount, PortCount, Probe, SourceCount, Unkept,
};
use mistborn_core::{Actor, ErrorKind, Mistborn};

use common::{engines, regular};

const T0: i64 = 1_800_000_000;
const DAY: i64 = 86_400;

fn probe(source: &str, port: u16, packets: u64) -> Probe {
    Probe {
        source: source.parse().unwrap(),
        protocol: "tcp".into(),
        port,
        packets,
    }
}

/// A reading of the table holding these (source, port) counters: the total and the per-port,
/// per-network (/24) and per-source sets add them up.
fn reading(probes: Vec<Probe>, list_packets: u64) -> Metrics {
    let mut ports: BTreeMap<u16, u64> = BTreeMap::new();
    let mut sources: BTreeMap<IpAddr, u64> = BTreeMap::new();
    let mut networks: BTreeMap<ipnet::IpNet, u64> = BTreeMap::new();
    for p in &probes {
        *ports.entry(p.port).or_default() += p.packets;
        *sources.entry(p.source).or_default() += p.packets;
        let net = ipnet::IpNet::new(p.source, 24).unwrap().trunc();
        *networks.entry(net).or_default() += p.packets;
    }
    Metrics {
        total: probes.iter().map(|p| p.packets).sum(),
        top_ports: ports
            .into_iter()
            .map(|(port, packets)| PortCount {
                protocol: "tcp".into(),
                port,
                packets,
                sources: 1,
            })
            .collect(),
        top_sources: sources
            .into_iter()
            .map(|(source, packets)| SourceCount {
                source,
                packets,
                ports: 1,
            })
            .collect(),
        top_networks: networks
            .into_iter()
            .map(|(network, packets)| NetworkCount { network, packets })
            .collect(),
        probes,
        lists: vec![ListHits {
            id: "abc".into(),
            packets: list_packets,
            bytes: list_packets * 60,
        }],
        ..Metrics::default()
    }
}

#[tokio::test]
async fn samples_store_deltas_across_a_reset_with_buckets_rankings_and_retention() {
    for env in engines().await {
        let m = Mistborn::open(env.config()).await.unwrap();
        let fw = m.firewall();
        let mut s = MetricsSampler::new();
        let keep = 7 * DAY;

        // The first reading is the baseline: the table may carry counts from before a restart.
        assert_eq!(
            s.deltas(&reading(vec![probe("203.0.113.9", 22, 40)], 7)),
            None
        );
        // 40 -> 45 packets to tcp/22 from .9; list 7 -> 8.
        let d = s
            .deltas(&reading(vec![probe("203.0.113.9", 22, 45)], 8))
            .unwrap();
        assert_eq!(d.total, 5);
        fw.record_sample(T0, &d, keep).await.unwrap();
        // 45 -> 48, and a new counter (2 to tcp/80 from .7).
        let d = s
            .deltas(&reading(
                vec![probe("203.0.113.9", 22, 48), probe("203.0.113.7", 80, 2)],
                11,
            ))
            .unwrap();
        assert_eq!(d.total, 5);
        assert_eq!(d.lists, vec![("abc".to_string(), 3)]);
        fw.record_sample(T0 + 60, &d, keep).await.unwrap();
        // Counters lost and started over (48 -> 1, 11 -> 0): counted from zero, never negative.
        let d = s
            .deltas(&reading(vec![probe("203.0.113.9", 22, 1)], 0))
            .unwrap();
        assert_eq!(d.total, 1);
        assert!(d.lists.is_empty());
        fw.record_sample(T0 + 3600, &d, keep).await.unwrap();
        // An element timed out and came back: counted from zero.
        let d = s.deltas(&reading(vec![], 0)).unwrap();
        assert_eq!(d.total, 0);
        let d = s
            .deltas(&reading(vec![probe("203.0.113.9", 22, 2)], 0))
            .unwrap();
        assert_eq!(d.total, 2);
        fw.record_sample(T0 + 3660, &d, keep).await.unwrap();

        let h = fw
            .metrics_history(&Actor::System, T0 - 1, 3600, 10)
            .await
            .unwrap();
        assert_eq!(h.total_probes, 5 + 5 + 1 + 2, "{}: {h:?}", env.engine);
        let buckets: Vec<(i64, u64, u64)> = h
            .buckets
            .iter()
            .map(|b| (b.start, b.probes, b.list_hits))
            .collect();
        let b0 = T0 / 3600 * 3600;
        assert_eq!(
            buckets,
            vec![(b0, 10, 4), (b0 + 3600, 3, 0)],
            "{}",
            env.engine
        );
        let ports: Vec<(&str, u64)> = h
            .top_ports
            .iter()
            .map(|c| (c.key.as_str(), c.packets))
            .collect();
        assert_eq!(ports, vec![("tcp/22", 11), ("tcp/80", 2)]);
        assert_eq!(h.top_sources[0].key, "203.0.113.9");
        assert_eq!(h.top_sources[0].packets, 11);
        assert_eq!(h.lists[0].packets, 4);
        // A narrower window and top 1.
        let h = fw
            .metrics_history(&Actor::System, T0 + 3600, 60, 1)
            .await
            .unwrap();
        assert_eq!(h.total_probes, 3);
        assert_eq!(h.top_ports.len(), 1);
        assert_eq!(h.buckets.len(), 2);

        // Retention: a sample 8 days later drops everything older than 7 days.
        let d = s
            .deltas(&reading(vec![probe("203.0.113.9", 22, 3)], 0))
            .unwrap();
        fw.record_sample(T0 + 8 * DAY, &d, keep).await.unwrap();
        let h = fw
            .metrics_history(&Actor::System, 0, 3600, 10)
            .await
            .unwrap();
        assert_eq!(h.total_probes, 1, "{}: {h:?}", env.engine);

        // Bad bucket and a regular user: refused.
        let e = fw
            .metrics_history(&Actor::System, 0, 0, 10)
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
        assert!(e.to_string().contains("bucket"), "{e}");
        let bob = regular(&m, "bob").await;
        let e = fw.metrics_history(&bob, 0, 3600, 10).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Forbidden);
        m.close().await;
    }
}

#[tokio::test]
async fn a_scan_from_many_sources_is_stored_as_the_top_plus_others() {
    for env in engines().await {
        let m = Mistborn::open(env.config()).await.unwrap();
        let mut s = MetricsSampler::new();
        let probes: Vec<Probe> = (1..=200u16)
            .map(|i| probe(&format!("198.51.100.{}", i % 250), 1000 + i, u64::from(i)))
            .collect();
        assert_eq!(s.deltas(&reading(vec![], 0)), None);
        let d = s.deltas(&reading(probes, 0)).unwrap();
        let want: u64 = (1..=200u64).sum();
        assert_eq!(d.total, want);
        assert_eq!(d.sources.len(), 51);
        assert_eq!(d.sources.last().unwrap().0, "*");
        assert_eq!(d.sources.iter().map(|x| x.1).sum::<u64>(), want);
        assert_eq!(d.ports[0], ("tcp/1200".to_string(), 200));
        assert_eq!(d.networks, vec![("198.51.100.0/24".to_string(), want)]);
        m.firewall().record_sample(T0, &d, DAY).await.unwrap();
        // The table's per-source set is full: what it could not keep is counted and stored.
        let mut full = reading(vec![], 0);
        full.total = want + 30;
        full.top_ports = vec![PortCount {
            protocol: "udp".into(),
            port: 9,
            packets: 30,
            sources: 0,
        }];
        full.unkept = Unkept {
            sources: 30,
            probes: 30,
            ..Unkept::default()
        };
        let d = s.deltas(&full).unwrap();
        assert_eq!(d.total, 30);
        assert_eq!(
            d.unkept,
            vec![("probes".to_string(), 30), ("sources".to_string(), 30)]
        );
        m.firewall().record_sample(T0 + 60, &d, DAY).await.unwrap();
        let h = m
            .firewall()
            .metrics_history(&Actor::System, T0, 60, 1000)
            .await
            .unwrap();
        assert_eq!(h.total_probes, want + 30, "{}", env.engine);
        assert_eq!(h.top_sources.len(), 50, "the '*' row is not a source");
        assert_eq!(h.top_networks[0].key, "198.51.100.0/24");
        assert_eq!(h.top_networks[0].packets, want);
        let unkept: Vec<(&str, u64)> = h
            .unkept
            .iter()
            .map(|c| (c.key.as_str(), c.packets))
            .collect();
        assert_eq!(unkept, vec![("probes", 30), ("sources", 30)]);
        m.close().await;
    }
}
