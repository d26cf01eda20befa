//! The `firewall` sub-API: Coppercloud lists (`Mistborn::firewall()`), the policy the store asks
//! for (`PolicyView::desired`, no running plane needed) and the stored metrics history. Every call
//! acts as the handle's actor; core allows superusers (and the operator) only.

use mistborn_core::Error;
use mistborn_core::firewall::{ListMode, ListUpdate, NewList, PolicyView as CorePolicyView};
use pyo3::prelude::*;

use crate::errors::to_py;
use crate::handle::{Handle, parse};
use crate::types::{CopperList, MetricsHistory, PolicyView, RefreshOutcome};

/// Unix seconds now: core takes time as an argument, the frontend reads the clock.
fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// The firewall: Coppercloud lists, the desired policy, probe metrics over time.
#[pyclass(module = "mistborn", frozen)]
pub struct Firewall {
    h: Handle,
}

impl Firewall {
    pub(crate) fn new(h: Handle) -> Self {
        Self { h }
    }
}

#[pymethods]
impl Firewall {
    /// The Coppercloud IP lists API.
    #[getter]
    fn lists(&self) -> CopperLists {
        CopperLists { h: self.h.clone() }
    }

    /// The policy the store and configuration ask for now, as the running firewall would apply
    /// it (sizes, not elements). Without a configured external interface, the default route's
    /// is used.
    fn policy(&self, py: Python<'_>) -> PyResult<PolicyView> {
        self.h
            .run(py, |m, a| async move {
                CorePolicyView::desired(&m, &a, now()).await
            })
            .map(Into::into)
    }

    /// Probes and Coppercloud hits since `since` (Unix seconds; default: the last 24 hours) in
    /// buckets of `bucket_secs`, with the `top` (1-1000) ports and sources over the window.
    #[pyo3(signature = (since = None, bucket_secs = 3600, top = 10))]
    fn metrics_history(
        &self,
        py: Python<'_>,
        since: Option<i64>,
        bucket_secs: i64,
        top: i64,
    ) -> PyResult<MetricsHistory> {
        let top = usize::try_from(top)
            .ok()
            .filter(|n| (1..=1000).contains(n))
            .ok_or_else(|| to_py(Error::invalid("top", format!("{top} is not 1 to 1000"))))?;
        let since = since.unwrap_or_else(|| now() - 86_400);
        self.h
            .run(py, |m, a| async move {
                m.firewall()
                    .metrics_history(&a, since, bucket_secs, top)
                    .await
            })
            .map(Into::into)
    }
}

/// Coppercloud lists: named IP lists (address, CIDR or range a line) from text or a URL, in
/// block or allow mode. A list with a malformed line is refused whole, naming the lines.
#[pyclass(module = "mistborn", frozen)]
pub struct CopperLists {
    h: Handle,
}

#[pymethods]
impl CopperLists {
    /// Every list, by name.
    fn list(&self, py: Python<'_>) -> PyResult<Vec<CopperList>> {
        let lists = self
            .h
            .run(py, |m, a| async move { m.firewall().lists(&a).await })?;
        Ok(lists.into_iter().map(Into::into).collect())
    }

    /// A list by id or name.
    fn get(&self, py: Python<'_>, key: String) -> PyResult<CopperList> {
        self.h
            .run(py, |m, a| async move { m.firewall().list(&a, &key).await })
            .map(Into::into)
    }

    /// Adds a list from `content` (text), or from `url` (downloaded now and on refresh), or
    /// both (the text now, the URL for refreshes). `mode` is `"block"` or `"allow"`.
    #[pyo3(signature = (name, *, content = None, url = None, mode = "block"))]
    fn add(
        &self,
        py: Python<'_>,
        name: String,
        content: Option<String>,
        url: Option<String>,
        mode: &str,
    ) -> PyResult<CopperList> {
        let new = NewList {
            name,
            mode: parse::<ListMode>(mode)?,
            url,
            content,
        };
        self.h
            .run(py, |m, a| async move {
                m.firewall().add_list(&a, new, now()).await
            })
            .map(Into::into)
    }

    /// Changes the given fields; a new `url` is downloaded now (unless `content` is given too).
    /// Bad input changes nothing.
    #[pyo3(signature = (key, *, name = None, mode = None, enabled = None, url = None, content = None))]
    #[allow(clippy::too_many_arguments)]
    fn update(
        &self,
        py: Python<'_>,
        key: String,
        name: Option<String>,
        mode: Option<&str>,
        enabled: Option<bool>,
        url: Option<String>,
        content: Option<String>,
    ) -> PyResult<CopperList> {
        let update = ListUpdate {
            name,
            mode: mode.map(parse::<ListMode>).transpose()?,
            enabled,
            url,
            content,
        };
        self.h
            .run(py, |m, a| async move {
                m.firewall().update_list(&a, &key, update, now()).await
            })
            .map(Into::into)
    }

    /// Deletes a list; the firewall stops using it.
    fn delete(&self, py: Python<'_>, key: String) -> PyResult<()> {
        self.h.run(py, |m, a| async move {
            m.firewall().delete_list(&a, &key).await
        })
    }

    /// Downloads a URL list again. A failed or malformed download keeps the last good copy,
    /// records why in `last_error` and raises `InvalidInput` with the reason.
    fn refresh(&self, py: Python<'_>, key: String) -> PyResult<RefreshOutcome> {
        self.h
            .run(py, |m, a| async move {
                m.firewall().refresh_list(&a, &key, now()).await
            })
            .map(Into::into)
    }
}
