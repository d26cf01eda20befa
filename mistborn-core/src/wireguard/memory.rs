//! An in-memory backend that records what it was asked to do, for unit tests of the reconciler
//! (the real backends are tested for real in `tests/`).

use std::sync::{Arc, Mutex};

use super::backend::WireGuardBackend;
use super::desired::ServerSide;
use super::plan::{Diff, ObservedInterface};
use crate::error::{Error, Result};
use crate::status::ActiveBackend;

/// Shared state of a [`MemoryBackend`]: clone it to look inside from a test.
#[derive(Debug, Clone, Default)]
pub struct MemoryBackend {
    /// What the "device" holds.
    pub device: Arc<Mutex<ObservedInterface>>,
    /// Every diff applied, in order.
    pub applied: Arc<Mutex<Vec<Diff>>>,
}

impl WireGuardBackend for MemoryBackend {
    fn kind(&self) -> ActiveBackend {
        ActiveBackend::Memory
    }

    fn ensure_interface(&mut self, _server: &ServerSide) -> Result<()> {
        Ok(())
    }

    fn read(&mut self) -> Result<ObservedInterface> {
        Ok(self
            .device
            .lock()
            .map_err(|_| Error::DataPlane("memory backend poisoned".into()))?
            .clone())
    }

    fn apply(&mut self, diff: &Diff) -> Result<()> {
        self.device
            .lock()
            .map_err(|_| Error::DataPlane("memory backend poisoned".into()))?
            .apply_diff(diff);
        self.applied
            .lock()
            .map_err(|_| Error::DataPlane("memory backend poisoned".into()))?
            .push(diff.clone());
        Ok(())
    }
}
