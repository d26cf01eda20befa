//! Serves Mistborn's filtering DNS from list files, for benchmarks and manual tries.
//!
//! ```sh
//! cargo run --release -p mistborn-core --example dns_serve -- \
//!     --list blocklist.txt --hosts local-hosts.txt --listen 127.0.0.1:5305 [--threads 1] [--log memory|off]
//! ```
//! `--hosts` takes `ADDRESS NAME` lines for the local zone (names under the `mistborn` suffix).
//! Prints the list load time and the filter's size, then serves until killed. No upstream: names
//! that are neither local nor blocked are REFUSED, so nothing leaves the machine.
#![allow(clippy::print_stdout)]

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

use mistborn_core::dns::{
    BlockedAnswer, DnsHandler, DnsServer, DnsState, FilterBuilder, LocalHost, LocalZone,
    QueryLogger, parse_list,
};

struct Args {
    lists: Vec<String>,
    hosts: Option<String>,
    listen: SocketAddr,
    threads: usize,
    log: String,
}

fn args() -> Result<Args, String> {
    let mut a = Args {
        lists: Vec::new(),
        hosts: None,
        listen: "127.0.0.1:5305".parse().map_err(|e| format!("{e}"))?,
        threads: 1,
        log: "memory".into(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--list" => a.lists.push(value()?),
            "--hosts" => a.hosts = Some(value()?),
            "--listen" => a.listen = value()?.parse().map_err(|e| format!("--listen: {e}"))?,
            "--threads" => a.threads = value()?.parse().map_err(|e| format!("--threads: {e}"))?,
            "--log" => a.log = value()?,
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(a)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let a = args()?;
    let t0 = Instant::now();
    let mut builder = FilterBuilder::new();
    for path in &a.lists {
        let text = std::fs::read_to_string(path)?;
        let parsed = parse_list(&text);
        println!(
            "list {path}: {} entries, {} invalid lines",
            parsed.entries(),
            parsed.invalid_count
        );
        builder.add_list(path, &parsed);
    }
    let filter = builder.build();
    println!(
        "filter: {} blocked names, {:.1} MiB, built in {} ms",
        filter.blocked_len(),
        filter.heap_bytes() as f64 / 1048576.0,
        t0.elapsed().as_millis()
    );
    let server_host = LocalHost {
        v4: Some("10.15.91.1".parse()?),
        v6: Some("fd15:91::1".parse()?),
    };
    let mut zone = LocalZone::new("mistborn", server_host, &[])?;
    if let Some(path) = &a.hosts {
        for line in std::fs::read_to_string(path)?.lines() {
            let mut words = line.split_whitespace();
            if let (Some(addr), Some(name)) = (words.next(), words.next()) {
                let label = name.trim_end_matches(".mistborn");
                let host = match addr.parse::<IpAddr>()? {
                    IpAddr::V4(v4) => LocalHost {
                        v4: Some(v4),
                        v6: None,
                    },
                    IpAddr::V6(v6) => LocalHost {
                        v4: None,
                        v6: Some(v6),
                    },
                };
                zone.add(label, host)?;
            }
        }
    }

    let rt = if a.threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(a.threads)
            .enable_all()
            .build()?
    };
    rt.block_on(async move {
        let logger = match a.log.as_str() {
            "off" => QueryLogger::counters_only(),
            _ => {
                // Drain the log channel in batches the way the database writer does, minus the SQL.
                let (logger, mut rx) = QueryLogger::channel();
                tokio::spawn(async move {
                    let mut batch = Vec::with_capacity(1024);
                    let mut rows = 0u64;
                    while rx.recv_many(&mut batch, 1024).await > 0 {
                        rows += batch.len() as u64;
                        batch.clear();
                    }
                    rows
                });
                logger
            }
        };
        let state = Arc::new(DnsState::new(
            filter,
            zone,
            None,
            BlockedAnswer::Null,
            60,
            300,
            logger,
        ));
        let server = DnsServer::start(DnsHandler::new(state.clone()), &[a.listen]).await?;
        println!(
            "serving on {:?} (ready in {} ms)",
            server.local_addrs(),
            t0.elapsed().as_millis()
        );
        tokio::signal::ctrl_c().await?;
        println!("counters: {:?}", state.logger().counters().snapshot());
        server.shutdown().await;
        Ok::<_, Box<dyn std::error::Error>>(())
    })
}
