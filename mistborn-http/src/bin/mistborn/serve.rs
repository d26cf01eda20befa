//! `mistborn serve` and `mistborn init`: open (and on first start initialise) Mistborn; serve the
//! API with background tasks until SIGINT/SIGTERM.

use std::net::SocketAddr;

use mistborn_core::config::DataplaneBackend;
use mistborn_core::firewall::{FirewallOptions, FirewallPlane, ForwardingStatus};
use mistborn_core::wireguard::{DataPlane, DataPlaneOptions};
use mistborn_core::{Config, Error, FirstStart, Mistborn, Result};
use mistborn_http::AppState;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

/// Tells every task to stop; each task awaits [`Shutdown::wait`].
#[derive(Clone)]
struct Shutdown(watch::Sender<bool>);

impl Shutdown {
    fn new() -> Self {
        Self(watch::channel(false).0)
    }
    fn trigger(&self) {
        self.0.send_replace(true);
    }
    fn wait(&self) -> impl Future<Output = ()> + Send + 'static {
        let mut rx = self.0.subscribe();
        async move {
            // An error means the sender is gone, which is also a reason to stop.
            let _ = rx.wait_for(|stop| *stop).await;
        }
    }
}

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
    let stop_signal = stop_signal()?;
    let addr = listen.unwrap_or(config.http_listen);
    let data_dir = config.data_dir.clone();
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
    println!("data dir: {}", data_dir.display());
    // The firewall runs in the daemon's own network namespace, before the data plane: its gate
    // keeps peers off the tunnel until the table is in force (firewall.fail_closed). Like the
    // data plane it never stops the API; it retries on its timer.
    // It belongs to the data plane: with `wireguard.backend = "none"` it is off too, so an
    // API-only server never touches the ruleset of the namespace it runs in. Coppercloud
    // downloads run in the upkeep task, not in the reconciler.
    let firewall = if m.config().wireguard.backend == DataplaneBackend::None {
        println!(
            "firewall: OFF: wireguard.backend is 'none' (no data plane, no firewall); serving the API anyway"
        );
        None
    } else {
        let firewall = FirewallPlane::start_with(
            &m,
            FirewallOptions {
                refresh_interval: None,
                ..FirewallOptions::from_config(m.config())
            },
        );
        let fw = firewall.settled().await;
        if fw.on {
            println!(
                "firewall: ON (table inet mistborn, external interface {}, applied in {} ms)",
                fw.external_interface.as_deref().unwrap_or("none"),
                fw.last_full_apply_ms.unwrap_or(0)
            );
            if let Some(f) = &fw.forwarding {
                report_forwarding(f);
            }
        } else {
            println!(
                "firewall: OFF: {}; serving the API anyway (IP forwarding is turned on only behind the firewall)",
                fw.reason.as_deref().unwrap_or("unknown reason")
            );
        }
        Some(firewall)
    };
    // The data plane never stops the API: when it cannot run, it says why (here and in
    // GET /api/v1/status) and retries on every status tick.
    let dataplane = DataPlane::start_with(
        &m,
        DataPlaneOptions {
            gate: firewall.as_ref().map(|f| f.handle().peer_gate()),
            ..DataPlaneOptions::from_config(m.config())
        },
    );
    let st = dataplane.settled().await;
    if st.on {
        println!(
            "WireGuard data plane: ON ({} backend, interface {}, UDP {})",
            st.backend.map_or("?", |b| b.as_str()),
            st.interface,
            st.listen_port
        );
    } else {
        println!(
            "WireGuard data plane: OFF: {}; serving the API anyway",
            st.reason.as_deref().unwrap_or("unknown reason")
        );
    }
    for s in &st.skipped {
        println!("skipped profile {}: {}", s.id, s.reason);
    }
    println!("serving the API on http://{local}/api/v1 (OpenAPI at /api/v1/openapi.json)");
    println!(
        "reverse proxy socket: {} (the only way a forwarded client address is believed)",
        socket_path.display()
    );

    let shutdown = Shutdown::new();
    let mut tasks: JoinSet<Result<&'static str>> = JoinSet::new();
    {
        // Other processes' writes (the CLI) become the same change events as this one's.
        let watcher = mistborn_core::daemon::ChangeWatcher::new(&m).await?;
        let stop = shutdown.0.subscribe();
        tasks.spawn(async move {
            watcher.run(stop).await;
            Ok("change watcher")
        });
    }
    {
        let mut state = AppState::new(m.clone());
        if let Some(f) = &firewall {
            state = state.with_firewall(f.handle());
        }
        let stop = shutdown.wait();
        tasks.spawn(async move {
            mistborn_http::serve(listener, state, stop)
                .await
                .map_err(|e| Error::Config(format!("HTTP server: {e}")))?;
            Ok("HTTP API")
        });
    }
    {
        let mut state = AppState::new(m.clone());
        if let Some(f) = &firewall {
            state = state.with_firewall(f.handle());
        }
        let stop = shutdown.wait();
        tasks.spawn(async move {
            mistborn_http::serve_proxy_socket(proxy_socket, state, stop)
                .await
                .map_err(|e| Error::Config(format!("HTTP proxy socket: {e}")))?;
            Ok("HTTP proxy socket")
        });
    }
    // Further background tasks (data-plane reconciler, DNS, ...) are spawned into `tasks` here
    // with `shutdown.wait()`; a task that ends early stops the whole server.
    // DNS is stopped last (below): clients keep their answers while everything else stops.
    let mut dns = None;
    if m.config().dns.enabled {
        // Without the tunnel addresses (no data plane) or the right to bind port 53 the resolver
        // cannot start: say so and keep serving the API.
        match mistborn_core::dns::Resolver::start(&m).await {
            Ok(resolver) => {
                println!("serving DNS on {:?} (UDP and TCP)", resolver.local_addrs());
                dns = Some(resolver);
            }
            Err(e) => println!("DNS resolver: OFF ({e}); set [dns] listen to serve elsewhere"),
        }
    }

    {
        let caddy = crate::upkeep::start_proxy(&m).await;
        let stop = shutdown.wait();
        tasks.spawn(crate::upkeep::run(m.clone(), caddy, stop));
    }
    tasks.spawn(crate::upkeep::firewall(
        m.clone(),
        firewall.as_ref().map(FirewallPlane::handle),
        shutdown.wait(),
    ));

    let mut outcome = Ok(());
    tokio::select! {
        name = stop_signal => {
            println!("{name}: shutting down");
        }
        Some(done) = tasks.join_next() => {
            outcome = task_outcome(done).and_then(|name| {
                Err(Error::Config(format!("{name} stopped unexpectedly")))
            });
        }
    }
    shutdown.trigger();
    while let Some(done) = tasks.join_next().await {
        if let Err(e) = task_outcome(done) {
            eprintln!("error while stopping: {e}");
            if outcome.is_ok() {
                outcome = Err(e);
            }
        }
    }
    if let Some(f) = firewall {
        f.stop().await;
    }
    let was_on = dataplane.status().on;
    dataplane.stop().await;
    let wg = &m.config().wireguard;
    if was_on && wg.keep_on_stop {
        // Like the firewall table: a restart or upgrade must not cost clients their sessions.
        println!(
            "WireGuard interface {} left up for the next start to adopt (wireguard.keep_on_stop)",
            wg.interface
        );
    } else if was_on {
        println!(
            "WireGuard interface {} taken down (wireguard.keep_on_stop = false)",
            wg.interface
        );
    }
    if let Some(dns) = dns {
        dns.shutdown().await;
    }
    m.close().await;
    outcome
}

fn task_outcome(
    done: std::result::Result<Result<&'static str>, tokio::task::JoinError>,
) -> Result<&'static str> {
    done.map_err(|e| Error::Config(format!("a server task panicked: {e}")))?
}

/// Installs the SIGINT and SIGTERM handlers now and returns a future naming the first signal.
/// Installed before anything starts: a signal during start-up then waits for it to finish instead
/// of killing the process outright, which left the managed Caddy running (and holding its ports)
/// under `KillMode=process`.
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
