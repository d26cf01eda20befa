//! Forwarding to upstream resolvers with hickory-resolver: DNS-over-TLS and DNS-over-HTTPS over
//! rustls (ring) by default, plain UDP (with TCP for truncated answers) or TCP only when configured.
//! The resolver keeps a cache of answers for their TTLs, shared by every client.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use hickory_resolver::TokioResolver;
use hickory_resolver::config::{
    ConnectionConfig, NameServerConfig, ProtocolConfig, ResolveHosts, ResolverConfig, ResolverOpts,
};
use hickory_resolver::lookup::Lookup;
use hickory_resolver::net::NetError;
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_server::proto::rr::{LowerName, Name, RecordType};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

use super::config::{UpstreamConfig, UpstreamProtocol};
use crate::error::{Error, Result};

/// The upstream resolvers with their cache.
#[derive(Clone)]
pub struct Upstream {
    resolver: TokioResolver,
    count: usize,
}

impl std::fmt::Debug for Upstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Upstream")
            .field("servers", &self.count)
            .finish_non_exhaustive()
    }
}

impl Upstream {
    /// A resolver over `servers`, trusting the public web roots plus the PEM certificates in
    /// `extra_ca` (for a self-hosted upstream), caching up to `cache_size` answers.
    pub fn new(
        servers: &[UpstreamConfig],
        extra_ca: Option<&Path>,
        cache_size: u64,
    ) -> Result<Self> {
        if servers.is_empty() {
            return Err(Error::Config("dns.upstreams is empty".into()));
        }
        let name_servers = servers
            .iter()
            .map(name_server)
            .collect::<Result<Vec<_>>>()?;
        let mut opts = ResolverOpts::default();
        opts.cache_size = cache_size;
        opts.use_hosts_file = ResolveHosts::Never;
        opts.ndots = 0;
        opts.timeout = Duration::from_secs(3);
        opts.attempts = 2;
        opts.edns0 = true;
        opts.preserve_intermediates = true;
        opts.try_tcp_on_error = true;
        opts.recursion_desired = true;
        let mut builder = TokioResolver::builder_with_config(
            ResolverConfig::from_name_servers(name_servers),
            TokioRuntimeProvider::default(),
        )
        .with_options(opts);
        builder = builder.with_tls_config(tls_config(extra_ca)?);
        let resolver = builder
            .build()
            .map_err(|e| Error::Config(format!("dns upstream resolver: {e}")))?;
        Ok(Self {
            resolver,
            count: servers.len(),
        })
    }

    /// Resolves `name` (absolute) for `rtype`, from the cache when fresh.
    pub async fn lookup(&self, name: &LowerName, rtype: RecordType) -> Result<Lookup, NetError> {
        let mut name = Name::from(name.clone());
        name.set_fqdn(true);
        self.resolver.lookup(name, rtype).await
    }

    /// Drops every cached answer (after the filter changed, so a newly allowed name resolves).
    pub fn clear_cache(&self) {
        self.resolver.clear_cache();
    }
}

fn name_server(u: &UpstreamConfig) -> Result<NameServerConfig> {
    let server_name = || -> Result<Arc<str>> {
        u.tls_name
            .as_deref()
            .filter(|n| !n.is_empty())
            .map(Arc::from)
            .ok_or_else(|| Error::Config(format!("dns upstream {} needs tls_name", u.address)))
    };
    let with_port = |protocol| {
        let mut c = ConnectionConfig::udp();
        c.port = u.address.port();
        c.protocol = protocol;
        c
    };
    let connections = match u.protocol {
        UpstreamProtocol::Tls => vec![with_port(ProtocolConfig::Tls {
            server_name: server_name()?,
        })],
        UpstreamProtocol::Https => vec![with_port(ProtocolConfig::Https {
            server_name: server_name()?,
            path: Arc::from(u.path.as_deref().unwrap_or("/dns-query")),
        })],
        UpstreamProtocol::Udp => vec![
            with_port(ProtocolConfig::Udp),
            with_port(ProtocolConfig::Tcp),
        ],
        UpstreamProtocol::Tcp => vec![with_port(ProtocolConfig::Tcp)],
    };
    let mut ns = NameServerConfig::udp_and_tcp(u.address.ip());
    ns.connections = connections;
    Ok(ns)
}

/// rustls with ring, the public web roots and the optional extra CA file.
pub(crate) fn tls_config(extra_ca: Option<&Path>) -> Result<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(path) = extra_ca {
        let certs = CertificateDer::pem_file_iter(path)
            .map_err(|e| Error::Config(format!("dns.upstream_ca_file {}: {e}", path.display())))?;
        let mut n = 0;
        for cert in certs {
            let cert = cert.map_err(|e| {
                Error::Config(format!("dns.upstream_ca_file {}: {e}", path.display()))
            })?;
            roots.add(cert).map_err(|e| {
                Error::Config(format!("dns.upstream_ca_file {}: {e}", path.display()))
            })?;
            n += 1;
        }
        if n == 0 {
            return Err(Error::Config(format!(
                "dns.upstream_ca_file {} holds no certificate",
                path.display()
            )));
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Config(format!("rustls: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth())
}
