//! The Python module `mistborn`: a synchronous API over `mistborn-core` for scripts, Ansible and
//! Home Assistant. `mistborn.open(...)` gives an operator handle; `handle.as_token(secret)` acts as
//! that token's user, so core's authorization applies unchanged. Built with maturin
//! (`mistborn-py/pyproject.toml`); the stubs are `mistborn-py/mistborn.pyi`.
//!
//! Layout: [`handle`] holds the handle and its sub-APIs, [`firewall`] the firewall sub-API,
//! [`daemon`] the daemon (`mistborn.Daemon.start(handle)`),
//! [`types`] the mirror types, [`errors`] the exception classes and the one mapping from core's
//! `ErrorKind`.

mod daemon;
mod errors;
mod firewall;
mod handle;
mod types;

use std::path::PathBuf;

use pyo3::prelude::*;

use handle::ConfigOptions;

/// Opens (on first start: initialises) Mistborn and returns a handle acting as the operator.
///
/// The config comes from `config_file` (if given), then `MISTBORN_*` variables (if `use_env`),
/// then the explicit arguments.
#[pyfunction]
#[pyo3(signature = (data_dir = None, config_file = None, database_url = None, endpoint = None, *, listen_port = None, subnet_v4 = None, subnet_v6 = None, dns_suffix = None, wg_interface = None, use_env = false))]
#[allow(clippy::too_many_arguments)]
fn open(
    py: Python<'_>,
    data_dir: Option<PathBuf>,
    config_file: Option<PathBuf>,
    database_url: Option<String>,
    endpoint: Option<String>,
    listen_port: Option<u16>,
    subnet_v4: Option<String>,
    subnet_v6: Option<String>,
    dns_suffix: Option<String>,
    wg_interface: Option<String>,
    use_env: bool,
) -> PyResult<handle::Mistborn> {
    handle::open(
        py,
        ConfigOptions {
            data_dir,
            config_file,
            database_url,
            endpoint,
            listen_port,
            subnet_v4,
            subnet_v6,
            dns_suffix,
            wg_interface,
            use_env,
        },
    )
}

/// Restores a backup file written by `Mistborn.backup` into an empty store (or over an existing
/// one with `replace=True`). Open it with `open(...)` afterwards.
#[pyfunction]
#[pyo3(signature = (path, data_dir = None, config_file = None, database_url = None, *, replace = false, use_env = false))]
fn restore(
    py: Python<'_>,
    path: PathBuf,
    data_dir: Option<PathBuf>,
    config_file: Option<PathBuf>,
    database_url: Option<String>,
    replace: bool,
    use_env: bool,
) -> PyResult<()> {
    let options = ConfigOptions {
        data_dir,
        config_file,
        database_url,
        endpoint: None,
        listen_port: None,
        subnet_v4: None,
        subnet_v6: None,
        dns_suffix: None,
        wg_interface: None,
        use_env,
    };
    handle::restore(py, &path, options, replace)
}

/// A fresh WireGuard key pair, for devices that enroll their own key.
#[pyfunction]
fn generate_key_pair() -> types::KeyPair {
    mistborn_core::crypto::KeyPair::generate().into()
}

/// The public key of a base64 private key.
#[pyfunction]
fn public_key(private_key: &str) -> PyResult<String> {
    let key: mistborn_core::crypto::WgKey = private_key.parse().map_err(errors::to_py)?;
    Ok(key.public().to_base64())
}

/// Mistborn, the self-hosted private-cloud gateway: users, API tokens, WireGuard profiles, client
/// configs, backups and the firewall (Coppercloud lists, policy, metrics history). Start with `mistborn.open(data_dir=...)`.
#[pymodule]
fn mistborn(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_function(wrap_pyfunction!(open, m)?)?;
    m.add_function(wrap_pyfunction!(restore, m)?)?;
    m.add_function(wrap_pyfunction!(generate_key_pair, m)?)?;
    m.add_function(wrap_pyfunction!(public_key, m)?)?;
    m.add_class::<handle::Mistborn>()?;
    m.add_class::<daemon::Daemon>()?;
    m.add_class::<daemon::DaemonStatus>()?;
    m.add_class::<daemon::DaemonPart>()?;
    m.add_class::<handle::Users>()?;
    m.add_class::<handle::Tokens>()?;
    m.add_class::<handle::Peers>()?;
    m.add_class::<firewall::Firewall>()?;
    m.add_class::<firewall::CopperLists>()?;
    m.add_class::<types::User>()?;
    m.add_class::<types::ApiToken>()?;
    m.add_class::<types::NewToken>()?;
    m.add_class::<types::Peer>()?;
    m.add_class::<types::EnrollmentAnswer>()?;
    m.add_class::<types::KeyPair>()?;
    m.add_class::<types::CopperList>()?;
    m.add_class::<types::RefreshOutcome>()?;
    m.add_class::<types::PolicyView>()?;
    m.add_class::<types::PolicyList>()?;
    m.add_class::<types::MetricsHistory>()?;
    m.add_class::<types::HistoryBucket>()?;
    m.add_class::<types::HistoryCount>()?;
    errors::register(m)?;
    Ok(())
}
