//! The [`Mistborn`] handle: opens the store, bootstraps a first start, and hands out the typed
//! per-domain APIs. Changes are announced on a broadcast channel so the data-plane reconcilers (and
//! status streams) react without frontends having to know about them. Every write also bumps its
//! domain's revision in the store, so the daemon's change watcher
//! ([`crate::daemon::ChangeWatcher`]) broadcasts the same [`Change`]s for writes made by other
//! processes.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use tokio::sync::broadcast;

use crate::actor::Actor;
use crate::auth::{Auth, Throttle};
use crate::config::Config;
use crate::crypto::{KeyPair, SecretBox, WgKey};
use crate::error::{Error, Result};
use crate::peers::{AddressPool, NewPeer, PeerId, Peers};
use crate::status::{DataPlaneStatus, StatusHub};
use crate::store::revision::{self, Domain};
use crate::store::{Backup, Store};
use crate::users::{NewUser, Role, Users};

/// What changed in the store, for reconcilers and status streams.
///
/// A write of this process is announced precisely. A write of another process (seen through the
/// revisions) is announced as broadly as the revision tells: [`Change::Users`],
/// [`Change::Peers`]`(`[`PeerChange::All`]`)`, [`Change::Dns`], [`Change::Firewall`], and for
/// sessions one [`Change::Access`] per tunnel address whose access changed (the watcher compares
/// the open addresses before and after).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// Users, roles, passwords or tokens (reload any user you keep).
    Users,
    /// Profiles (added, removed, edited): which ones, when known.
    Peers(PeerChange),
    /// A tunnel address gained or lost its login (MFA gating: the firewall opens or closes it).
    Access {
        /// The tunnel address.
        address: std::net::IpAddr,
        /// Whether it may now reach beyond Mistborn.
        open: bool,
    },
    /// DNS lists or rules.
    Dns,
    /// Firewall settings (Coppercloud lists).
    Firewall,
}

/// Which profiles a [`Change::Peers`] is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PeerChange {
    /// These profiles were created, edited or deleted (reload just these rows).
    Profiles(Vec<PeerId>),
    /// Any profile may have changed: a user was deleted with their profiles, or another process
    /// (the CLI, a restore) wrote the store. Reload them all.
    All,
}

/// File names inside the data dir.
pub mod files {
    /// Key that seals secrets at rest.
    pub const SECRET_KEY: &str = "secret.key";
    /// The first superuser's generated password.
    pub const ADMIN_PASSWORD: &str = "admin-password";
}

const SERVER_KEY_SETTING: &str = "wireguard.server_private_key";
/// The first superuser's name.
pub const ADMIN_USERNAME: &str = "admin";
/// The name of admin's first profile.
pub const DEFAULT_PROFILE: &str = "default";

struct Inner {
    config: Config,
    store: Store,
    secrets: SecretBox,
    server_keys: KeyPair,
    changes: broadcast::Sender<Change>,
    /// Per domain ([`Domain::index`]), the newest revision this process has announced: its own
    /// writes, and other processes' writes the change watcher broadcast.
    announced: [AtomicI64; Domain::ALL.len()],
    throttle: std::sync::Mutex<Throttle>,
    status: StatusHub,
    /// The DNS query log's own database, opened on first use.
    dns_log: tokio::sync::OnceCell<crate::dns::logstore::LogStore>,
}

/// One open Mistborn: cheap to clone, shared by every frontend in the process.
#[derive(Clone)]
pub struct Mistborn {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Mistborn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mistborn")
            .field("data_dir", &self.inner.config.data_dir)
            .finish_non_exhaustive()
    }
}

/// What a first start created, for the operator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FirstStart {
    /// Where the admin password was written.
    pub admin_password_file: PathBuf,
}

impl Mistborn {
    /// Opens (and on first start initialises) Mistborn: data dir, key file, store and migrations,
    /// the server key pair, and the `admin` superuser with a default profile.
    pub async fn open(config: Config) -> Result<Self> {
        Ok(Self::open_reporting(config).await?.0)
    }

    /// Like [`Mistborn::open`], also telling whether this was the first start.
    pub async fn open_reporting(config: Config) -> Result<(Self, Option<FirstStart>)> {
        config.validate()?;
        crate::crypto::private_dir(&config.data_dir, files::SECRET_KEY)?;
        let secrets = SecretBox::open_or_create(&config.data_dir.join(files::SECRET_KEY))?;
        let store = Store::connect(&config.effective_database_url()).await?;

        let fresh = secrets.seal(KeyPair::generate().private.as_bytes())?;
        let sealed = store.setting_init(SERVER_KEY_SETTING, &fresh).await?;
        let private = crate::peers::key_from_bytes(&secrets.open(&sealed)?)?;
        let server_keys = KeyPair::from_private(private);

        let announced = revision::read_all(store.pool()).await?.map(AtomicI64::new);
        let (changes, _) = broadcast::channel(256);
        let throttle = std::sync::Mutex::new(Throttle::new(config.auth.throttle));
        let status = StatusHub::new(DataPlaneStatus::off(
            &config.wireguard.interface,
            config.wireguard.listen_port,
            "the data plane is not running in this process",
        ));
        let m = Self {
            inner: Arc::new(Inner {
                status,
                config,
                store,
                secrets,
                server_keys,
                changes,
                announced,
                throttle,
                dns_log: tokio::sync::OnceCell::new(),
            }),
        };
        let first = m.bootstrap().await?;
        Ok((m, first))
    }

    /// Creates `admin` and its default profile when the store has no user yet.
    async fn bootstrap(&self) -> Result<Option<FirstStart>> {
        if crate::users::count(self.store().pool()).await? > 0 {
            return Ok(None);
        }
        let password = crate::crypto::new_token()
            .trim_start_matches(crate::crypto::TOKEN_PREFIX)
            .chars()
            .take(24)
            .collect::<String>();
        let path = self.inner.config.data_dir.join(files::ADMIN_PASSWORD);
        crate::crypto::write_private_file(&path, format!("{password}\n").as_bytes())?;
        let admin = self
            .users()
            .create(
                &Actor::System,
                NewUser {
                    username: ADMIN_USERNAME.into(),
                    password,
                    role: Role::Superuser,
                },
            )
            .await?;
        self.peers()
            .create(
                &Actor::System,
                NewPeer {
                    user: Some(admin.id.to_string()),
                    name: DEFAULT_PROFILE.into(),
                    ..NewPeer::default()
                },
            )
            .await?;
        tracing::info!(path = %path.display(), "first start: created superuser 'admin'");
        Ok(Some(FirstStart {
            admin_password_file: path,
        }))
    }

    /// The users API.
    pub fn users(&self) -> Users<'_> {
        Users { m: self }
    }

    /// The profiles API.
    pub fn peers(&self) -> Peers<'_> {
        Peers { m: self }
    }

    /// The auth API: second factor, sessions, forward-auth.
    pub fn auth(&self) -> Auth<'_> {
        Auth { m: self }
    }

    /// The firewall API: Coppercloud lists.
    pub fn firewall(&self) -> crate::firewall::Firewall<'_> {
        crate::firewall::Firewall { m: self }
    }

    /// The TLS API: local CA and the service certificate.
    pub fn tls(&self) -> crate::tls::Tls<'_> {
        crate::tls::Tls { m: self }
    }

    /// The DNS API (lists, rules, query log, statistics).
    pub fn dns(&self) -> crate::dns::Dns<'_> {
        crate::dns::Dns { m: self }
    }

    /// The configuration in force.
    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// The server's WireGuard public key.
    pub fn server_public_key(&self) -> &WgKey {
        &self.inner.server_keys.public
    }

    /// The server's WireGuard key pair, for the data plane.
    pub fn server_keys(&self) -> &KeyPair {
        &self.inner.server_keys
    }

    /// The tunnel address pool.
    pub fn address_pool(&self) -> AddressPool {
        let wg = &self.inner.config.wireguard;
        AddressPool::new(wg.subnet_v4, wg.subnet_v6)
    }

    /// Live status: the data plane's state and peer statistics, filtered per viewer.
    pub fn status(&self) -> &StatusHub {
        &self.inner.status
    }

    /// Subscribes to store changes.
    pub fn subscribe(&self) -> broadcast::Receiver<Change> {
        self.inner.changes.subscribe()
    }

    pub(crate) fn notify(&self, change: Change) {
        // No subscriber is fine: nothing to reconcile in that process.
        let _ = self.inner.changes.send(change);
    }

    /// Records a write of this process that is already committed: bumps `domain`'s revision in a
    /// transaction of its own (with NOTIFY on PostgreSQL) and broadcasts `changes` here. A failed
    /// bump is logged, not returned: the write itself stands, and other processes then see it at
    /// the domain's next write or their next start.
    pub(crate) async fn changed(&self, domain: Domain, changes: impl IntoIterator<Item = Change>) {
        match revision::bump_alone(self.store().pool(), domain).await {
            Ok(rev) => {
                self.announce(domain, rev);
            }
            Err(e) => tracing::warn!(%domain, error = %e, "cannot bump the revision"),
        }
        for change in changes {
            self.notify(change);
        }
    }

    /// Marks revision `rev` of `domain`, made by this process, as announced, when it directly
    /// follows the last one announced. When the counter skipped a value, another process wrote in
    /// between: the mark stays behind so the change watcher announces that write too.
    pub(crate) fn announce(&self, domain: Domain, rev: i64) -> bool {
        self.inner.announced[domain.index()]
            .compare_exchange(rev - 1, rev, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok()
    }

    /// Moves `domain`'s announced revision up to `rev`; true when it moved (the caller then
    /// broadcasts what changed).
    pub(crate) fn advance(&self, domain: Domain, rev: i64) -> bool {
        self.inner.announced[domain.index()].fetch_max(rev, Ordering::SeqCst) < rev
    }

    /// The newest revision of `domain` this process has announced.
    pub fn announced_revision(&self, domain: Domain) -> i64 {
        self.inner.announced[domain.index()].load(Ordering::SeqCst)
    }

    /// Announces a profile write of this process that made revision `rev`. When the counter
    /// skipped a value, someone else wrote in between (another process, or a concurrent writer
    /// here): then everything is announced as possibly changed, so that write is not lost.
    pub(crate) fn notify_peers(&self, rev: i64, change: PeerChange) {
        let change = if self.announce(Domain::Peers, rev) {
            change
        } else {
            PeerChange::All
        };
        self.notify(Change::Peers(change));
    }

    /// Runs `f` on the brute-force bookkeeping (a short critical section, never across an await).
    pub(crate) fn throttle<T>(&self, f: impl FnOnce(&mut Throttle) -> T) -> T {
        // A panic while holding the lock cannot leave the counters inconsistent enough to matter.
        let mut guard = match self.inner.throttle.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        f(&mut guard)
    }

    pub(crate) fn store(&self) -> &Store {
        &self.inner.store
    }

    /// The DNS query log's database (`dns-log.db` in the data dir), opened on first use.
    pub(crate) async fn dns_log(&self) -> Result<&crate::dns::logstore::LogStore> {
        self.inner
            .dns_log
            .get_or_try_init(|| crate::dns::logstore::LogStore::open(&self.inner.config.data_dir))
            .await
    }

    pub(crate) fn secrets(&self) -> &SecretBox {
        &self.inner.secrets
    }

    /// A portable backup of the whole store, with the secret key (superusers only).
    pub async fn backup(&self, actor: &Actor) -> Result<Backup> {
        actor.require_superuser("taking a backup")?;
        Backup::take(
            self.store().pool(),
            self.secrets().key_bytes(),
            crate::store::now_unix(),
        )
        .await
    }

    /// Restores `backup` into the data dir and database of `config`, which must be empty unless
    /// `replace` is set. Open the result with [`Mistborn::open`] afterwards.
    pub async fn restore(config: &Config, backup: &Backup, replace: bool) -> Result<()> {
        config.validate()?;
        backup.validate()?;
        crate::crypto::private_dir(&config.data_dir, files::SECRET_KEY)?;
        let store = Store::connect(&config.effective_database_url()).await?;
        let result = async {
            if crate::users::count(store.pool()).await? > 0 && !replace {
                return Err(Error::Conflict(
                    "the database already holds users: restore into a fresh data dir, or pass --force to replace everything".into(),
                ));
            }
            backup.load(store.pool(), replace).await?;
            crate::crypto::write_private_file(
                &config.data_dir.join(files::SECRET_KEY),
                &backup.secret_key_bytes()?,
            )
        }
        .await;
        store.close().await;
        result
    }

    /// Closes the database cleanly.
    pub async fn close(&self) {
        if let Some(log) = self.inner.dns_log.get() {
            log.close().await;
        }
        self.inner.store.close().await;
    }
}
