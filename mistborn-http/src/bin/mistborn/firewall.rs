//! `mistborn firewall ...`: the policy, probe metrics, client-to-client and Coppercloud lists, as
//! the host's operator. The live table is read where this command runs: run it as root in the
//! daemon's network namespace to see it.

use mistborn_core::firewall::{CopperList, ListUpdate, NewList, PolicyView, raw};
use mistborn_core::peers::PeerUpdate;
use mistborn_core::{Actor, Error, Mistborn, Result};

use crate::cli::{CopperListCommand, FirewallCommand};
use crate::output::{table, time};

const ME: &Actor = &Actor::System;

fn now() -> i64 {
    ::time::OffsetDateTime::now_utc().unix_timestamp()
}

fn opt(v: Option<impl ToString>) -> String {
    v.map(|x| x.to_string()).unwrap_or_else(|| "-".into())
}

fn join<T: ToString>(v: &[T]) -> String {
    if v.is_empty() {
        return "-".into();
    }
    v.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

fn show_list(l: &CopperList) {
    println!("id:           {}", l.id);
    println!("name:         {}", l.name);
    println!("mode:         {}", l.mode.as_str());
    println!("enabled:      {}", if l.enabled { "yes" } else { "no" });
    println!("entries:      {}", l.entries);
    println!("url:          {}", opt(l.url.as_ref()));
    println!("refreshed at: {}", opt(l.refreshed_at.map(time)));
    println!("last error:   {}", opt(l.last_error.as_ref()));
}

/// Runs a blocking nft read off the async threads.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::Firewall(format!("reading the table: {e}")))?
}

pub async fn firewall(m: &Mistborn, cmd: FirewallCommand) -> Result<()> {
    let fw = m.firewall();
    match cmd {
        FirewallCommand::Policy => {
            let p = PolicyView::desired(m, ME, now()).await?;
            println!("table:              {}", p.table);
            println!("tunnel interface:   {}", p.tunnel_interface);
            println!("external interface: {}", opt(p.external_interface));
            println!("WireGuard port:     udp/{}", p.wireguard_port);
            println!("redirected ports:   {}", join(&p.redirect_ports));
            println!(
                "SSH:                tcp/{} from the tunnel and {}",
                p.ssh_port,
                opt(p.admin_source)
            );
            println!("web ports (tunnel): {}", join(&p.web_ports));
            println!("container bridges:  {}", join(&p.container_bridges));
            println!("MFA pending:        {}", join(&p.mfa_pending));
            println!("client-to-client:   {}", join(&p.client_to_client));
            let rows: Vec<Vec<String>> = p
                .lists
                .iter()
                .map(|l| {
                    vec![
                        l.id.clone(),
                        l.mode.clone(),
                        l.ranges_v4.to_string(),
                        l.ranges_v6.to_string(),
                    ]
                })
                .collect();
            println!("Coppercloud lists in force:");
            print!(
                "{}",
                table(&["ID", "MODE", "V4 RANGES", "V6 RANGES"], &rows)
            );
            let f = raw::forwarding();
            println!(
                "IP forwarding here: IPv4 {}, IPv6 {}",
                if f.ipv4 { "on" } else { "off" },
                if f.ipv6 { "on" } else { "off" }
            );
            match blocking(raw::table_text).await {
                Ok(Some(_)) => println!("live table here: present"),
                Ok(None) => println!(
                    "live table here: absent (is `mistborn serve` running in this network namespace?)"
                ),
                Err(e) => println!("live table here: unknown ({e})"),
            }
        }
        FirewallCommand::Metrics {
            top,
            history,
            hours,
            bucket_minutes,
        } => {
            if history {
                let h = fw
                    .metrics_history(
                        ME,
                        now() - i64::from(hours) * 3600,
                        i64::from(bucket_minutes) * 60,
                        top,
                    )
                    .await?;
                println!("{} probe packets in the last {hours} h", h.total_probes);
                let rows: Vec<Vec<String>> = h
                    .buckets
                    .iter()
                    .map(|b| vec![time(b.start), b.probes.to_string(), b.list_hits.to_string()])
                    .collect();
                print!("{}", table(&["FROM", "PROBES", "LIST HITS"], &rows));
                for (title, head, counts) in [
                    ("top ports", "PORT", &h.top_ports),
                    ("top networks", "NETWORK", &h.top_networks),
                    ("top sources", "SOURCE", &h.top_sources),
                    ("not kept (sets full)", "PER", &h.unkept),
                    ("Coppercloud hits", "LIST", &h.lists),
                ] {
                    println!("\n{title}:");
                    let rows: Vec<Vec<String>> = counts
                        .iter()
                        .map(|c| vec![c.key.clone(), c.packets.to_string()])
                        .collect();
                    print!("{}", table(&[head, "PACKETS"], &rows));
                }
                return Ok(());
            }
            let Some(live) = blocking(move || {
                raw::table_text()?.map(|_| raw::metrics(top)).transpose()
            })
            .await
            .map_err(|e| {
                Error::Firewall(format!(
                    "{e} (the live counters need root in the daemon's network namespace; --history reads the stored samples)"
                ))
            })?
            else {
                return Err(Error::Firewall(
                    "no inet mistborn table in this network namespace (is `mistborn serve` running here?); --history reads the stored samples".into(),
                ));
            };
            println!(
                "{} probe packets (not kept per network: {}, per source: {}, per source and port: {})\n",
                live.total, live.unkept.networks, live.unkept.sources, live.unkept.probes
            );
            println!("top ports:");
            let rows: Vec<Vec<String>> = live
                .top_ports
                .iter()
                .map(|p| {
                    vec![
                        format!("{}/{}", p.protocol, p.port),
                        p.packets.to_string(),
                        p.sources.to_string(),
                    ]
                })
                .collect();
            print!("{}", table(&["PORT", "PACKETS", "SOURCES"], &rows));
            println!("\ntop networks:");
            let rows: Vec<Vec<String>> = live
                .top_networks
                .iter()
                .map(|n| vec![n.network.to_string(), n.packets.to_string()])
                .collect();
            print!("{}", table(&["NETWORK", "PACKETS"], &rows));
            println!("\ntop sources:");
            let rows: Vec<Vec<String>> = live
                .top_sources
                .iter()
                .map(|s| {
                    vec![
                        s.source.to_string(),
                        s.packets.to_string(),
                        s.ports.to_string(),
                    ]
                })
                .collect();
            print!("{}", table(&["SOURCE", "PACKETS", "PORTS"], &rows));
            println!("\nCoppercloud hits:");
            let rows: Vec<Vec<String>> = live
                .lists
                .iter()
                .map(|l| vec![l.id.clone(), l.packets.to_string(), l.bytes.to_string()])
                .collect();
            print!("{}", table(&["LIST", "PACKETS", "BYTES"], &rows));
        }
        FirewallCommand::C2c {
            profile,
            state,
            user,
        } => {
            let p = crate::peers::find(m, &profile, user.as_deref()).await?;
            let on = state == "on";
            let p = m
                .peers()
                .update(
                    ME,
                    p.id.as_str(),
                    PeerUpdate {
                        client_to_client: Some(on),
                        ..PeerUpdate::default()
                    },
                )
                .await?;
            println!(
                "client-to-client {} for profile '{}' of '{}' ({}, {})",
                if p.client_to_client { "on" } else { "off" },
                p.name,
                p.username,
                p.address_v4,
                p.address_v6
            );
        }
        FirewallCommand::Lists => {
            let rows: Vec<Vec<String>> = fw
                .lists(ME)
                .await?
                .into_iter()
                .map(|l| {
                    vec![
                        l.id,
                        l.name,
                        l.mode.as_str().into(),
                        if l.enabled { "on" } else { "off" }.into(),
                        l.entries.to_string(),
                        opt(l.refreshed_at.map(time)),
                        opt(l.url),
                        opt(l.last_error),
                    ]
                })
                .collect();
            print!(
                "{}",
                table(
                    &[
                        "ID",
                        "NAME",
                        "MODE",
                        "ON",
                        "ENTRIES",
                        "REFRESHED",
                        "URL",
                        "LAST ERROR"
                    ],
                    &rows
                )
            );
        }
        FirewallCommand::List(CopperListCommand::Add {
            name,
            url,
            file,
            mode,
        }) => {
            let content = file
                .map(|path| std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e)))
                .transpose()?;
            let l = fw
                .add_list(
                    ME,
                    NewList {
                        name,
                        mode: mode.parse()?,
                        url,
                        content,
                    },
                    now(),
                )
                .await?;
            println!(
                "added {} list '{}' ({}): {} entries",
                l.mode.as_str(),
                l.name,
                l.id,
                l.entries
            );
        }
        FirewallCommand::List(CopperListCommand::Set {
            key,
            name,
            mode,
            enabled,
            url,
            file,
        }) => {
            let content = file
                .map(|path| std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e)))
                .transpose()?;
            let update = ListUpdate {
                name,
                mode: mode.as_deref().map(str::parse).transpose()?,
                enabled: enabled.map(|e| e == "on"),
                url,
                content,
            };
            show_list(&fw.update_list(ME, &key, update, now()).await?);
        }
        FirewallCommand::List(CopperListCommand::Rm { key }) => {
            let l = fw.list(ME, &key).await?;
            fw.delete_list(ME, &l.id).await?;
            println!("deleted list '{}' ({})", l.name, l.id);
        }
        FirewallCommand::List(CopperListCommand::Refresh { key }) => {
            let r = fw.refresh_list(ME, &key, now()).await?;
            println!("'{}': {} entries", r.list.name, r.list.entries);
        }
        FirewallCommand::List(CopperListCommand::Show { key }) => {
            show_list(&fw.list(ME, &key).await?)
        }
    }
    Ok(())
}
