//! A Rust program that embeds `mistborn-core` and runs the same daemon `mistborn serve` runs,
//! without the HTTP API: the data plane is off (`wireguard.backend = "none"`), so it runs
//! unprivileged, and the DNS resolver answers on an unprivileged loopback port.
//!
//! ```text
//! cargo run -p mistborn-examples --bin mistborn-embed -- /tmp/mistborn-embed 127.0.0.1:5353
//! dig @127.0.0.1 -p 5353 home.mistborn
//! ```
//!
//! It prints what runs and what is off and why, adds a DNS deny rule the way any program may
//! (the daemon's resolver applies it at once), and stops in order on Ctrl-C, or right away with
//! `--once`.

use std::net::SocketAddr;
use std::path::PathBuf;

use mistborn_core::config::DataplaneBackend;
use mistborn_core::daemon::{Daemon, DaemonOptions};
use mistborn_core::dns::RuleKind;
use mistborn_core::{Actor, Config, Mistborn};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let once = args.iter().any(|a| a == "--once");
    let mut positional = args.iter().filter(|a| !a.starts_with("--"));
    let data_dir = positional.next().map_or_else(
        || std::env::temp_dir().join("mistborn-embed"),
        PathBuf::from,
    );
    let dns: SocketAddr = positional
        .next()
        .map_or("127.0.0.1:5353", String::as_str)
        .parse()?;

    let mut config = Config {
        data_dir,
        ..Config::default()
    };
    config.wireguard.backend = DataplaneBackend::None;
    config.dns.listen = vec![dns];
    let m = Mistborn::open(config).await?;
    let daemon = Daemon::start(&m, DaemonOptions::default()).await?;
    let status = daemon.status();
    println!("data plane: {}", status.dataplane);
    println!("firewall: {}", status.firewall);
    println!("DNS: {} at {:?}", status.dns, status.dns_addrs);
    println!("proxy: {}", status.proxy);
    println!("change watcher: {}", status.change_watcher);
    println!("jobs: {}", status.jobs.join(", "));

    // Any write, from this program or another process, is in force in the running daemon.
    if !m
        .dns()
        .rules(&Actor::System)
        .await?
        .iter()
        .any(|r| r.name == "ads.example")
    {
        m.dns()
            .add_rule(&Actor::System, RuleKind::Deny, "ads.example")
            .await?;
    }
    println!("ads.example is blocked");

    if !once {
        tokio::signal::ctrl_c().await?;
    }
    daemon.stop().await;
    m.close().await;
    println!("stopped");
    Ok(())
}
