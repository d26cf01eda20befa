//! The status channel: one writer (the data plane), any number of filtered readers.

use std::sync::Arc;

use tokio::sync::watch;

use super::types::{DataPlaneStatus, StatusSnapshot};
use crate::actor::Actor;

/// Holds the latest status and wakes subscribers when it changes.
#[derive(Debug, Clone)]
pub struct StatusHub {
    tx: Arc<watch::Sender<Arc<StatusSnapshot>>>,
}

impl StatusHub {
    /// A hub whose data plane is off for `reason` until a data plane publishes.
    pub fn new(initial: DataPlaneStatus) -> Self {
        let (tx, _) = watch::channel(Arc::new(StatusSnapshot {
            dataplane: initial,
            peers: Vec::new(),
            updated_at: crate::store::now_unix(),
        }));
        Self { tx: Arc::new(tx) }
    }

    /// The latest status as `actor` may see it.
    pub fn current(&self, actor: &Actor) -> StatusSnapshot {
        self.tx.borrow().visible_to(actor)
    }

    /// A stream of `actor`'s view: the current one first, then every change of it.
    pub fn subscribe(&self, actor: Actor) -> StatusStream {
        StatusStream {
            rx: self.tx.subscribe(),
            actor,
            last: None,
        }
    }

    /// Replaces the snapshot; subscribers wake only when its content changed.
    pub(crate) fn publish(&self, snapshot: StatusSnapshot) {
        self.tx.send_if_modified(|cur| {
            if cur.same_content(&snapshot) {
                false
            } else {
                *cur = Arc::new(snapshot);
                true
            }
        });
    }

    /// Changes only the data plane part.
    pub(crate) fn set_dataplane(&self, dataplane: DataPlaneStatus) {
        let cur = self.tx.borrow().clone();
        self.publish(StatusSnapshot {
            dataplane,
            peers: cur.peers.clone(),
            updated_at: crate::store::now_unix(),
        });
    }
}

/// One viewer's status feed (see [`StatusHub::subscribe`]).
#[derive(Debug)]
pub struct StatusStream {
    rx: watch::Receiver<Arc<StatusSnapshot>>,
    actor: Actor,
    last: Option<Arc<StatusSnapshot>>,
}

impl StatusStream {
    /// The next view that differs from the last one returned (the first call returns at once).
    /// `None` when the hub is gone.
    pub async fn next(&mut self) -> Option<StatusSnapshot> {
        loop {
            let current = self.rx.borrow_and_update().clone();
            // A superuser sees the hub's snapshot itself: share it rather than copy thousands of
            // peers for every change.
            let view = if self.actor.is_superuser() {
                current
            } else {
                Arc::new(current.visible_to(&self.actor))
            };
            let changed = self
                .last
                .as_ref()
                .is_none_or(|l| !Arc::ptr_eq(l, &view) && !l.same_content(&view));
            if changed {
                self.last = Some(view.clone());
                return Some(StatusSnapshot::clone(&view));
            }
            self.rx.changed().await.ok()?;
        }
    }
}
