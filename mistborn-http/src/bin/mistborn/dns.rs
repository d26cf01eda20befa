//! `mistborn dns ...`: block lists, rules, the query log and statistics, as the host's operator.

use mistborn_core::dns::{LineError, LogFilter, RuleKind};
use mistborn_core::{Actor, Error, Mistborn, Result};

use crate::cli::{DnsCommand, DnsRuleCommand};
use crate::output::{table, time};

const ME: &Actor = &Actor::System;

fn opt(v: Option<impl ToString>) -> String {
    v.map(|x| x.to_string()).unwrap_or_else(|| "-".into())
}

pub async fn dns(m: &Mistborn, cmd: DnsCommand) -> Result<()> {
    let dns = m.dns();
    match cmd {
        DnsCommand::Lists => {
            let rows: Vec<Vec<String>> = dns
                .lists(ME)
                .await?
                .into_iter()
                .map(|l| {
                    vec![
                        l.name,
                        if l.enabled { "on" } else { "off" }.into(),
                        l.entries.to_string(),
                        l.invalid_lines.to_string(),
                        l.not_for_dns.to_string(),
                        l.updated_at.map(time).unwrap_or_else(|| "-".into()),
                        opt(l.url),
                        opt(l.last_error),
                    ]
                })
                .collect();
            print!(
                "{}",
                table(
                    &[
                        "NAME",
                        "ON",
                        "ENTRIES",
                        "INVALID",
                        "NOT DNS",
                        "UPDATED",
                        "URL",
                        "LAST ERROR"
                    ],
                    &rows
                )
            );
        }
        DnsCommand::Add { name, url, file } => {
            let r = match (url, file) {
                (Some(url), None) => dns.add_list_url(ME, &name, &url).await?,
                (None, Some(path)) => {
                    let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
                    dns.add_list_text(ME, &name, &text).await?
                }
                _ => {
                    return Err(Error::invalid(
                        "list",
                        "give exactly one of --url and --file",
                    ));
                }
            };
            println!(
                "added list '{}': {} entries, {} invalid lines",
                r.list.name, r.list.entries, r.list.invalid_lines
            );
            print_line_errors(&r.invalid, 10);
        }
        DnsCommand::Upload { name, file } => {
            let text = std::fs::read_to_string(&file).map_err(|e| Error::io(&file, e))?;
            let (r, created) = dns.put_list_text(ME, &name, text).await?;
            println!(
                "{} list '{}': {} entries, {} invalid lines, {} not for DNS",
                if created { "added" } else { "replaced" },
                r.list.name,
                r.list.entries,
                r.list.invalid_lines,
                r.list.not_for_dns
            );
            print_line_errors(&r.invalid, 10);
        }
        DnsCommand::Errors { list } => {
            let errors = dns.line_errors(ME, &list).await?;
            let rows: Vec<Vec<String>> = errors
                .into_iter()
                .map(|e| vec![e.line.to_string(), e.reason, e.text])
                .collect();
            print!("{}", table(&["LINE", "REASON", "TEXT"], &rows));
        }
        DnsCommand::Enable { list } => {
            dns.set_enabled(ME, &list, true).await?;
        }
        DnsCommand::Disable { list } => {
            dns.set_enabled(ME, &list, false).await?;
        }
        DnsCommand::Refresh { list } => {
            let r = dns.refresh_list(ME, &list).await?;
            match (r.updated, r.list.last_error) {
                (true, _) => println!("'{}': {} entries", r.list.name, r.list.entries),
                (false, why) => {
                    return Err(Error::invalid(
                        "list",
                        format!("'{}' kept its last good copy: {}", r.list.name, opt(why)),
                    ));
                }
            }
        }
        DnsCommand::Remove { list } => dns.delete_list(ME, &list).await?,
        DnsCommand::Rule(DnsRuleCommand::List) => {
            let rows: Vec<Vec<String>> = dns
                .rules(ME)
                .await?
                .into_iter()
                .map(|r| vec![r.id, r.kind.as_str().into(), r.name])
                .collect();
            print!("{}", table(&["ID", "KIND", "NAME"], &rows));
        }
        DnsCommand::Rule(DnsRuleCommand::Add { kind, name }) => {
            let r = dns.add_rule(ME, kind.parse::<RuleKind>()?, &name).await?;
            println!("added {} rule for '{}' ({})", r.kind.as_str(), r.name, r.id);
            if let Some(w) = r.warning {
                println!("warning: {w}");
            }
        }
        DnsCommand::Rule(DnsRuleCommand::Remove { id }) => dns.delete_rule(ME, &id).await?,
        DnsCommand::Log {
            limit,
            user,
            client,
            blocked,
        } => {
            let f = LogFilter {
                limit: Some(limit),
                user,
                client,
                blocked_only: blocked,
                ..LogFilter::default()
            };
            let rows: Vec<Vec<String>> = dns
                .query_log(ME, &f)
                .await?
                .into_iter()
                .map(|q| {
                    let who = match (q.username, q.peer_name) {
                        (Some(u), Some(p)) => format!("{u}/{p}"),
                        _ => q.client.clone(),
                    };
                    vec![
                        time(q.at_ms / 1000),
                        who,
                        q.name,
                        q.qtype,
                        q.outcome,
                        opt(q.blocked_by),
                        opt(q.answer),
                        format!("{} µs", q.latency_us),
                    ]
                })
                .collect();
            print!(
                "{}",
                table(
                    &[
                        "TIME",
                        "CLIENT",
                        "NAME",
                        "TYPE",
                        "OUTCOME",
                        "BLOCKED BY",
                        "ANSWER",
                        "LATENCY"
                    ],
                    &rows
                )
            );
        }
        DnsCommand::Stats { hours, top } => {
            let now_ms = ::time::OffsetDateTime::now_utc().unix_timestamp() * 1000;
            let s = dns
                .stats(ME, now_ms - i64::from(hours) * 3_600_000, top, 3_600_000)
                .await?;
            println!(
                "{} queries, {} blocked ({:.1} %)",
                s.total,
                s.blocked,
                s.blocked_share * 100.0
            );
            println!(
                "query log: {} rows kept, {} rows lost (writer behind)",
                s.log_rows, s.log_dropped
            );
            for (title, counts) in [
                ("top domains", s.top_domains),
                ("top blocked", s.top_blocked),
                ("top clients", s.top_clients),
            ] {
                println!("\n{title}:");
                let rows: Vec<Vec<String>> = counts
                    .into_iter()
                    .map(|c| vec![c.key, c.count.to_string()])
                    .collect();
                print!("{}", table(&["NAME", "QUERIES"], &rows));
            }
        }
    }
    Ok(())
}

fn print_line_errors(errors: &[LineError], n: usize) {
    for e in errors.iter().take(n) {
        println!("  line {}: {}: {}", e.line, e.reason, e.text);
    }
}
