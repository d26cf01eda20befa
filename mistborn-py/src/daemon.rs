//! `mistborn.Daemon`: the core daemon (the same one `mistborn serve` runs) started from Python on
//! the handle's runtime; its tasks keep running between Python calls until `stop()`.

use std::sync::Mutex;

use mistborn_core::Error;
use mistborn_core::daemon::{self, DaemonOptions, InterfaceOnStop, PartState};
use pyo3::prelude::*;

use crate::errors::to_py;
use crate::handle::{Handle, Mistborn};

/// Whether one part of the daemon runs.
#[pyclass(module = "mistborn", frozen, get_all)]
#[derive(Clone)]
pub struct DaemonPart {
    /// It runs.
    on: bool,
    /// What it does when on; why not when off.
    detail: String,
}

impl From<PartState> for DaemonPart {
    fn from(s: PartState) -> Self {
        match s {
            PartState::On(detail) => Self { on: true, detail },
            PartState::Off(detail) => Self { on: false, detail },
        }
    }
}

#[pymethods]
impl DaemonPart {
    fn __repr__(&self) -> String {
        let state = if self.on { "ON" } else { "OFF" };
        format!("DaemonPart({state}: {})", self.detail)
    }
}

/// What the daemon runs, and what is off and why.
#[pyclass(module = "mistborn", frozen, get_all)]
pub struct DaemonStatus {
    dataplane: DaemonPart,
    firewall: DaemonPart,
    dns: DaemonPart,
    dns_addrs: Vec<String>,
    proxy: DaemonPart,
    change_watcher: DaemonPart,
    jobs: Vec<String>,
}

impl From<daemon::DaemonStatus> for DaemonStatus {
    fn from(s: daemon::DaemonStatus) -> Self {
        Self {
            dataplane: s.dataplane.into(),
            firewall: s.firewall.into(),
            dns: s.dns.into(),
            dns_addrs: s.dns_addrs.iter().map(ToString::to_string).collect(),
            proxy: s.proxy.into(),
            change_watcher: s.change_watcher.into(),
            jobs: s.jobs.iter().map(ToString::to_string).collect(),
        }
    }
}

/// A running daemon: data plane, firewall, DNS, proxy, the periodic jobs and the change watcher,
/// as `mistborn serve` runs them (without the HTTP API).
#[pyclass(module = "mistborn", frozen)]
pub struct Daemon {
    h: Handle,
    running: Mutex<Option<daemon::Daemon>>,
}

impl Daemon {
    fn with<T>(&self, f: impl FnOnce(&mut Option<daemon::Daemon>) -> T) -> T {
        let mut guard = match self.running.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        f(&mut guard)
    }
}

#[pymethods]
impl Daemon {
    /// Starts the daemon for `m` (an operator handle from `open()`). Parts that cannot run are
    /// off with their reason in `status()`.
    #[staticmethod]
    fn start(py: Python<'_>, m: &Mistborn) -> PyResult<Daemon> {
        let h = m.handle().clone();
        let running = h.run(py, |core, actor| async move {
            actor.require_superuser("starting the daemon")?;
            daemon::Daemon::start(&core, DaemonOptions::default()).await
        })?;
        Ok(Daemon {
            h,
            running: Mutex::new(Some(running)),
        })
    }

    /// What runs now, and what is off and why.
    fn status(&self) -> PyResult<DaemonStatus> {
        self.with(|d| {
            d.as_ref()
                .map(|d| d.status().into())
                .ok_or_else(|| to_py(Error::Daemon("the daemon was stopped".into())))
        })
    }

    /// Whether it runs (`stop()` not called yet).
    #[getter]
    fn running(&self) -> bool {
        self.with(|d| d.is_some())
    }

    /// Stops every part in order. Returns what happened to the WireGuard interface:
    /// `"was_off"`, `"kept_up"` (wireguard.keep_on_stop) or `"taken_down"`. Stopping twice is a
    /// no-op returning `"was_off"`.
    fn stop(&self, py: Python<'_>) -> PyResult<&'static str> {
        let Some(d) = self.with(Option::take) else {
            return Ok("was_off");
        };
        let outcome = self.h.run(py, |_, _| async move { Ok(d.stop().await) })?;
        Ok(match outcome {
            InterfaceOnStop::WasOff => "was_off",
            InterfaceOnStop::KeptUp => "kept_up",
            InterfaceOnStop::TakenDown => "taken_down",
        })
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    #[pyo3(signature = (*_args))]
    fn __exit__(&self, py: Python<'_>, _args: &Bound<'_, pyo3::types::PyTuple>) -> PyResult<bool> {
        self.stop(py)?;
        Ok(false)
    }
}
