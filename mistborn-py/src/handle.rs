//! The `Mistborn` handle and its `users`, `tokens` and `peers` sub-APIs (`firewall` is in
//! [`crate::firewall`]). Each Python call runs the
//! matching core call to completion on the tokio runtime the handle owns, with the GIL released, and
//! acts as the handle's actor: core decides what that actor may do.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use mistborn_core::peers::{EnrollmentRequest, ListenPort, NewPeer, PeerKind, PeerUpdate};
use mistborn_core::store::Backup;
use mistborn_core::users::{NewUser, Role};
use mistborn_core::{Actor, Config, Error, Result};
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use crate::errors::to_py;
use crate::types::{ApiToken, EnrollmentAnswer, NewToken, Peer, User};

/// What every Python object of one `open()` shares.
struct Shared {
    rt: tokio::runtime::Runtime,
    core: mistborn_core::Mistborn,
}

/// The shared state plus who is acting.
#[derive(Clone)]
pub(crate) struct Handle {
    shared: Arc<Shared>,
    actor: Actor,
}

impl Handle {
    /// Runs a core call on the runtime with the GIL released.
    pub(crate) fn run<T, F, Fut>(&self, py: Python<'_>, call: F) -> PyResult<T>
    where
        F: FnOnce(mistborn_core::Mistborn, Actor) -> Fut + Send,
        Fut: Future<Output = Result<T>>,
        T: Send,
    {
        let core = self.shared.core.clone();
        let actor = self.actor.clone();
        let rt = &self.shared.rt;
        py.detach(move || rt.block_on(call(core, actor)))
            .map_err(to_py)
    }
}

fn runtime() -> PyResult<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("mistborn-py")
        .enable_all()
        .build()
        .map_err(|e| to_py(Error::io("tokio runtime", e)))
}

/// Options shared by `open()` and `restore()` that build a core `Config`.
pub struct ConfigOptions {
    pub data_dir: Option<PathBuf>,
    pub config_file: Option<PathBuf>,
    pub database_url: Option<String>,
    pub endpoint: Option<String>,
    pub listen_port: Option<u16>,
    pub subnet_v4: Option<String>,
    pub subnet_v6: Option<String>,
    pub dns_suffix: Option<String>,
    pub wg_interface: Option<String>,
    pub use_env: bool,
}

impl ConfigOptions {
    /// The config file (if any), then `MISTBORN_*` (if `use_env`), then the explicit arguments.
    pub fn build(self) -> Result<Config> {
        let use_env = self.use_env;
        let mut c = Config::load(self.config_file.as_deref(), |k| {
            use_env.then(|| std::env::var(k).ok()).flatten()
        })?;
        if let Some(v) = self.data_dir {
            c.data_dir = v;
        }
        if let Some(v) = self.database_url {
            c.database_url = Some(v);
        }
        if let Some(v) = self.endpoint {
            c.endpoint = v;
        }
        if let Some(v) = self.listen_port {
            c.wireguard.listen_port = v;
        }
        if let Some(v) = self.subnet_v4 {
            c.wireguard.subnet_v4 = v
                .parse()
                .map_err(|e| Error::invalid("subnet_v4", format!("'{v}': {e}")))?;
        }
        if let Some(v) = self.subnet_v6 {
            c.wireguard.subnet_v6 = v
                .parse()
                .map_err(|e| Error::invalid("subnet_v6", format!("'{v}': {e}")))?;
        }
        if let Some(v) = self.dns_suffix {
            c.dns_suffix = v;
        }
        if let Some(v) = self.wg_interface {
            c.wireguard.interface = v;
        }
        c.validate()?;
        Ok(c)
    }
}

/// Opens Mistborn as the system actor (the host operator).
pub fn open(py: Python<'_>, options: ConfigOptions) -> PyResult<Mistborn> {
    let config = options.build().map_err(to_py)?;
    let rt = runtime()?;
    let (core, first) = py
        .detach(|| rt.block_on(mistborn_core::Mistborn::open_reporting(config)))
        .map_err(to_py)?;
    Ok(Mistborn {
        h: Handle {
            shared: Arc::new(Shared { rt, core }),
            actor: Actor::System,
        },
        admin_password_file: first.map(|f| f.admin_password_file.display().to_string()),
    })
}

/// Restores a backup file into the (empty, unless `replace`) store that `options` describe.
pub fn restore(py: Python<'_>, path: &Path, options: ConfigOptions, replace: bool) -> PyResult<()> {
    let config = options.build().map_err(to_py)?;
    let backup = Backup::read_file(path).map_err(to_py)?;
    let rt = runtime()?;
    py.detach(|| rt.block_on(mistborn_core::Mistborn::restore(&config, &backup, replace)))
        .map_err(to_py)
}

/// An open Mistborn, acting as one actor: the operator (from `open()`) or a user (from
/// `as_token()`).
#[pyclass(module = "mistborn", frozen)]
pub struct Mistborn {
    h: Handle,
    /// Where the first start wrote the admin password; `None` when the store already existed.
    #[pyo3(get)]
    admin_password_file: Option<String>,
}

impl Mistborn {
    /// The shared state and actor (for the daemon).
    pub(crate) fn handle(&self) -> &Handle {
        &self.h
    }
}

#[pymethods]
impl Mistborn {
    /// The users API.
    #[getter]
    fn users(&self) -> Users {
        Users { h: self.h.clone() }
    }

    /// The API tokens API.
    #[getter]
    fn tokens(&self) -> Tokens {
        Tokens { h: self.h.clone() }
    }

    /// The profiles (WireGuard peers) API.
    #[getter]
    fn peers(&self) -> Peers {
        Peers { h: self.h.clone() }
    }

    /// The firewall API: Coppercloud lists, the desired policy, metrics history.
    #[getter]
    fn firewall(&self) -> crate::firewall::Firewall {
        crate::firewall::Firewall::new(self.h.clone())
    }

    /// The server's WireGuard public key (base64).
    #[getter]
    fn server_public_key(&self) -> String {
        self.h.shared.core.server_public_key().to_base64()
    }

    /// The host devices dial.
    #[getter]
    fn endpoint(&self) -> String {
        self.h.shared.core.config().endpoint.clone()
    }

    /// The data directory.
    #[getter]
    fn data_dir(&self) -> String {
        self.h.shared.core.config().data_dir.display().to_string()
    }

    /// Whether this handle acts as the operator (`open()`) rather than as a user.
    #[getter]
    fn is_system(&self) -> bool {
        self.h.actor == Actor::System
    }

    /// A handle on the same store acting as the owner of API token `token`.
    fn as_token(&self, py: Python<'_>, token: String) -> PyResult<Mistborn> {
        let actor = self.h.run(py, |m, _| async move {
            m.users().authenticate_token(&token).await
        })?;
        Ok(Mistborn {
            h: Handle {
                shared: self.h.shared.clone(),
                actor,
            },
            admin_password_file: None,
        })
    }

    /// Writes a backup of the whole store (with the secret key) to `path`, mode 0600; an existing
    /// `path` is refused (`Conflict`) unless `force`.
    #[pyo3(signature = (path, force = false))]
    fn backup(&self, py: Python<'_>, path: PathBuf, force: bool) -> PyResult<()> {
        self.h.run(py, |m, a| async move {
            m.backup(&a).await?.write_file(&path, force)
        })
    }

    /// Closes the database. The handle (and every handle from `as_token`) is unusable after.
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        self.h.run(py, |m, _| async move {
            m.close().await;
            Ok(())
        })
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    #[pyo3(signature = (*_args))]
    fn __exit__(&self, py: Python<'_>, _args: &Bound<'_, pyo3::types::PyTuple>) -> PyResult<bool> {
        self.close(py)?;
        Ok(false)
    }

    fn __repr__(&self) -> String {
        let who = match &self.h.actor {
            Actor::System => "system".to_string(),
            Actor::User { id, role } => format!("user {id} ({role})"),
        };
        format!("Mistborn(data_dir={:?}, actor={who:?})", self.data_dir())
    }
}

pub(crate) fn parse<T: std::str::FromStr<Err = Error>>(s: &str) -> PyResult<T> {
    s.parse().map_err(to_py)
}

/// Users: create, list, look up, delete, roles and passwords.
#[pyclass(module = "mistborn", frozen)]
pub struct Users {
    h: Handle,
}

#[pymethods]
impl Users {
    /// Creates a user (superusers only). `role` is `"regular"` or `"superuser"`.
    #[pyo3(signature = (username, password, role = "regular"))]
    fn create(
        &self,
        py: Python<'_>,
        username: String,
        password: String,
        role: &str,
    ) -> PyResult<User> {
        let role: Role = parse(role)?;
        self.h
            .run(py, |m, a| async move {
                m.users()
                    .create(
                        &a,
                        NewUser {
                            username,
                            password,
                            role,
                        },
                    )
                    .await
            })
            .map(Into::into)
    }

    /// Every user (superusers only).
    fn list(&self, py: Python<'_>) -> PyResult<Vec<User>> {
        let users = self
            .h
            .run(py, |m, a| async move { m.users().list(&a).await })?;
        Ok(users.into_iter().map(Into::into).collect())
    }

    /// A user by id or username (regular users see only themselves).
    fn get(&self, py: Python<'_>, user: String) -> PyResult<User> {
        self.h
            .run(py, |m, a| async move { m.users().get(&a, &user).await })
            .map(Into::into)
    }

    /// The acting user (fails for the system handle, which is not a user).
    fn me(&self, py: Python<'_>) -> PyResult<User> {
        self.h
            .run(py, |m, a| async move { m.users().me(&a).await })
            .map(Into::into)
    }

    /// Deletes a user with their profiles and tokens (superusers only; never the last one).
    fn delete(&self, py: Python<'_>, user: String) -> PyResult<()> {
        self.h
            .run(py, |m, a| async move { m.users().delete(&a, &user).await })
    }

    /// Changes a user's role (superusers only).
    fn set_role(&self, py: Python<'_>, user: String, role: &str) -> PyResult<User> {
        let role: Role = parse(role)?;
        self.h
            .run(py, |m, a| async move {
                m.users().set_role(&a, &user, role).await
            })
            .map(Into::into)
    }

    /// Sets a password: one's own, or anyone's as a superuser.
    fn set_password(&self, py: Python<'_>, user: String, password: String) -> PyResult<()> {
        self.h.run(py, |m, a| async move {
            m.users().set_password(&a, &user, &password).await
        })
    }

    /// Checks a username and password; raises `Unauthenticated` when either is wrong (taking the
    /// same time for an unknown user), `Forbidden` when a regular user's handle asks about
    /// another user.
    fn check_password(&self, py: Python<'_>, username: String, password: String) -> PyResult<User> {
        self.h
            .run(py, |m, a| async move {
                m.users().check_password(&a, &username, &password).await
            })
            .map(Into::into)
    }
}

/// API tokens: create (the secret is returned once), list, revoke.
#[pyclass(module = "mistborn", frozen)]
pub struct Tokens {
    h: Handle,
}

#[pymethods]
impl Tokens {
    /// Creates a token named `name` for `user` (oneself, or anyone as a superuser).
    fn create(&self, py: Python<'_>, user: String, name: String) -> PyResult<NewToken> {
        self.h
            .run(py, |m, a| async move {
                m.users().create_token(&a, &user, &name).await
            })
            .map(Into::into)
    }

    /// The tokens of `user`.
    fn list(&self, py: Python<'_>, user: String) -> PyResult<Vec<ApiToken>> {
        let tokens = self.h.run(
            py,
            |m, a| async move { m.users().list_tokens(&a, &user).await },
        )?;
        Ok(tokens.into_iter().map(Into::into).collect())
    }

    /// Revokes a token by id (its owner or a superuser).
    fn revoke(&self, py: Python<'_>, id: String) -> PyResult<()> {
        self.h.run(
            py,
            |m, a| async move { m.users().revoke_token(&a, &id).await },
        )
    }
}

/// Profiles: WireGuard peers, their configs and QR codes.
#[pyclass(module = "mistborn", frozen)]
pub struct Peers {
    h: Handle,
}

#[pymethods]
impl Peers {
    /// Creates a profile. `user` defaults to the acting user (the system handle must name one);
    /// pass `public_key` for a device that made its own key pair.
    /// `kind` defaults to "wireguard" for a superuser and to the configured
    /// `peers.regular_user_kind` for a regular user; UDP 53/443 need a superuser.
    #[pyo3(signature = (name, user = None, kind = None, client_to_client = false, listen_port = None, public_key = None))]
    #[allow(clippy::too_many_arguments)]
    fn create(
        &self,
        py: Python<'_>,
        name: String,
        user: Option<String>,
        kind: Option<&str>,
        client_to_client: bool,
        listen_port: Option<&str>,
        public_key: Option<String>,
    ) -> PyResult<Peer> {
        let new = NewPeer {
            user,
            name,
            kind: kind.map(parse::<PeerKind>).transpose()?,
            client_to_client,
            listen_port: listen_port.map(parse::<ListenPort>).transpose()?,
            public_key,
        };
        self.h
            .run(py, |m, a| async move { m.peers().create(&a, new).await })
            .map(Into::into)
    }

    /// Enrolls a device that generated its own key pair; the answer renders the device's config
    /// with `EnrollmentAnswer.client_config(private_key)`.
    #[pyo3(signature = (name, public_key, user = None, kind = "wireguard", client_to_client = false, listen_port = "default"))]
    #[allow(clippy::too_many_arguments)]
    fn enroll(
        &self,
        py: Python<'_>,
        name: &str,
        public_key: &str,
        user: Option<String>,
        kind: &str,
        client_to_client: bool,
        listen_port: &str,
    ) -> PyResult<EnrollmentAnswer> {
        let mut request = EnrollmentRequest::new(name, public_key, parse(kind)?).map_err(to_py)?;
        request.client_to_client = client_to_client;
        request.listen_port = parse(listen_port)?;
        self.h
            .run(py, |m, a| async move {
                m.peers().enroll(&a, user.as_deref(), request).await
            })
            .map(Into::into)
    }

    /// The profiles the actor may see (all for a superuser, their own for a regular user), or
    /// those of `user`.
    #[pyo3(signature = (user = None))]
    fn list(&self, py: Python<'_>, user: Option<String>) -> PyResult<Vec<Peer>> {
        let peers = self.h.run(py, |m, a| async move {
            match user {
                Some(u) => m.peers().list_for_user(&a, &u).await,
                None => m.peers().list(&a).await,
            }
        })?;
        Ok(peers.into_iter().map(Into::into).collect())
    }

    /// A profile by id.
    fn get(&self, py: Python<'_>, id: String) -> PyResult<Peer> {
        self.h
            .run(py, |m, a| async move { m.peers().get(&a, &id).await })
            .map(Into::into)
    }

    /// A profile by name among `user`'s profiles (default: the acting user's).
    #[pyo3(signature = (name, user = None))]
    fn find(&self, py: Python<'_>, name: String, user: Option<String>) -> PyResult<Peer> {
        self.h
            .run(py, |m, a| async move {
                m.peers().find(&a, user.as_deref(), &name).await
            })
            .map(Into::into)
    }

    /// Changes the given fields of a profile; the others stay.
    #[pyo3(signature = (id, *, name = None, kind = None, client_to_client = None, listen_port = None))]
    fn update(
        &self,
        py: Python<'_>,
        id: String,
        name: Option<String>,
        kind: Option<&str>,
        client_to_client: Option<bool>,
        listen_port: Option<&str>,
    ) -> PyResult<Peer> {
        let change = PeerUpdate {
            name,
            kind: kind.map(parse).transpose()?,
            client_to_client,
            listen_port: listen_port.map(parse).transpose()?,
        };
        self.h
            .run(
                py,
                |m, a| async move { m.peers().update(&a, &id, change).await },
            )
            .map(Into::into)
    }

    /// Deletes a profile.
    fn delete(&self, py: Python<'_>, id: String) -> PyResult<()> {
        self.h
            .run(py, |m, a| async move { m.peers().delete(&a, &id).await })
    }

    /// The profile's client config text (wg-quick format).
    fn client_config(&self, py: Python<'_>, id: String) -> PyResult<String> {
        self.h.run(py, |m, a| async move {
            Ok(m.peers().client_config(&a, &id).await?.render())
        })
    }

    /// The client config as a PNG QR code.
    fn qr_png<'py>(&self, py: Python<'py>, id: String) -> PyResult<Bound<'py, PyBytes>> {
        let png = self
            .h
            .run(py, |m, a| async move { m.peers().qr_png(&a, &id).await })?;
        Ok(PyBytes::new(py, &png))
    }

    /// The client config as a QR code drawn with Unicode blocks, for terminals.
    fn qr_terminal(&self, py: Python<'_>, id: String) -> PyResult<String> {
        self.h.run(
            py,
            |m, a| async move { m.peers().qr_terminal(&a, &id).await },
        )
    }
}
