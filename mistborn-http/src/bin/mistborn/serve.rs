//! `mistborn serve` and `mistborn init`: open (and on first start initialise) Mistborn, start the
//! core daemon, serve the API until SIGINT/SIGTERM, then stop the daemon in order.

use std::net::SocketAddr;

use mistborn_core::daemon::{Daemon, DaemonOptions, DaemonStatus, InterfaceOnStop};
use mistborn_core::firewall::ForwardingStatus;
use mistborn_core::{Config, Error, FirstStart, Mistborn, Result};
use mistborn_http::AppState;
use tokio::net::TcpListener;
use tokio::task::JoinSet;

fn report_first_start(first: &FirstStart) {
    println!(
        "first start: created the superuser 'admin'; its password is in {} (mode 0600)",
        first.admin_password_file.display()
    );
}

fn report_forwarding(f: &ForwardingStatus) {
    let on_off = |b: bool| if b { "on" } else { "OFF" };
    let mut line = format!(
        "IP forwarding: IPv4 {}, IPv6 {}",
        on_off(f.ipv4),
        on_off(f.ipv6)
    );
    if !f.accept_ra_raised.is_empty() {
        line.push_str(&format!(
            " (accept_ra 1 -> 2 on {} to keep IPv6 router advertisements)",
            f.accept_ra_raised.join(", ")
        ));
    }
    if let Some(r) = &f.reason {
        line.push_str(&format!(": {r}"));
    }
    println!("{line}");
}

pub async fn serve(config: Config, listen: Option<SocketAddr>) -> Result<()> {
    // Installed before anything starts: a signal during start-up then waits for it to finish
    // instead of killing the process outright (which left a managed Caddy running).
    let stop_signal = stop_signal()?;
    let addr = listen.unwrap_or(config.http_listen);
    let (m, first) = Mistborn::open_reporting(config).await?;
    if let Some(first) = &first {
        report_first_start(first);
    }
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|e| Error::Config(format!("cannot listen on {addr}: {e}")))?;
    let local = listener
        .local_addr()
        .map_err(|e| Error::Config(format!("listener address: {e}")))?;
    let socket_path = m.config().effective_http_socket();
    let proxy_socket =
        mistborn_http::bind_proxy_socket(&socket_path, m.config().http_socket_group.as_deref())
            .map_err(|e| {
                Error::Config(format!("cannot listen on {}: {e}", socket_path.display()))
            })?;
    println!("data dir: {}", m.config().data_dir.display());
    // No part that cannot run stops the API: the status says what is off and why.
    let mut daemon = Daemon::start(&m, DaemonOptions::default()).await?;
    report_status(&daemon.status());
    println!("serving the API on http://{local}/api/v1 (OpenAPI at /api/v1/openapi.json)");
    println!(
        "reverse proxy socket: {} (the only way a forwarded client address is believed)",
        socket_path.display()
    );
    let mut state = AppState::new(m.clone());
    if let Some(f) = daemon.firewall() {
        state = state.with_firewall(f);
    }
    let (stop_http, _) = tokio::sync::watch::channel(false);
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    let mut http = JoinSet::new();
    let (api, hop) = (state.clone(), stop_http.subscribe());
    http.spawn(async move {
        (
            mistborn_http::serve(listener, api, stopped(hop)).await,
            "HTTP API",
        )
    });
    let hop = stop_http.subscribe();
    http.spawn(async move {
        let served = mistborn_http::serve_proxy_socket(proxy_socket, state, stopped(hop)).await;
        (served, "HTTP proxy socket")
    });
    let outcome = tokio::select! {
        name = stop_signal => {
            println!("{name}: shutting down");
            Ok(())
        }
        e = daemon.failed() => Err(e),
        Some(done) = http.join_next() => Err(Error::Daemon(match done {
            Ok((Ok(()), name)) => format!("the {name} stopped unexpectedly"),
            Ok((Err(e), name)) => format!("{name}: {e}"),
            Err(e) => format!("an HTTP server panicked: {e}"),
        })),
    };
    stop_http.send_replace(true);
    while http.join_next().await.is_some() {}
    let wg = &m.config().wireguard;
    match daemon.stop().await {
        // Like the firewall table: a restart or upgrade must not cost clients their sessions.
        InterfaceOnStop::KeptUp => println!(
            "WireGuard interface {} left up for the next start to adopt (wireguard.keep_on_stop)",
            wg.interface
        ),
        InterfaceOnStop::TakenDown => println!(
            "WireGuard interface {} taken down (wireguard.keep_on_stop = false)",
            wg.interface
        ),
        InterfaceOnStop::WasOff => {}
    }
    m.close().await;
    outcome
}

fn report_status(s: &DaemonStatus) {
    println!("WireGuard data plane: {}", s.dataplane);
    for (id, reason) in &s.skipped_profiles {
        println!("skipped profile {id}: {reason}");
    }
    println!("firewall: {}", s.firewall);
    if let Some(f) = &s.forwarding {
        report_forwarding(f);
    }
    if s.dns.is_on() {
        println!("serving DNS on {:?} (UDP and TCP)", s.dns_addrs);
    } else {
        println!("DNS resolver: {}", s.dns);
    }
    println!("reverse proxy: {}", s.proxy);
    println!("change watcher: {}", s.change_watcher);
    println!("periodic jobs: {}", s.jobs.join(", "));
}

/// Installs the SIGINT and SIGTERM handlers now and returns a future naming the first signal.
fn stop_signal() -> Result<impl Future<Output = &'static str>> {
    use tokio::signal::unix::{SignalKind, signal};
    let install = |kind| signal(kind).map_err(|e| Error::Config(format!("signal handler: {e}")));
    let mut term = install(SignalKind::terminate())?;
    let mut int = install(SignalKind::interrupt())?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = int.recv() => "SIGINT",
        }
    })
}

pub async fn init(config: Config) -> Result<()> {
    let data_dir = config.data_dir.clone();
    let (m, first) = Mistborn::open_reporting(config).await?;
    m.close().await;
    let file = data_dir.join(mistborn_core::files::ADMIN_PASSWORD);
    match &first {
        Some(first) => {
            println!("initialised {}", data_dir.display());
            report_first_start(first);
        }
        None => println!("{} was already initialised", data_dir.display()),
    }
    match std::fs::read_to_string(&file) {
        Ok(password) => {
            println!("admin password file: {}", file.display());
            println!("admin password: {}", password.trim());
        }
        Err(_) => println!(
            "the admin password file {} is gone (set one with `mistborn user passwd admin`)",
            file.display()
        ),
    }
    Ok(())
}
