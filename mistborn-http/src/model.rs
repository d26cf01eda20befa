//! The API's wire types: mirrors of core types with OpenAPI schemas, converted with `From`, so the
//! core never depends on utoipa and the API shape is stated in one place. Request bodies reject
//! unknown fields, so a typo is an error rather than a silently ignored setting.

use mistborn_core::firewall::{
    CopperList, FirewallStatus, HistoryCount, ListMode, ListUpdate, Metrics, MetricsHistory,
    NewList, PolicyView, RefreshOutcome,
};
use mistborn_core::peers::{EnrollmentAnswer, ListenPort, NewPeer, Peer, PeerKind, PeerUpdate};
use mistborn_core::users::{ApiToken, NewToken, Role, User};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// What a user may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum RoleView {
    /// Manages everything.
    Superuser,
    /// Manages only their own profiles and tokens.
    Regular,
}

impl From<Role> for RoleView {
    fn from(r: Role) -> Self {
        match r {
            Role::Superuser => RoleView::Superuser,
            Role::Regular => RoleView::Regular,
        }
    }
}

impl From<RoleView> for Role {
    fn from(r: RoleView) -> Self {
        match r {
            RoleView::Superuser => Role::Superuser,
            RoleView::Regular => Role::Regular,
        }
    }
}

/// A user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct UserView {
    /// Stable id (UUID).
    pub id: String,
    /// Login name.
    pub username: String,
    /// Rights.
    pub role: RoleView,
    /// Creation time, Unix seconds.
    pub created_at: i64,
}

impl From<User> for UserView {
    fn from(u: User) -> Self {
        Self {
            id: u.id.to_string(),
            username: u.username.to_string(),
            role: u.role.into(),
            created_at: u.created_at,
        }
    }
}

/// Body of `POST /api/v1/users`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateUser {
    /// 1-32 lowercase letters, digits, '.', '_' or '-', starting with a letter or digit.
    #[schema(min_length = 1, max_length = 32, pattern = r"^[a-z0-9][a-z0-9._-]*$")]
    pub username: String,
    /// At least 8 characters.
    #[schema(min_length = 8, max_length = 1024)]
    pub password: String,
    /// Defaults to `regular`.
    #[serde(default = "regular")]
    pub role: RoleView,
}

fn regular() -> RoleView {
    RoleView::Regular
}

/// Body of `PUT /api/v1/users/{user}/role`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetRole {
    /// The new role.
    pub role: RoleView,
}

/// Body of `PUT /api/v1/users/{user}/password`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetPassword {
    /// At least 8 characters.
    #[schema(min_length = 8, max_length = 1024)]
    pub password: String,
}

/// An API token (never its secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TokenView {
    /// Token id, for revocation.
    pub id: String,
    /// Owner's user id.
    pub user_id: String,
    /// Label chosen at creation.
    pub name: String,
    /// Creation time, Unix seconds.
    pub created_at: i64,
    /// Last successful use, Unix seconds.
    pub last_used_at: Option<i64>,
}

impl From<ApiToken> for TokenView {
    fn from(t: ApiToken) -> Self {
        Self {
            id: t.id.to_string(),
            user_id: t.user_id.to_string(),
            name: t.name,
            created_at: t.created_at,
            last_used_at: t.last_used_at,
        }
    }
}

/// Body of `POST /api/v1/tokens`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateToken {
    /// A label: 1-64 printable characters, unique per user.
    #[schema(
        min_length = 1,
        max_length = 64,
        pattern = r"^[^\u0000-\u001f\u007f-\u009f]+$"
    )]
    pub name: String,
    /// Owner by id or username; defaults to the caller (others need a superuser).
    #[serde(default)]
    pub user: Option<String>,
}

/// A token just created: `secret` is shown this once and cannot be read again.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CreatedToken {
    /// The stored part.
    pub token: TokenView,
    /// The bearer secret for `Authorization: Bearer <secret>`.
    pub secret: String,
}

impl From<NewToken> for CreatedToken {
    fn from(t: NewToken) -> Self {
        Self {
            token: t.token.into(),
            secret: t.secret,
        }
    }
}

/// What a profile's device may do once the tunnel is up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ProfileKind {
    /// The tunnel is the only factor.
    Wireguard,
    /// The device reaches only Mistborn until its user signs in with a second factor.
    Mfa,
}

impl From<PeerKind> for ProfileKind {
    fn from(k: PeerKind) -> Self {
        match k {
            PeerKind::Wireguard => ProfileKind::Wireguard,
            PeerKind::Mfa => ProfileKind::Mfa,
        }
    }
}

impl From<ProfileKind> for PeerKind {
    fn from(k: ProfileKind) -> Self {
        match k {
            ProfileKind::Wireguard => PeerKind::Wireguard,
            ProfileKind::Mfa => PeerKind::Mfa,
        }
    }
}

/// Which UDP port the device dials.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ProfilePort {
    /// The server's configured WireGuard port.
    Default,
    /// UDP 53 (often open on restrictive networks).
    Udp53,
    /// UDP 443 (often open on restrictive networks).
    Udp443,
}

impl From<ListenPort> for ProfilePort {
    fn from(p: ListenPort) -> Self {
        match p {
            ListenPort::Default => ProfilePort::Default,
            ListenPort::Udp53 => ProfilePort::Udp53,
            ListenPort::Udp443 => ProfilePort::Udp443,
        }
    }
}

impl From<ProfilePort> for ListenPort {
    fn from(p: ProfilePort) -> Self {
        match p {
            ProfilePort::Default => ListenPort::Default,
            ProfilePort::Udp53 => ListenPort::Udp53,
            ProfilePort::Udp443 => ListenPort::Udp443,
        }
    }
}

/// A WireGuard profile (no secrets; fetch `/config` for the client config).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ProfileView {
    /// Stable id (UUID).
    pub id: String,
    /// Owner's user id.
    pub user_id: String,
    /// Owner's username.
    pub username: String,
    /// Display name, unique per user.
    pub name: String,
    /// WireGuard-only or MFA.
    pub kind: ProfileKind,
    /// Whether other tunnel clients may reach this device.
    pub client_to_client: bool,
    /// Which port the device dials.
    pub listen_port: ProfilePort,
    /// Tunnel IPv4 address.
    pub address_v4: String,
    /// Tunnel IPv6 address.
    pub address_v6: String,
    /// The device's WireGuard public key (base64).
    pub public_key: String,
    /// Whether Mistborn holds the private key (false when the device enrolled its own key).
    pub server_generated_key: bool,
    /// Creation time, Unix seconds.
    pub created_at: i64,
}

impl From<Peer> for ProfileView {
    fn from(p: Peer) -> Self {
        Self {
            id: p.id.to_string(),
            user_id: p.user_id.to_string(),
            username: p.username.to_string(),
            name: p.name.to_string(),
            kind: p.kind.into(),
            client_to_client: p.client_to_client,
            listen_port: p.listen_port.into(),
            address_v4: p.address_v4.to_string(),
            address_v6: p.address_v6.to_string(),
            public_key: p.public_key.to_base64(),
            server_generated_key: p.server_generated_key,
            created_at: p.created_at,
        }
    }
}

/// Body of `POST /api/v1/profiles`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateProfile {
    /// Display name: 1-64 printable characters, unique per user.
    #[schema(
        min_length = 1,
        max_length = 64,
        pattern = r"^[^\u0000-\u001f\u007f-\u009f]+$"
    )]
    pub name: String,
    /// Owner by id or username; defaults to the caller (others need a superuser).
    #[serde(default)]
    pub user: Option<String>,
    /// Defaults to `wireguard` for a superuser, to the configured `peers.regular_user_kind`
    /// (`mfa` unless changed) for a regular user, who may not ask for `wireguard` otherwise (403).
    #[serde(default)]
    pub kind: Option<ProfileKind>,
    /// Defaults to false.
    #[serde(default)]
    pub client_to_client: Option<bool>,
    /// Defaults to `default`; `udp53` and `udp443` are host-wide redirects only a superuser may
    /// choose (403).
    #[serde(default)]
    pub listen_port: Option<ProfilePort>,
    /// A device that generated its own key pair sends only its public key (base64); Mistborn then
    /// never holds the private key.
    #[serde(default)]
    #[schema(min_length = 44, max_length = 44, pattern = r"^[A-Za-z0-9+/]{43}=$")]
    pub public_key: Option<String>,
}

impl From<CreateProfile> for NewPeer {
    fn from(c: CreateProfile) -> Self {
        NewPeer {
            user: c.user,
            name: c.name,
            kind: c.kind.map(Into::into),
            client_to_client: c.client_to_client.unwrap_or(false),
            listen_port: c.listen_port.map(Into::into),
            public_key: c.public_key,
        }
    }
}

/// Body of `PATCH /api/v1/profiles/{id}`: absent fields stay as they are.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateProfile {
    /// New display name.
    #[schema(
        min_length = 1,
        max_length = 64,
        pattern = r"^[^\u0000-\u001f\u007f-\u009f]+$"
    )]
    #[serde(default)]
    pub name: Option<String>,
    /// New kind.
    #[serde(default)]
    pub kind: Option<ProfileKind>,
    /// New client-to-client flag.
    #[serde(default)]
    pub client_to_client: Option<bool>,
    /// New port choice.
    #[serde(default)]
    pub listen_port: Option<ProfilePort>,
}

impl From<UpdateProfile> for PeerUpdate {
    fn from(u: UpdateProfile) -> Self {
        PeerUpdate {
            name: u.name,
            kind: u.kind.map(Into::into),
            client_to_client: u.client_to_client,
            listen_port: u.listen_port.map(Into::into),
        }
    }
}

/// Query of list endpoints that can narrow to one user.
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct UserFilter {
    /// Only this user's items (id or username); superusers may name anyone.
    #[serde(default)]
    pub user: Option<String>,
}

/// Body of `POST /api/v1/profiles/enroll`: a device that generated its own key pair sends only
/// the public half.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EnrollDevice {
    /// Display name: 1-64 printable characters, unique per user.
    #[schema(
        min_length = 1,
        max_length = 64,
        pattern = r"^[^\u0000-\u001f\u007f-\u009f]+$"
    )]
    pub name: String,
    /// The device's WireGuard public key (base64).
    #[schema(min_length = 44, max_length = 44, pattern = r"^[A-Za-z0-9+/]{43}=$")]
    pub public_key: String,
    /// Owner by id or username; defaults to the caller (others need a superuser).
    #[serde(default)]
    pub user: Option<String>,
    /// Defaults to `wireguard` for a superuser, to the configured `peers.regular_user_kind`
    /// (`mfa` unless changed) for a regular user, who may not ask for `wireguard` otherwise (403).
    #[serde(default)]
    pub kind: Option<ProfileKind>,
    /// Defaults to false.
    #[serde(default)]
    pub client_to_client: Option<bool>,
    /// Defaults to `default`; `udp53` and `udp443` are host-wide redirects only a superuser may
    /// choose (403).
    #[serde(default)]
    pub listen_port: Option<ProfilePort>,
}

/// Everything a self-keyed device needs for its config except its private key, which it adds
/// itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Enrollment {
    /// The created profile's id.
    pub profile_id: String,
    /// Its display name.
    pub profile_name: String,
    /// WireGuard-only or MFA.
    pub kind: ProfileKind,
    /// The device's tunnel IPv4 address.
    pub address_v4: String,
    /// The device's tunnel IPv6 address.
    pub address_v6: String,
    /// Resolver addresses for the config's `DNS` line.
    pub dns: Vec<String>,
    /// The device public key that was registered.
    pub public_key: String,
    /// The server's public key.
    pub server_public_key: String,
    /// The profile's preshared key.
    pub preshared_key: String,
    /// Server host as devices reach it.
    pub endpoint_host: String,
    /// UDP port the device dials.
    pub endpoint_port: u16,
}

impl From<EnrollmentAnswer> for Enrollment {
    fn from(a: EnrollmentAnswer) -> Self {
        Self {
            profile_id: a.profile_id.to_string(),
            profile_name: a.profile_name.to_string(),
            kind: a.kind.into(),
            address_v4: a.address_v4.to_string(),
            address_v6: a.address_v6.to_string(),
            dns: a.dns.iter().map(ToString::to_string).collect(),
            public_key: a.public_key.to_base64(),
            server_public_key: a.server_public_key.to_base64(),
            preshared_key: a.preshared_key.to_base64(),
            endpoint_host: a.endpoint_host,
            endpoint_port: a.endpoint_port,
        }
    }
}
/// Whether a user has a second factor.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TotpStatusView {
    /// An enrollment was started.
    pub enrolled: bool,
    /// It was confirmed with a valid code.
    pub confirmed: bool,
    /// Recovery codes not used yet.
    pub recovery_codes_left: u32,
}

impl From<mistborn_core::auth::TotpStatus> for TotpStatusView {
    fn from(s: mistborn_core::auth::TotpStatus) -> Self {
        Self {
            enrolled: s.enrolled,
            confirmed: s.confirmed,
            recovery_codes_left: s.recovery_codes_left,
        }
    }
}

/// Names a user (defaults to the caller).
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserRef {
    /// User id or name; the caller when absent.
    pub user: Option<String>,
}

/// A new TOTP enrollment, shown once.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct EnrollmentView {
    /// The secret in base32, for typing into an authenticator app.
    pub secret: String,
    /// The `otpauth://` URI authenticator apps scan.
    pub otpauth_uri: String,
    /// The URI as a PNG QR code, base64.
    pub qr_png_base64: String,
}

impl From<mistborn_core::auth::Enrollment> for EnrollmentView {
    fn from(e: mistborn_core::auth::Enrollment) -> Self {
        use base64::Engine;
        Self {
            secret: e.secret_base32,
            otpauth_uri: e.otpauth_uri,
            qr_png_base64: base64::engine::general_purpose::STANDARD.encode(e.qr_png),
        }
    }
}

/// A TOTP code (or a recovery code, where accepted).
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CodeRequest {
    /// User id or name; the caller when absent (confirmation only).
    pub user: Option<String>,
    /// Six digits from the authenticator app, or a recovery code.
    pub code: String,
}

/// Recovery codes, shown once.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RecoveryCodes {
    /// Each works once in place of a TOTP code.
    pub recovery_codes: Vec<String>,
}

/// A login session bound to a tunnel address.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SessionView {
    /// Session id.
    pub id: String,
    /// Who signed in.
    pub username: String,
    /// The profile whose tunnel carried the login.
    pub profile_id: String,
    /// The tunnel address it is bound to.
    pub address: String,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds.
    pub expires_at: i64,
}

impl From<mistborn_core::auth::Session> for SessionView {
    fn from(s: mistborn_core::auth::Session) -> Self {
        Self {
            id: s.id.to_string(),
            username: s.username.to_string(),
            profile_id: s.peer_id.to_string(),
            address: s.address.to_string(),
            created_at: s.created_at,
            expires_at: s.expires_at,
        }
    }
}

/// Who the caller is on the tunnel.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct WhoAmI {
    /// The tunnel address the request came from, if any.
    pub address: Option<String>,
    /// The user behind it.
    pub username: Option<String>,
    /// The profile behind it.
    pub profile: Option<String>,
    /// Whether the profile needs a second factor.
    pub mfa: bool,
    /// Whether the device may act as its user now.
    pub verified: bool,
    /// Whether the user has a confirmed second factor.
    pub totp_confirmed: bool,
}

/// Whether the firewall is in force.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct FirewallStatusView {
    /// The table is applied and current.
    pub on: bool,
    /// Why not (or why the last change failed).
    pub reason: Option<String>,
    /// The external interface in use (the default route's, unless configured).
    pub external_interface: Option<String>,
    /// Full table replaces done since the server started.
    pub full_applies: u64,
    /// Element batches sent over netlink (logins, sign-outs, profile changes).
    pub element_updates: u64,
    /// Duration of the last full replace, in milliseconds.
    pub last_full_apply_ms: Option<u64>,
    /// IP forwarding in the firewall's network namespace (absent until the table is in force:
    /// forwarding is turned on only behind it).
    pub forwarding: Option<ForwardingView>,
}

/// IP forwarding, which tunnel clients need to reach the internet (`firewall.ip_forwarding`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ForwardingView {
    /// `net.ipv4.ip_forward` is 1.
    pub ipv4: bool,
    /// `net.ipv6.conf.all.forwarding` is 1.
    pub ipv6: bool,
    /// Interfaces whose `accept_ra` was raised from 1 to 2 (router advertisements keep counting
    /// while forwarding).
    pub accept_ra_raised: Vec<String>,
    /// Why forwarding is (partly) off, or not managed.
    pub reason: Option<String>,
}

impl From<FirewallStatus> for FirewallStatusView {
    fn from(s: FirewallStatus) -> Self {
        Self {
            on: s.on,
            reason: s.reason,
            external_interface: s.external_interface,
            full_applies: s.full_applies,
            element_updates: s.element_updates,
            last_full_apply_ms: s.last_full_apply_ms,
            forwarding: s.forwarding.map(|f| ForwardingView {
                ipv4: f.ipv4,
                ipv6: f.ipv6,
                accept_ra_raised: f.accept_ra_raised,
                reason: f.reason,
            }),
        }
    }
}

/// A Coppercloud list in the policy in force.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PolicyListView {
    /// List id.
    pub id: String,
    /// `block` or `allow`.
    pub mode: String,
    /// Merged IPv4 ranges.
    pub ranges_v4: u64,
    /// Merged IPv6 ranges.
    pub ranges_v6: u64,
}

/// The policy in force (sizes and addresses, not the Coppercloud elements).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct FirewallPolicyView {
    /// The nftables table (`inet mistborn`).
    pub table: String,
    /// Tunnel interface.
    pub tunnel_interface: String,
    /// External interface, if any.
    pub external_interface: Option<String>,
    /// WireGuard UDP port.
    pub wireguard_port: u16,
    /// Alternate ports redirected to it (53, 443).
    pub redirect_ports: Vec<u16>,
    /// SSH port.
    pub ssh_port: u16,
    /// Source allowed to reach SSH from outside the tunnel.
    pub admin_source: Option<String>,
    /// Web ports open to the tunnel.
    pub web_ports: Vec<u16>,
    /// Container bridges shielded from outside.
    pub container_bridges: Vec<String>,
    /// Tunnel addresses waiting for an MFA login (they reach only Mistborn).
    pub mfa_pending: Vec<String>,
    /// Tunnel addresses other clients may reach.
    pub client_to_client: Vec<String>,
    /// Coppercloud lists in force.
    pub lists: Vec<PolicyListView>,
}

impl From<PolicyView> for FirewallPolicyView {
    fn from(p: PolicyView) -> Self {
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
                .map(|l| PolicyListView {
                    id: l.id,
                    mode: l.mode,
                    ranges_v4: l.ranges_v4,
                    ranges_v6: l.ranges_v6,
                })
                .collect(),
        }
    }
}

/// The firewall's status and the policy in force (absent while it is off).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct FirewallPolicy {
    /// Whether the table is in force, and why not.
    pub status: FirewallStatusView,
    /// The policy applied, if one is.
    pub policy: Option<FirewallPolicyView>,
}

/// Unsolicited packets from one source to one port.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ProbeView {
    /// Source address.
    pub source: String,
    /// `tcp` or `udp`.
    pub protocol: String,
    /// Destination port.
    pub port: u16,
    /// Packets.
    pub packets: u64,
}

/// Packets to one port over all sources.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PortCountView {
    /// `tcp` or `udp`.
    pub protocol: String,
    /// Destination port.
    pub port: u16,
    /// Packets.
    pub packets: u64,
    /// Distinct sources.
    pub sources: u64,
}

/// Packets from one source over all ports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SourceCountView {
    /// Source address.
    pub source: String,
    /// Packets.
    pub packets: u64,
    /// Distinct ports.
    pub ports: u64,
}

/// Packets from one source network (/24 for IPv4, /48 for IPv6).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct NetworkCountView {
    /// The network, e.g. `198.51.100.0/24`.
    pub network: String,
    /// Packets.
    pub packets: u64,
}

/// Probe packets the firewall's bounded per-source sets could not keep (a scan filled them);
/// they are in `total` and per port all the same.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct UnkeptView {
    /// Not counted per source network.
    pub networks: u64,
    /// Not counted per source.
    pub sources: u64,
    /// Not counted per (source, port) pair.
    pub probes: u64,
}

/// Hits of one Coppercloud list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ListHitsView {
    /// List id.
    pub id: String,
    /// Packets that matched.
    pub packets: u64,
    /// Bytes that matched.
    pub bytes: u64,
}

/// What the firewall counted since its table was last replaced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct FirewallMetricsView {
    /// Every unsolicited packet dropped (exact, whatever the scan).
    pub total: u64,
    /// What the bounded per-source sets could not keep.
    pub unkept: UnkeptView,
    /// Most probed ports, most packets first (exact counts).
    pub top_ports: Vec<PortCountView>,
    /// Most active source networks, most packets first.
    pub top_networks: Vec<NetworkCountView>,
    /// Most active sources, most packets first.
    pub top_sources: Vec<SourceCountView>,
    /// The busiest (source, port) pairs, most packets first (as many as `top`).
    pub probes: Vec<ProbeView>,
    /// Coppercloud hits per list.
    pub lists: Vec<ListHitsView>,
}

impl FirewallMetricsView {
    /// The view of `m` with at most `top` probe pairs.
    pub fn of(m: Metrics, top: usize) -> Self {
        Self {
            total: m.total,
            unkept: UnkeptView {
                networks: m.unkept.networks,
                sources: m.unkept.sources,
                probes: m.unkept.probes,
            },
            top_networks: m
                .top_networks
                .into_iter()
                .map(|n| NetworkCountView {
                    network: n.network.to_string(),
                    packets: n.packets,
                })
                .collect(),
            top_ports: m
                .top_ports
                .into_iter()
                .map(|p| PortCountView {
                    protocol: p.protocol,
                    port: p.port,
                    packets: p.packets,
                    sources: p.sources,
                })
                .collect(),
            top_sources: m
                .top_sources
                .into_iter()
                .map(|s| SourceCountView {
                    source: s.source.to_string(),
                    packets: s.packets,
                    ports: s.ports,
                })
                .collect(),
            probes: m
                .probes
                .into_iter()
                .take(top)
                .map(|p| ProbeView {
                    source: p.source.to_string(),
                    protocol: p.protocol,
                    port: p.port,
                    packets: p.packets,
                })
                .collect(),
            lists: m
                .lists
                .into_iter()
                .map(|l| ListHitsView {
                    id: l.id,
                    packets: l.packets,
                    bytes: l.bytes,
                })
                .collect(),
        }
    }
}

/// Probes and list hits in one time bucket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct HistoryBucketView {
    /// Bucket start (Unix seconds).
    pub start: i64,
    /// Probe packets.
    pub probes: u64,
    /// Coppercloud list hits.
    pub list_hits: u64,
}

/// A key ranked over the window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct HistoryCountView {
    /// `protocol/port`, source address, or list id.
    pub key: String,
    /// Packets in the window.
    pub packets: u64,
}

/// Probe and hit counts over time, sampled from the firewall's counters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct MetricsHistoryView {
    /// Window start (Unix seconds).
    pub since: i64,
    /// Bucket width (seconds).
    pub bucket_secs: i64,
    /// Probe packets in the window.
    pub total_probes: u64,
    /// Buckets with samples, oldest first.
    pub buckets: Vec<HistoryBucketView>,
    /// Most probed ports (`protocol/port`) over the window.
    pub top_ports: Vec<HistoryCountView>,
    /// Most active source networks (/24, /48) over the window.
    pub top_networks: Vec<HistoryCountView>,
    /// Most active sources over the window.
    pub top_sources: Vec<HistoryCountView>,
    /// Probe packets the firewall's full per-source sets could not keep, per `networks`,
    /// `sources` and `probes` (pairs): in the totals all the same.
    pub unkept: Vec<HistoryCountView>,
    /// Hits per Coppercloud list id over the window.
    pub lists: Vec<HistoryCountView>,
}

impl From<MetricsHistory> for MetricsHistoryView {
    fn from(h: MetricsHistory) -> Self {
        let counts = |v: Vec<HistoryCount>| {
            v.into_iter()
                .map(|c| HistoryCountView {
                    key: c.key,
                    packets: c.packets,
                })
                .collect()
        };
        Self {
            since: h.since,
            bucket_secs: h.bucket_secs,
            total_probes: h.total_probes,
            buckets: h
                .buckets
                .into_iter()
                .map(|b| HistoryBucketView {
                    start: b.start,
                    probes: b.probes,
                    list_hits: b.list_hits,
                })
                .collect(),
            top_ports: counts(h.top_ports),
            top_networks: counts(h.top_networks),
            top_sources: counts(h.top_sources),
            unkept: counts(h.unkept),
            lists: counts(h.lists),
        }
    }
}

/// What a Coppercloud list does with its addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ListModeView {
    /// Traffic to and from these addresses is dropped.
    Block,
    /// These addresses are exempt from every block list.
    Allow,
}

impl From<ListMode> for ListModeView {
    fn from(m: ListMode) -> Self {
        match m {
            ListMode::Block => ListModeView::Block,
            ListMode::Allow => ListModeView::Allow,
        }
    }
}

impl From<ListModeView> for ListMode {
    fn from(m: ListModeView) -> Self {
        match m {
            ListModeView::Block => ListMode::Block,
            ListModeView::Allow => ListMode::Allow,
        }
    }
}

/// A Coppercloud IP list (without its content).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CopperListView {
    /// Stable id.
    pub id: String,
    /// Unique name.
    pub name: String,
    /// Block or allow.
    pub mode: ListModeView,
    /// Download source; absent for an upload.
    pub url: Option<String>,
    /// Whether the firewall uses it.
    pub enabled: bool,
    /// Entries in the last good copy.
    pub entries: u64,
    /// When the last good copy was stored (Unix seconds).
    pub refreshed_at: Option<i64>,
    /// Why the last refresh was refused; the last good copy stays in force.
    pub last_error: Option<String>,
    /// Created (Unix seconds).
    pub created_at: i64,
    /// Last changed (Unix seconds).
    pub updated_at: i64,
}

impl From<CopperList> for CopperListView {
    fn from(l: CopperList) -> Self {
        Self {
            id: l.id,
            name: l.name,
            mode: l.mode.into(),
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

/// A new Coppercloud list: `url` (downloaded now, then on the schedule), `content` (an upload:
/// one address, CIDR or `first-last` range a line, `#` comments), or both.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateCopperList {
    /// Unique name.
    pub name: String,
    /// Block (default) or allow.
    #[serde(default)]
    pub mode: Option<ListModeView>,
    /// http(s) URL.
    #[serde(default)]
    pub url: Option<String>,
    /// The list text.
    #[serde(default)]
    pub content: Option<String>,
}

impl From<CreateCopperList> for NewList {
    fn from(c: CreateCopperList) -> Self {
        NewList {
            name: c.name,
            mode: c.mode.map(Into::into).unwrap_or_default(),
            url: c.url,
            content: c.content,
        }
    }
}

/// A change to a Coppercloud list; absent fields stay as they are. A new `url` is downloaded
/// now (unless `content` is given); bad content or a failed download changes nothing.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateCopperList {
    /// New name.
    #[serde(default)]
    pub name: Option<String>,
    /// New mode.
    #[serde(default)]
    pub mode: Option<ListModeView>,
    /// Use it or not.
    #[serde(default)]
    pub enabled: Option<bool>,
    /// New download source.
    #[serde(default)]
    pub url: Option<String>,
    /// New list text.
    #[serde(default)]
    pub content: Option<String>,
}

impl From<UpdateCopperList> for ListUpdate {
    fn from(u: UpdateCopperList) -> Self {
        ListUpdate {
            name: u.name,
            mode: u.mode.map(Into::into),
            enabled: u.enabled,
            url: u.url,
            content: u.content,
        }
    }
}

/// The result of a refresh.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CopperRefreshView {
    /// The list afterwards.
    pub list: CopperListView,
    /// Whether a new copy replaced the old one.
    pub updated: bool,
}

impl From<RefreshOutcome> for CopperRefreshView {
    fn from(r: RefreshOutcome) -> Self {
        Self {
            list: r.list.into(),
            updated: r.updated,
        }
    }
}
