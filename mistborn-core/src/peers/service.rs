//! The profile rules: ownership, allocation, keys and rendering.

use std::net::IpAddr;

use super::alloc::AddressPool;
use super::qr::{qr_png, qr_terminal};
use super::render::ClientConfig;
use super::store::{self, Insert, PeerRow};
use super::types::{ListenPort, NewPeer, Peer, PeerId, PeerKind, PeerUpdate, ProfileName};
use crate::actor::Actor;
use crate::crypto::{KeyPair, WgKey};
use crate::error::{Error, Result};
use crate::mistborn::{Mistborn, PeerChange};
use crate::store::{conflict_if_taken, is_unique_violation, now_unix};
use crate::users::User;

/// How often a create is retried when a uniqueness rule fires that its own checks did not see (a
/// concurrent rename to the same name, another process's schema-level race). Address allocation
/// itself never collides: it happens under the profiles revision lock (see `store::insert_allocating`).
const INSERT_ATTEMPTS: usize = 8;

/// The profiles API of a [`Mistborn`] handle.
#[derive(Debug, Clone, Copy)]
pub struct Peers<'a> {
    pub(crate) m: &'a Mistborn,
}

impl Peers<'_> {
    fn pool(&self) -> &sqlx::AnyPool {
        self.m.store().pool()
    }

    fn addrs(&self) -> AddressPool {
        self.m.address_pool()
    }

    /// The owner a new profile goes to: the named user (needs rights) or the actor.
    async fn owner(&self, actor: &Actor, user: Option<&str>) -> Result<User> {
        match (user, actor.user_id()) {
            (Some(key), _) => self.m.users().get(actor, key).await,
            (None, Some(id)) => self.m.users().get(actor, id.as_str()).await,
            (None, None) => Err(Error::invalid("user", "name the user who owns the profile")),
        }
    }

    /// Creates a profile: allocates its addresses, makes (or takes) its keys.
    ///
    /// Regular users get [`PeersConfig::regular_user_kind`](super::PeersConfig) when they ask for no
    /// kind, may not choose WireGuard-only unless that setting allows it, may not choose UDP 53/443
    /// (host-wide redirects), and may have at most `max_profiles_per_user` profiles. Superusers
    /// decide freely.
    pub async fn create(&self, actor: &Actor, new: NewPeer) -> Result<Peer> {
        let owner = self.owner(actor, new.user.as_deref()).await?;
        let name: ProfileName = new.name.parse()?;
        let rules = self.m.config().peers;
        let kind = new.kind.unwrap_or_else(|| self.default_kind(actor));
        let listen_port = new.listen_port.unwrap_or_default();
        self.check_choices(actor, kind, listen_port)?;
        let quota = (!actor.is_superuser()).then_some(rules.max_profiles_per_user);
        let device_key = new
            .public_key
            .as_deref()
            .map(str::parse::<WgKey>)
            .transpose()?;
        let (public_key, private_key) = match device_key {
            Some(public) => (public, None),
            None => {
                let kp = KeyPair::generate();
                (
                    kp.public,
                    Some(self.m.secrets().seal(kp.private.as_bytes())?),
                )
            }
        };
        let preshared_key = self
            .m
            .secrets()
            .seal(WgKey::generate_preshared().as_bytes())?;
        let addrs = self.addrs();
        let taken = || {
            Error::Conflict(format!(
                "user '{}' already has a profile named '{name}'",
                owner.username
            ))
        };
        for _ in 0..INSERT_ATTEMPTS {
            let (address_v4, address_v6) = addrs.server_addresses(); // set by the allocation
            let mut row = PeerRow {
                peer: Peer {
                    id: PeerId::generate(),
                    user_id: owner.id.clone(),
                    username: owner.username.clone(),
                    name: name.clone(),
                    kind,
                    client_to_client: new.client_to_client,
                    listen_port,
                    address_v4,
                    address_v6,
                    public_key: public_key.clone(),
                    server_generated_key: private_key.is_some(),
                    created_at: now_unix(),
                },
                addr_index: 0,
                private_key: private_key.clone(),
                preshared_key: preshared_key.clone(),
            };
            match store::insert_allocating(self.pool(), &addrs, &mut row, quota).await {
                Ok(Insert::Stored(rev)) => {
                    self.m
                        .notify_peers(rev, PeerChange::Profiles(vec![row.peer.id.clone()]));
                    return Ok(row.peer);
                }
                Ok(Insert::NameTaken) => return Err(taken()),
                Ok(Insert::OverQuota) => {
                    return Err(Error::Forbidden(format!(
                        "user '{}' already has {} profiles, the most a regular user may have \
                         (peers.max_profiles_per_user = {}); delete one or ask a superuser",
                        owner.username, rules.max_profiles_per_user, rules.max_profiles_per_user
                    )));
                }
                Err(Error::Store(e)) if is_unique_violation(&e) => {
                    if self.key_in_use(&public_key).await? {
                        return Err(Error::Conflict(
                            "this public key already belongs to another profile; generate a new key pair".into(),
                        ));
                    }
                    // A concurrent writer made the name or address taken after the checks: look again.
                }
                Err(e) => return Err(e),
            }
        }
        Err(Error::Conflict(
            "could not store the profile: concurrent changes kept taking its name or address; try again"
                .into(),
        ))
    }

    /// The kind a new profile gets when the request names none: `wireguard` from a superuser,
    /// [`PeersConfig::regular_user_kind`](super::PeersConfig) from a regular user.
    pub fn default_kind(&self, actor: &Actor) -> PeerKind {
        if actor.is_superuser() {
            PeerKind::Wireguard
        } else {
            self.m.config().peers.regular_user_kind
        }
    }

    /// The superuser-only choices: a WireGuard-only profile (unless the config lets regular users
    /// choose it) and the host-wide UDP 53/443 redirects.
    fn check_choices(&self, actor: &Actor, kind: PeerKind, port: ListenPort) -> Result<()> {
        if actor.is_superuser() {
            return Ok(());
        }
        if kind == PeerKind::Wireguard && self.m.config().peers.regular_user_kind != kind {
            return Err(Error::Forbidden(
                "kind 'wireguard' (the tunnel as the only factor) is given by a superuser; \
                 regular users' profiles are 'mfa' (peers.regular_user_kind)"
                    .into(),
            ));
        }
        if port != ListenPort::Default {
            return Err(Error::Forbidden(format!(
                "listen_port '{}' is a host-wide redirect that only a superuser may choose",
                port.as_str()
            )));
        }
        Ok(())
    }

    async fn key_in_use(&self, key: &WgKey) -> Result<bool> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM peers WHERE public_key = $1")
            .bind(key.to_base64())
            .fetch_one(self.pool())
            .await?;
        Ok(n > 0)
    }

    /// The profiles the actor may see: all for a superuser, their own for a regular user.
    ///
    /// A stored row that no longer parses is logged and left out, so one corrupt row never hides
    /// the others; the data plane reports it (with its id and reason) in the status's `skipped`
    /// list, and [`Peers::delete`] still removes it.
    pub async fn list(&self, actor: &Actor) -> Result<Vec<Peer>> {
        let owner = if actor.is_superuser() {
            None
        } else {
            actor.user_id()
        };
        self.readable(owner).await
    }

    /// The profiles of one user (oneself, or anyone as a superuser); corrupt rows are left out as
    /// in [`Peers::list`].
    pub async fn list_for_user(&self, actor: &Actor, user_key: &str) -> Result<Vec<Peer>> {
        let user = self.m.users().get(actor, user_key).await?;
        self.readable(Some(&user.id)).await
    }

    async fn readable(&self, owner: Option<&crate::users::UserId>) -> Result<Vec<Peer>> {
        Ok(store::list_all(self.pool(), &self.addrs(), owner)
            .await?
            .into_iter()
            .filter_map(|r| match r {
                Ok(row) => Some(row.peer),
                Err(e) => {
                    tracing::warn!(error = %e, "listing profiles: skipping a stored row that does not parse");
                    None
                }
            })
            .collect())
    }

    /// The profile behind a tunnel address (IPv4 or IPv6), with no authorization check: the tunnel
    /// itself authenticated the device. For the auth, DNS and status domains.
    pub async fn by_tunnel_address(&self, addr: IpAddr) -> Result<Option<Peer>> {
        let Some(index) = self.addrs().index_of(addr) else {
            return Ok(None);
        };
        Ok(store::get_by_index(self.pool(), &self.addrs(), index)
            .await?
            .map(|r| r.peer))
    }

    /// One row the actor may see; others' profiles are "not found" to regular users.
    async fn row(&self, actor: &Actor, id: &str) -> Result<PeerRow> {
        let not_found = || Error::not_found(format!("profile {id}"));
        let id: PeerId = id.parse().map_err(|_| not_found())?;
        store::get(self.pool(), &self.addrs(), &id)
            .await?
            .filter(|r| actor.may_access(&r.peer.user_id))
            .ok_or_else(not_found)
    }

    /// One profile by id.
    pub async fn get(&self, actor: &Actor, id: &str) -> Result<Peer> {
        Ok(self.row(actor, id).await?.peer)
    }

    /// A profile by its name among a user's profiles (the actor's own when `user` is `None`).
    pub async fn find(&self, actor: &Actor, user: Option<&str>, name: &str) -> Result<Peer> {
        let owner = self.owner(actor, user).await?;
        store::find_by_name(self.pool(), &self.addrs(), &owner.id, name)
            .await?
            .map(|r| r.peer)
            .ok_or_else(|| {
                Error::not_found(format!("profile '{name}' of user '{}'", owner.username))
            })
    }

    /// Changes name, kind, client-to-client or port choice. Making a profile WireGuard-only or
    /// choosing UDP 53/443 are superuser decisions, as in [`Peers::create`].
    pub async fn update(&self, actor: &Actor, id: &str, change: PeerUpdate) -> Result<Peer> {
        let mut peer = self.row(actor, id).await?.peer;
        // Only a change needs the right to make it: an owner may send back the values a
        // superuser chose.
        let kind = change.kind.filter(|k| *k != peer.kind);
        let port = change.listen_port.filter(|p| *p != peer.listen_port);
        self.check_choices(
            actor,
            kind.unwrap_or(PeerKind::Mfa),
            port.unwrap_or(ListenPort::Default),
        )?;
        if let Some(name) = change.name {
            peer.name = name.parse()?;
        }
        if let Some(kind) = kind {
            peer.kind = kind;
        }
        if let Some(c2c) = change.client_to_client {
            peer.client_to_client = c2c;
        }
        if let Some(port) = port {
            peer.listen_port = port;
        }
        let rev = store::update(self.pool(), &peer)
            .await
            .map_err(conflict_if_taken(|| {
                format!(
                    "user '{}' already has a profile named '{}'",
                    peer.username, peer.name
                )
            }))?;
        self.m
            .notify_peers(rev, PeerChange::Profiles(vec![peer.id.clone()]));
        Ok(peer)
    }

    /// Deletes a profile; its address is free again and the data plane drops the device.
    /// Only the owner is read first, so a stored row that no longer parses can still be removed.
    pub async fn delete(&self, actor: &Actor, id: &str) -> Result<()> {
        let not_found = || Error::not_found(format!("profile {id}"));
        let id: PeerId = id.parse().map_err(|_| not_found())?;
        store::owner_of(self.pool(), &id)
            .await?
            .filter(|owner| actor.may_access(owner))
            .ok_or_else(not_found)?;
        let rev = store::delete(self.pool(), &id).await?;
        self.m.notify_peers(rev, PeerChange::Profiles(vec![id]));
        Ok(())
    }

    /// The client config of a profile.
    pub async fn client_config(&self, actor: &Actor, id: &str) -> Result<ClientConfig> {
        let row = self.row(actor, id).await?;
        let secrets = self.m.secrets();
        let private_key = row
            .private_key
            .as_deref()
            .map(|sealed| key_from_bytes(&secrets.open(sealed)?))
            .transpose()?;
        let preshared_key = key_from_bytes(&secrets.open(&row.preshared_key)?)?;
        let (dns4, dns6) = self.addrs().server_addresses();
        let config = self.m.config();
        Ok(ClientConfig {
            profile_name: row.peer.name.to_string(),
            address_v4: row.peer.address_v4,
            address_v6: row.peer.address_v6,
            dns: vec![IpAddr::V4(dns4), IpAddr::V6(dns6)],
            private_key,
            server_public_key: self.m.server_public_key().clone(),
            preshared_key,
            endpoint_host: config.endpoint.clone(),
            endpoint_port: row.peer.listen_port.port(config.wireguard.listen_port),
        })
    }

    /// The client config as a PNG QR code.
    pub async fn qr_png(&self, actor: &Actor, id: &str) -> Result<Vec<u8>> {
        qr_png(&self.client_config(actor, id).await?.render(), 6)
    }

    /// The client config as a terminal QR code.
    pub async fn qr_terminal(&self, actor: &Actor, id: &str) -> Result<String> {
        qr_terminal(&self.client_config(actor, id).await?.render())
    }
}

pub(crate) fn key_from_bytes(bytes: &[u8]) -> Result<WgKey> {
    let arr: [u8; 32] = bytes
        .try_into()
        .map_err(|_| Error::Corrupt("a stored key is not 32 bytes".into()))?;
    Ok(WgKey::from_bytes(arr))
}
