//! Background upkeep of `mistborn serve`: expired login sessions closed every minute, the service
//! certificate checked daily (renewed inside 30 days), the reverse proxy (Caddy) started,
//! supervised and reloaded when its certificate changes; and for the firewall, Coppercloud lists
//! downloaded again on their schedule, and the probe counters sampled into the metrics history
//! (every `firewall.metrics_sample_secs`).

use std::net::IpAddr;
use std::time::Duration;

use mistborn_core::firewall::{FirewallHandle, MetricsSampler, history};
use mistborn_core::proxy::{Caddy, ProxyMode, plan, render_caddyfile};
use mistborn_core::{Mistborn, Result};

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

const SESSION_SWEEP: Duration = Duration::from_secs(60);
const CERT_CHECK: Duration = Duration::from_secs(24 * 3600);
const PROXY_CHECK: Duration = Duration::from_secs(10);
/// How often lists are checked for being due (each is downloaded when older than the configured
/// refresh interval).
const COPPERCLOUD_CHECK: Duration = Duration::from_secs(300);

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

/// Runs the firewall's schedules until `stop` completes: Coppercloud refreshes (the core keeps the
/// last good copy when a download fails or is garbage) and metrics sampling (deltas of the live
/// counters; the first reading is the baseline, so counts carried over a restart are not stored
/// twice).
pub async fn firewall(
    m: Mistborn,
    plane: Option<FirewallHandle>,
    stop: impl Future<Output = ()>,
) -> Result<&'static str> {
    let max_age = m.config().firewall.coppercloud_refresh_secs;
    let mut refresh =
        tokio::time::interval(COPPERCLOUD_CHECK.min(Duration::from_secs(max_age.max(1))));
    let every = m.config().firewall.metrics_sample_secs;
    let mut sample = tokio::time::interval(Duration::from_secs(every.max(1)));
    sample.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut sampler = MetricsSampler::new();
    tokio::pin!(stop);
    loop {
        tokio::select! {
            () = &mut stop => break,
            _ = refresh.tick(), if max_age > 0 => {
                match m.firewall().refresh_due(now(), max_age).await {
                    Ok((n, failed)) => {
                        if n > 0 {
                            tracing::info!(lists = n, "Coppercloud lists refreshed");
                        }
                        for f in failed {
                            tracing::warn!("Coppercloud refresh failed; the last good copy stays: {f}");
                        }
                    }
                    Err(e) => tracing::warn!("Coppercloud refresh: {e}"),
                }
            }
            _ = sample.tick(), if plane.is_some() => {
                let Some(plane) = plane.as_ref() else { continue };
                if !plane.status().on {
                    continue;
                }
                let deltas = match plane.metrics(usize::MAX).await {
                    Ok(x) => sampler.deltas(&x),
                    Err(e) => {
                        tracing::warn!("reading firewall metrics: {e}");
                        continue;
                    }
                };
                let Some(deltas) = deltas else { continue };
                if let Err(e) = m
                    .firewall()
                    .record_sample(now(), &deltas, history::DEFAULT_RETENTION_SECS)
                    .await
                {
                    tracing::warn!("storing firewall metrics: {e}");
                }
            }
        }
    }
    Ok("firewall upkeep")
}
