//! The Python mirror types: read-only `#[pyclass]` copies of core's values, converted with `From`.
//! Enumerations (role, kind, listen port) cross as their stable lowercase names, which core parses
//! back on the way in.

use mistborn_core::crypto;
use mistborn_core::firewall;
use mistborn_core::peers;
use mistborn_core::users;
use pyo3::prelude::*;

/// A user account.
#[pyclass(module = "mistborn", frozen, eq)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// Stable id (UUID).
    #[pyo3(get)]
    pub id: String,
    /// Login name.
    #[pyo3(get)]
    pub username: String,
    /// `"superuser"` or `"regular"`.
    #[pyo3(get)]
    pub role: String,
    /// Creation time, Unix seconds.
    #[pyo3(get)]
    pub created_at: i64,
}

#[pymethods]
impl User {
    fn __repr__(&self) -> String {
        format!(
            "User(username={:?}, role={:?}, id={:?})",
            self.username, self.role, self.id
        )
    }
}

impl From<users::User> for User {
    fn from(u: users::User) -> Self {
        Self {
            id: u.id.to_string(),
            username: u.username.to_string(),
            role: u.role.as_str().into(),
            created_at: u.created_at,
        }
    }
}

/// A stored API token, without its secret.
#[pyclass(module = "mistborn", frozen, eq)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiToken {
    /// Token id, for revoking.
    #[pyo3(get)]
    pub id: String,
    /// The owner's id.
    #[pyo3(get)]
    pub user_id: String,
    /// The label given at creation.
    #[pyo3(get)]
    pub name: String,
    /// Creation time, Unix seconds.
    #[pyo3(get)]
    pub created_at: i64,
    /// Last successful use, Unix seconds.
    #[pyo3(get)]
    pub last_used_at: Option<i64>,
}

#[pymethods]
impl ApiToken {
    fn __repr__(&self) -> String {
        format!("ApiToken(name={:?}, id={:?})", self.name, self.id)
    }
}

impl From<users::ApiToken> for ApiToken {
    fn from(t: users::ApiToken) -> Self {
        Self {
            id: t.id.to_string(),
            user_id: t.user_id.to_string(),
            name: t.name,
            created_at: t.created_at,
            last_used_at: t.last_used_at,
        }
    }
}

/// A token just created: `secret` is shown this once and never stored.
#[pyclass(module = "mistborn", frozen)]
#[derive(Debug, Clone)]
pub struct NewToken {
    /// The stored part.
    #[pyo3(get)]
    pub token: ApiToken,
    /// The bearer secret for `Mistborn.as_token` and the REST API.
    #[pyo3(get)]
    pub secret: String,
}

#[pymethods]
impl NewToken {
    fn __repr__(&self) -> String {
        // Never echo the secret into logs or tracebacks.
        format!("NewToken(token={}, secret=<hidden>)", self.token.__repr__())
    }
}

impl From<users::NewToken> for NewToken {
    fn from(t: users::NewToken) -> Self {
        Self {
            token: t.token.into(),
            secret: t.secret,
        }
    }
}

/// A WireGuard profile (one device of a user).
#[pyclass(module = "mistborn", frozen, eq)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    /// Stable id (UUID).
    #[pyo3(get)]
    pub id: String,
    /// The owner's id.
    #[pyo3(get)]
    pub user_id: String,
    /// The owner's name.
    #[pyo3(get)]
    pub username: String,
    /// Display name, unique per user.
    #[pyo3(get)]
    pub name: String,
    /// `"wireguard"` or `"mfa"`.
    #[pyo3(get)]
    pub kind: String,
    /// Whether other tunnel clients may reach this device.
    #[pyo3(get)]
    pub client_to_client: bool,
    /// `"default"`, `"udp53"` or `"udp443"`.
    #[pyo3(get)]
    pub listen_port: String,
    /// Tunnel IPv4 address.
    #[pyo3(get)]
    pub address_v4: String,
    /// Tunnel IPv6 address.
    #[pyo3(get)]
    pub address_v6: String,
    /// The device's public key (base64).
    #[pyo3(get)]
    pub public_key: String,
    /// Whether Mistborn holds the private key (false for devices that enrolled their own key).
    #[pyo3(get)]
    pub server_generated_key: bool,
    /// Creation time, Unix seconds.
    #[pyo3(get)]
    pub created_at: i64,
}

#[pymethods]
impl Peer {
    fn __repr__(&self) -> String {
        format!(
            "Peer(username={:?}, name={:?}, address_v4={:?}, id={:?})",
            self.username, self.name, self.address_v4, self.id
        )
    }
}

impl From<peers::Peer> for Peer {
    fn from(p: peers::Peer) -> Self {
        Self {
            id: p.id.to_string(),
            user_id: p.user_id.to_string(),
            username: p.username.to_string(),
            name: p.name.to_string(),
            kind: p.kind.as_str().into(),
            client_to_client: p.client_to_client,
            listen_port: p.listen_port.as_str().into(),
            address_v4: p.address_v4.to_string(),
            address_v6: p.address_v6.to_string(),
            public_key: p.public_key.to_base64(),
            server_generated_key: p.server_generated_key,
            created_at: p.created_at,
        }
    }
}

/// The server's answer to a device enrollment: the whole config except the device's private key.
#[pyclass(module = "mistborn", frozen, eq)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnrollmentAnswer {
    /// The created profile's id.
    #[pyo3(get)]
    pub profile_id: String,
    /// Its display name.
    #[pyo3(get)]
    pub profile_name: String,
    /// `"wireguard"` or `"mfa"`.
    #[pyo3(get)]
    pub kind: String,
    /// The device's tunnel IPv4 address.
    #[pyo3(get)]
    pub address_v4: String,
    /// The device's tunnel IPv6 address.
    #[pyo3(get)]
    pub address_v6: String,
    /// The resolver addresses.
    #[pyo3(get)]
    pub dns: Vec<String>,
    /// The device public key the server registered.
    #[pyo3(get)]
    pub public_key: String,
    /// The server's public key.
    #[pyo3(get)]
    pub server_public_key: String,
    /// The profile's preshared key.
    #[pyo3(get)]
    pub preshared_key: String,
    /// Server host as devices reach it.
    #[pyo3(get)]
    pub endpoint_host: String,
    /// UDP port the device dials.
    #[pyo3(get)]
    pub endpoint_port: u16,
    pub(crate) inner: peers::EnrollmentAnswer,
}

#[pymethods]
impl EnrollmentAnswer {
    /// The device's config text, completed with its own private key (which must match
    /// `public_key`).
    fn client_config(&self, private_key: &str) -> PyResult<String> {
        let key: crypto::WgKey = private_key.parse().map_err(crate::errors::to_py)?;
        Ok(self
            .inner
            .client_config(&key)
            .map_err(crate::errors::to_py)?
            .render())
    }

    /// The answer as JSON, the wire format of the REST API and the mobile bindings.
    fn to_json(&self) -> PyResult<String> {
        self.inner.to_json().map_err(crate::errors::to_py)
    }

    fn __repr__(&self) -> String {
        format!(
            "EnrollmentAnswer(profile_name={:?}, address_v4={:?}, profile_id={:?})",
            self.profile_name, self.address_v4, self.profile_id
        )
    }
}

impl From<peers::EnrollmentAnswer> for EnrollmentAnswer {
    fn from(a: peers::EnrollmentAnswer) -> Self {
        Self {
            profile_id: a.profile_id.to_string(),
            profile_name: a.profile_name.to_string(),
            kind: a.kind.as_str().into(),
            address_v4: a.address_v4.to_string(),
            address_v6: a.address_v6.to_string(),
            dns: a.dns.iter().map(ToString::to_string).collect(),
            public_key: a.public_key.to_base64(),
            server_public_key: a.server_public_key.to_base64(),
            preshared_key: a.preshared_key.to_base64(),
            endpoint_host: a.endpoint_host.clone(),
            endpoint_port: a.endpoint_port,
            inner: a,
        }
    }
}

/// A WireGuard key pair (base64).
#[pyclass(module = "mistborn", frozen, eq)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyPair {
    /// The secret half: keep it on the device.
    #[pyo3(get)]
    pub private_key: String,
    /// The public half, for enrollment.
    #[pyo3(get)]
    pub public_key: String,
}

#[pymethods]
impl KeyPair {
    fn __repr__(&self) -> String {
        format!(
            "KeyPair(public_key={:?}, private_key=<hidden>)",
            self.public_key
        )
    }
}

impl From<crypto::KeyPair> for KeyPair {
    fn from(k: crypto::KeyPair) -> Self {
        Self {
            private_key: k.private.to_base64(),
            public_key: k.public.to_base64(),
        }
    }
}

/// A Coppercloud IP list (without its content).
#[pyclass(module = "mistborn", frozen, eq)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopperList {
    /// Stable id (lowercase hex).
    #[pyo3(get)]
    pub id: String,
    /// Unique name.
    #[pyo3(get)]
    pub name: String,
    /// `"block"` or `"allow"`.
    #[pyo3(get)]
    pub mode: String,
    /// Where it is downloaded from; `None` for text given directly.
    #[pyo3(get)]
    pub url: Option<String>,
    /// Whether the firewall uses it.
    #[pyo3(get)]
    pub enabled: bool,
    /// Entries in the last good copy.
    #[pyo3(get)]
    pub entries: u64,
    /// When the last good copy was stored, Unix seconds.
    #[pyo3(get)]
    pub refreshed_at: Option<i64>,
    /// Why the last refresh was refused, if it was.
    #[pyo3(get)]
    pub last_error: Option<String>,
    /// Creation time, Unix seconds.
    #[pyo3(get)]
    pub created_at: i64,
    /// Last change, Unix seconds.
    #[pyo3(get)]
    pub updated_at: i64,
}

#[pymethods]
impl CopperList {
    fn __repr__(&self) -> String {
        format!(
            "CopperList(name={:?}, mode={:?}, entries={}, id={:?})",
            self.name, self.mode, self.entries, self.id
        )
    }
}

impl From<firewall::CopperList> for CopperList {
    fn from(l: firewall::CopperList) -> Self {
        Self {
            id: l.id,
            name: l.name,
            mode: l.mode.as_str().into(),
            url: l.url,
            enabled: l.enabled,
            entries: l.entries,
            refreshed_at: l.refreshed_at,
            last_error: l.last_error,
            created_at: l.created_at,
            updated_at: l.updated_at,
        }
    }
}

/// What a refresh did.
#[pyclass(module = "mistborn", frozen, eq)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshOutcome {
    /// The list after the refresh.
    #[pyo3(get)]
    pub list: CopperList,
    /// Whether a new copy replaced the old one.
    #[pyo3(get)]
    pub updated: bool,
}

#[pymethods]
impl RefreshOutcome {
    fn __repr__(&self) -> String {
        format!(
            "RefreshOutcome(list={}, updated={})",
            self.list.__repr__(),
            if self.updated { "True" } else { "False" }
        )
    }
}

impl From<firewall::RefreshOutcome> for RefreshOutcome {
    fn from(r: firewall::RefreshOutcome) -> Self {
        Self {
            list: r.list.into(),
            updated: r.updated,
        }
    }
}

/// One Coppercloud list in a [`PolicyView`].
#[pyclass(module = "mistborn", frozen, eq)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyList {
    /// The list's id.
    #[pyo3(get)]
    pub id: String,
    /// `"block"` or `"allow"`.
    #[pyo3(get)]
    pub mode: String,
    /// Merged IPv4 ranges.
    #[pyo3(get)]
    pub ranges_v4: u64,
    /// Merged IPv6 ranges.
    #[pyo3(get)]
    pub ranges_v6: u64,
}

#[pymethods]
impl PolicyList {
    fn __repr__(&self) -> String {
        format!(
            "PolicyList(id={:?}, mode={:?}, ranges_v4={}, ranges_v6={})",
            self.id, self.mode, self.ranges_v4, self.ranges_v6
        )
    }
}

/// A summary of a firewall policy (sizes and addresses, not the whole ruleset).
#[pyclass(module = "mistborn", frozen, eq)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyView {
    /// The nftables table, `"inet mistborn"`.
    #[pyo3(get)]
    pub table: String,
    /// Tunnel interface.
    #[pyo3(get)]
    pub tunnel_interface: String,
    /// External interface (the default route's), if any.
    #[pyo3(get)]
    pub external_interface: Option<String>,
    /// WireGuard UDP port.
    #[pyo3(get)]
    pub wireguard_port: u16,
    /// Alternate UDP ports redirected to it.
    #[pyo3(get)]
    pub redirect_ports: Vec<u16>,
    /// SSH port.
    #[pyo3(get)]
    pub ssh_port: u16,
    /// The admin source allowed SSH from outside, if any.
    #[pyo3(get)]
    pub admin_source: Option<String>,
    /// Web ports open to the tunnel.
    #[pyo3(get)]
    pub web_ports: Vec<u16>,
    /// Container bridges shielded from outside.
    #[pyo3(get)]
    pub container_bridges: Vec<String>,
    /// Tunnel addresses waiting for an MFA login.
    #[pyo3(get)]
    pub mfa_pending: Vec<String>,
    /// Tunnel addresses allowed client-to-client.
    #[pyo3(get)]
    pub client_to_client: Vec<String>,
    /// The enabled Coppercloud lists.
    #[pyo3(get)]
    pub lists: Vec<PolicyList>,
}

#[pymethods]
impl PolicyView {
    fn __repr__(&self) -> String {
        format!(
            "PolicyView(table={:?}, external_interface={:?}, lists={})",
            self.table,
            self.external_interface,
            self.lists.len()
        )
    }
}

impl From<firewall::PolicyView> for PolicyView {
    fn from(p: firewall::PolicyView) -> Self {
        Self {
            table: p.table,
            tunnel_interface: p.tunnel_interface,
            external_interface: p.external_interface,
            wireguard_port: p.wireguard_port,
            redirect_ports: p.redirect_ports,
            ssh_port: p.ssh_port,
            admin_source: p.admin_source,
            web_ports: p.web_ports,
            container_bridges: p.container_bridges,
            mfa_pending: p.mfa_pending,
            client_to_client: p.client_to_client,
            lists: p
                .lists
                .into_iter()
                .map(|l| PolicyList {
                    id: l.id,
                    mode: l.mode,
                    ranges_v4: l.ranges_v4,
                    ranges_v6: l.ranges_v6,
                })
                .collect(),
        }
    }
}

/// Probes and Coppercloud hits in one time bucket.
#[pyclass(module = "mistborn", frozen, eq)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryBucket {
    /// Bucket start, Unix seconds.
    #[pyo3(get)]
    pub start: i64,
    /// Probe packets.
    #[pyo3(get)]
    pub probes: u64,
    /// Coppercloud list hits.
    #[pyo3(get)]
    pub list_hits: u64,
}

#[pymethods]
impl HistoryBucket {
    fn __repr__(&self) -> String {
        format!(
            "HistoryBucket(start={}, probes={}, list_hits={})",
            self.start, self.probes, self.list_hits
        )
    }
}

/// A key ranked over a window: `protocol/port`, source address, or list id.
#[pyclass(module = "mistborn", frozen, eq)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryCount {
    /// What was counted.
    #[pyo3(get)]
    pub key: String,
    /// Packets in the window.
    #[pyo3(get)]
    pub packets: u64,
}

#[pymethods]
impl HistoryCount {
    fn __repr__(&self) -> String {
        format!("HistoryCount(key={:?}, packets={})", self.key, self.packets)
    }
}

impl From<firewall::HistoryCount> for HistoryCount {
    fn from(c: firewall::HistoryCount) -> Self {
        Self {
            key: c.key,
            packets: c.packets,
        }
    }
}

/// Probe and hit counts since a time, in buckets, with the top keys over the whole window.
#[pyclass(module = "mistborn", frozen, eq)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricsHistory {
    /// Window start, Unix seconds.
    #[pyo3(get)]
    pub since: i64,
    /// Bucket width, seconds.
    #[pyo3(get)]
    pub bucket_secs: i64,
    /// Probe packets in the window.
    #[pyo3(get)]
    pub total_probes: u64,
    /// Buckets that have samples, oldest first.
    #[pyo3(get)]
    pub buckets: Vec<HistoryBucket>,
    /// Most probed ports (`protocol/port`), most packets first.
    #[pyo3(get)]
    pub top_ports: Vec<HistoryCount>,
    /// Most active sources, most packets first.
    #[pyo3(get)]
    pub top_sources: Vec<HistoryCount>,
    /// Hits per Coppercloud list id.
    #[pyo3(get)]
    pub lists: Vec<HistoryCount>,
}

#[pymethods]
impl MetricsHistory {
    fn __repr__(&self) -> String {
        format!(
            "MetricsHistory(since={}, bucket_secs={}, total_probes={})",
            self.since, self.bucket_secs, self.total_probes
        )
    }
}

fn counts(v: Vec<firewall::HistoryCount>) -> Vec<HistoryCount> {
    v.into_iter().map(Into::into).collect()
}

impl From<firewall::MetricsHistory> for MetricsHistory {
    fn from(h: firewall::MetricsHistory) -> Self {
        Self {
            since: h.since,
            bucket_secs: h.bucket_secs,
            total_probes: h.total_probes,
            buckets: h
                .buckets
                .into_iter()
                .map(|b| HistoryBucket {
                    start: b.start,
                    probes: b.probes,
                    list_hits: b.list_hits,
                })
                .collect(),
            top_ports: counts(h.top_ports),
            top_sources: counts(h.top_sources),
            lists: counts(h.lists),
        }
    }
}
