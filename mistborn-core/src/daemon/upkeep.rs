//! The daemon's periodic jobs, one schedule each: expired login sessions closed every second, the
//! service certificate checked daily (renewed inside 30 days, the proxy reloaded on renewal), a
//! managed Caddy kept running, Coppercloud lists downloaded again when due, and the firewall's
//! probe counters sampled into the metrics history (every `firewall.metrics_sample_secs`).

use std::net::IpAddr;
use std::time::Duration;

use tokio::sync::watch;

use super::watch::stopped;
use crate::error::Result;
use crate::firewall::{FirewallHandle, MetricsSampler, history};
use crate::mistborn::Mistborn;
use crate::proxy::{Caddy, ProxyMode, plan, render_caddyfile};
use crate::store::now_unix;

/// An expired login must close its address as fast as a sign-out does (the firewall cuts open flows
/// once the address leaves the set); the sweep reads a table of one row per signed-in device.
const SESSION_SWEEP: Duration = Duration::from_secs(1);
const CERT_CHECK: Duration = Duration::from_secs(24 * 3600);
const PROXY_CHECK: Duration = Duration::from_secs(10);
/// How often lists are checked for being due (each is downloaded when older than the configured
/// refresh interval).
const COPPERCLOUD_CHECK: Duration = Duration::from_secs(300);

/// Starts the reverse proxy `m`'s config asks for: `Ok(None)` when it is off.
pub(crate) async fn start_proxy(m: &Mistborn) -> Result<Option<Caddy>> {
    let mode = m.config().proxy.mode;
    if mode == ProxyMode::Off {
        return Ok(None);
    }
    let files = m.tls().write_files(now_unix()).await?.files;
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
    Ok(Some(caddy))
}

/// Sessions, certificates and the proxy, until `stop`; then stops a managed proxy.
pub(crate) async fn run(m: Mistborn, mut caddy: Option<Caddy>, mut stop: watch::Receiver<bool>) {
    let mut sessions = tokio::time::interval(SESSION_SWEEP);
    let mut certs = tokio::time::interval(CERT_CHECK);
    let mut proxy = tokio::time::interval(PROXY_CHECK);
    let managed = m.config().proxy.mode == ProxyMode::Managed;
    loop {
        tokio::select! {
            () = stopped(&mut stop) => break,
            _ = sessions.tick() => {
                if let Err(e) = m.auth().expire_sessions(now_unix()).await {
                    tracing::warn!("expiring sessions: {e}");
                }
            }
            _ = certs.tick() => {
                match m.tls().write_files(now_unix()).await {
                    Ok(written) if written.issued => {
                        if let Some(c) = caddy.as_ref() {
                            let text = tokio::fs::read_to_string(c.config_path()).await.unwrap_or_default();
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
}

/// The firewall's schedules until `stop`: Coppercloud refreshes (the core keeps the last good
/// copy when a download fails or is garbage) and metrics sampling (deltas of the live counters;
/// the first reading is the baseline, so counts carried over a restart are not stored twice).
pub(crate) async fn firewall(
    m: Mistborn,
    plane: Option<FirewallHandle>,
    mut stop: watch::Receiver<bool>,
) {
    let max_age = m.config().firewall.coppercloud_refresh_secs;
    let mut refresh =
        tokio::time::interval(COPPERCLOUD_CHECK.min(Duration::from_secs(max_age.max(1))));
    let every = m.config().firewall.metrics_sample_secs;
    let mut sample = tokio::time::interval(Duration::from_secs(every.max(1)));
    sample.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut sampler = MetricsSampler::new();
    loop {
        tokio::select! {
            () = stopped(&mut stop) => break,
            _ = refresh.tick(), if max_age > 0 => {
                match m.firewall().refresh_due(now_unix(), max_age).await {
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
                    .record_sample(now_unix(), &deltas, history::DEFAULT_RETENTION_SECS)
                    .await
                {
                    tracing::warn!("storing firewall metrics: {e}");
                }
            }
        }
    }
}
