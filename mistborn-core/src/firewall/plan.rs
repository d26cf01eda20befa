//! `plan(desired, observed)`: what it takes to get from the table last applied to the desired
//! one. A change of [`Structure`](super::policy::Structure) needs the full atomic replace; a
//! change of per-device state is a handful of set elements sent over netlink.

use std::net::IpAddr;

use serde::Serialize;

use super::policy::{AddressSet, Policy};

/// One element into or out of one address set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ElementChange {
    /// Which set.
    pub set: AddressSet,
    /// The address (its family picks the v4 or v6 set).
    pub address: IpAddr,
    /// Add (`true`) or remove.
    pub add: bool,
}

/// What to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FirewallPlan {
    /// The table is as wanted.
    Nothing,
    /// Replace the whole table (first apply, or the structure changed).
    Replace,
    /// Add and remove these elements.
    Elements(Vec<ElementChange>),
}

/// Compares the desired policy with the one last applied (`None`: unknown, e.g. at start).
pub fn plan(desired: &Policy, observed: Option<&Policy>) -> FirewallPlan {
    let Some(observed) = observed else {
        return FirewallPlan::Replace;
    };
    if desired.structure != observed.structure {
        return FirewallPlan::Replace;
    }
    let mut changes = Vec::new();
    for set in [AddressSet::MfaPending, AddressSet::ClientToClient] {
        let (want, have) = (desired.set(set), observed.set(set));
        changes.extend(have.difference(want).map(|&address| ElementChange {
            set,
            address,
            add: false,
        }));
        changes.extend(want.difference(have).map(|&address| ElementChange {
            set,
            address,
            add: true,
        }));
    }
    if changes.is_empty() {
        FirewallPlan::Nothing
    } else {
        FirewallPlan::Elements(changes)
    }
}

/// Applies element changes to a cached policy, so it keeps matching the kernel.
pub fn apply_changes(policy: &mut Policy, changes: &[ElementChange]) {
    for c in changes {
        let set = policy.set_mut(c.set);
        if c.add {
            set.insert(c.address);
        } else {
            set.remove(&c.address);
        }
    }
}
