//! List downloads (DNS block lists, Coppercloud IP lists): one HTTP(S) GET that streams the body
//! under a size cap instead of reading it whole first, within a timeout, and that refuses
//! loopback, link-local and unspecified targets unless configured. The target check runs on the
//! addresses a name resolves to (every one of them, so a name answering with a public and a
//! loopback address is refused too), on address literals and on every redirect, so a list URL
//! cannot be used to read the host's own services or a cloud metadata endpoint.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The `[download]` section of `mistborn.toml`: list downloads and uploads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DownloadConfig {
    /// Largest list accepted, downloaded or uploaded, in bytes.
    pub max_bytes: u64,
    /// Whether lists may be downloaded from loopback, link-local or unspecified addresses (the
    /// host itself, `169.254.169.254`, ...). Off by default.
    pub allow_local: bool,
    /// Whole-download timeout, seconds.
    pub timeout_secs: u64,
}

impl Default for DownloadConfig {
    fn default() -> Self {
        Self {
            max_bytes: 64 * 1024 * 1024,
            allow_local: false,
            timeout_secs: 60,
        }
    }
}

/// Why a download failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DownloadError {
    /// Not an http(s) URL.
    #[error("'{url}' is not an http(s) URL: {reason}")]
    BadUrl {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The target is the host itself or a link-local address.
    #[error(
        "{host} is a local address ({addr}): lists are not downloaded from loopback, link-local or unspecified addresses (download.allow_local)"
    )]
    LocalTarget {
        /// The host of the URL (or of a redirect).
        host: String,
        /// The address refused.
        addr: IpAddr,
    },
    /// The body is larger than the cap.
    #[error("the download is larger than {limit} bytes (download.max_bytes)")]
    TooLarge {
        /// The cap in bytes.
        limit: u64,
    },
    /// The server answered with an error status.
    #[error("download failed: HTTP {0}")]
    Status(u16),
    /// The download did not finish in time.
    #[error("download timed out after {0} s")]
    Timeout(u64),
    /// The body is not UTF-8 text.
    #[error("the download is not UTF-8 text")]
    NotText,
    /// Connection, TLS or protocol failure.
    #[error("download failed: {0}")]
    Failed(String),
}

/// Whether `ip` is the host itself, link-local or unspecified (IPv4-mapped IPv6 included).
pub fn is_local_target(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            v4.is_loopback() || v4.is_link_local() || v4.is_unspecified() || v4.octets()[0] == 0
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_local_target(IpAddr::V4(v4));
            }
            v6.is_loopback() || v6.is_unspecified() || (v6.segments()[0] & 0xffc0) == 0xfe80
        }
    }
}

fn literal_host(url: &reqwest::Url) -> Option<IpAddr> {
    let host = url.host_str()?;
    host.trim_start_matches('[')
        .trim_end_matches(']')
        .parse()
        .ok()
}

fn check_url(url: &reqwest::Url, allow_local: bool) -> Result<(), DownloadError> {
    if !matches!(url.scheme(), "http" | "https") {
        return Err(DownloadError::BadUrl {
            url: url.to_string(),
            reason: "only http and https URLs".into(),
        });
    }
    if !allow_local
        && let Some(addr) = literal_host(url)
        && is_local_target(addr)
    {
        return Err(DownloadError::LocalTarget {
            host: url.host_str().unwrap_or_default().to_string(),
            addr,
        });
    }
    Ok(())
}

/// Whether to follow a redirect to `url` after `previous` hops. (A name is checked when it is
/// resolved; an address literal here.)
fn check_redirect(
    url: &reqwest::Url,
    previous: usize,
    allow_local: bool,
) -> Result<(), DownloadError> {
    if previous >= 10 {
        return Err(DownloadError::Failed("more than 10 redirects".into()));
    }
    check_url(url, allow_local)
}

/// Resolves names with the system resolver and refuses local answers.
#[derive(Debug)]
struct GuardedResolver {
    allow_local: bool,
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let allow_local = self.allow_local;
        Box::pin(async move {
            let host = name.as_str().to_string();
            let addrs: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            if !allow_local && let Some(bad) = addrs.iter().find(|a| is_local_target(a.ip())) {
                return Err(Box::new(DownloadError::LocalTarget {
                    host,
                    addr: bad.ip(),
                })
                    as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// A refusal of ours carried inside a reqwest error, or the error described.
fn explain(e: &reqwest::Error, timeout_secs: u64) -> DownloadError {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(s) = source {
        if let Some(ours) = s.downcast_ref::<DownloadError>() {
            return ours.clone();
        }
        source = s.source();
    }
    if e.is_timeout() {
        return DownloadError::Timeout(timeout_secs);
    }
    // reqwest's own text omits the cause ("error sending request"): add the chain.
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    DownloadError::Failed(text)
}

/// Downloads `url` as text under `config`'s cap, timeout and target rules.
pub async fn download_text(url: &str, config: &DownloadConfig) -> Result<String, DownloadError> {
    let parsed = reqwest::Url::parse(url.trim()).map_err(|e| DownloadError::BadUrl {
        url: url.to_string(),
        reason: e.to_string(),
    })?;
    let allow_local = config.allow_local;
    check_url(&parsed, allow_local)?;
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| DownloadError::Failed(format!("tls: {e}")))?
    .with_root_certificates(rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    })
    .with_no_client_auth();
    let redirects = reqwest::redirect::Policy::custom(move |attempt| {
        match check_redirect(attempt.url(), attempt.previous().len(), allow_local) {
            Ok(()) => attempt.follow(),
            Err(e) => attempt.error(e),
        }
    });
    let client = reqwest::Client::builder()
        .use_preconfigured_tls(tls)
        .dns_resolver(Arc::new(GuardedResolver { allow_local }))
        .redirect(redirects)
        .no_proxy()
        .timeout(Duration::from_secs(config.timeout_secs))
        .build()
        .map_err(|e| DownloadError::Failed(format!("http client: {e}")))?;
    let mut resp = client
        .get(parsed)
        .send()
        .await
        .map_err(|e| explain(&e, config.timeout_secs))?;
    if !resp.status().is_success() {
        return Err(DownloadError::Status(resp.status().as_u16()));
    }
    let limit = config.max_bytes;
    if resp.content_length().is_some_and(|n| n > limit) {
        return Err(DownloadError::TooLarge { limit });
    }
    let cap = usize::try_from(limit).unwrap_or(usize::MAX);
    let mut body = Vec::with_capacity(
        resp.content_length()
            .and_then(|n| usize::try_from(n).ok())
            .unwrap_or(0)
            .min(cap),
    );
    while let Some(chunk) = resp
        .chunk()
        .await
        .map_err(|e| explain(&e, config.timeout_secs))?
    {
        if body.len() + chunk.len() > cap {
            return Err(DownloadError::TooLarge { limit });
        }
        body.extend_from_slice(&chunk);
    }
    String::from_utf8(body).map_err(|_| DownloadError::NotText)
}

#[cfg(test)]
mod tests;
