//! Background upkeep of `mistborn serve`: expired login sessions closed every minute, the service
//! certificate checked daily (renewed inside 30 days), and the reverse proxy (Caddy) started,
//! supervised and reloaded when its certificate changes.

use std::net::IpAddr;
use std::time::Duration;

use mistborn_core::proxy::{Caddy, ProxyMode, plan, render_caddyfile};
use mistborn_core::{Mistborn, Result};

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

const SESSION_SWEEP: Duration = Duration::from_secs(60);
const CERT_CHECK: Duration = Duration::from_secs(24 * 3600);
const PROXY_CHECK: Duration = Duration::from_secs(10);

/// Starts the proxy if configured; `None` when it is off or cannot start (said on stdout).
pub async fn start_proxy(m: &Mistborn) -> Option<Caddy> {
    let mode = m.config().proxy.mode;
    if mode == ProxyMode::Off {
        println!(
            "reverse proxy: OFF (set [proxy] mode = \"managed\" to serve home.{} and services)",
            m.config().dns_suffix
        );
        return None;
    }
    let result: Result<Caddy> = async {
        let files = m.tls().write_files(now()).await?.files;
        let (v4, v6) = m.address_pool().server_addresses();
        let p = plan(m.config(), files, [IpAddr::V4(v4), IpAddr::V6(v6)]);
        let text = render_caddyfile(&p);
        let mut caddy = Caddy::new(
            m.config().proxy.caddy_bin.clone(),
            m.config().data_dir.join("caddy"),
            p.admin.clone(),
        );
        match mode {
            ProxyMode::Managed => caddy.start(&text).await?,
            _ => caddy.reload(&text).await?,
        }
        Ok(caddy)
    }
    .await;
    match result {
        Ok(caddy) => {
            println!(
                "reverse proxy: ON ({mode:?}, Caddyfile {})",
                caddy.config_path().display()
            );
            Some(caddy)
        }
        Err(e) => {
            println!("reverse proxy: OFF ({e})");
            None
        }
    }
}

/// Runs until `stop` completes, then stops a managed proxy.
pub async fn run(
    m: Mistborn,
    mut caddy: Option<Caddy>,
    stop: impl Future<Output = ()>,
) -> Result<&'static str> {
    let mut sessions = tokio::time::interval(SESSION_SWEEP);
    let mut certs = tokio::time::interval(CERT_CHECK);
    let mut proxy = tokio::time::interval(PROXY_CHECK);
    let managed = m.config().proxy.mode == ProxyMode::Managed;
    tokio::pin!(stop);
    loop {
        tokio::select! {
            () = &mut stop => break,
            _ = sessions.tick() => {
                if let Err(e) = m.auth().expire_sessions(now()).await {
                    tracing::warn!("expiring sessions: {e}");
                }
            }
            _ = certs.tick() => {
                match m.tls().write_files(now()).await {
                    Ok(written) if written.issued => {
                        if let Some(c) = caddy.as_ref() {
                            let text = std::fs::read_to_string(c.config_path()).unwrap_or_default();
                            if let Err(e) = c.reload(&text).await {
                                tracing::warn!("reloading the proxy after renewal: {e}");
                            }
                        }
                    }
                    Ok(_) => {}
                    Err(e) => tracing::warn!("certificate check: {e}"),
                }
            }
            _ = proxy.tick(), if managed => {
                if let Some(c) = caddy.as_mut() {
                    if let Err(e) = c.ensure_running().await {
                        tracing::warn!("restarting the proxy: {e}");
                    }
                }
            }
        }
    }
    if let Some(c) = caddy.as_mut() {
        if managed {
            c.stop().await;
        }
    }
    Ok("upkeep")
}
