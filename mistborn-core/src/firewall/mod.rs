//! The firewall: one nftables table, `inet mistborn`, owned entirely by Mistborn and never
//! touching any other table (Docker's, the admin's own).
//!
//! [`policy`] turns configuration and stored state (profiles, live MFA sessions, Coppercloud
//! lists, the external interface) into a [`Policy`]; [`ruleset::render`] makes it one nft script
//! that replaces the table in a single transaction, so a failed apply leaves the previous table
//! in force. Per-device state lives in address sets: [`plan`] finds when only elements changed,
//! and those go straight over netlink (rustables), so an MFA login adds or removes one element
//! without rebuilding the table or starting a process. [`FirewallPlane`] runs the reconciler,
//! which also turns IP forwarding on once the table is in force (`forwarding`);
//! [`Firewall`] (`Mistborn::firewall()`) manages the Coppercloud lists in the store.

mod config;
pub mod coppercloud;
mod desired;
mod forwarding;
pub mod history;
pub mod intervals;
mod lists;
pub mod metrics;
mod netlink;
mod nft;
pub mod plan;
pub mod policy;
mod reconciler;
pub mod ruleset;
mod store;

pub use config::FirewallConfig;
pub use coppercloud::{BadLine, ListMode, ParsedList, check_list, parse_list};
pub use forwarding::ForwardingStatus;
pub use history::{HistoryBucket, HistoryCount, MetricsHistory, MetricsSampler, SampleDeltas};
pub(crate) use lists::check_name as check_list_name;
pub use lists::{CopperList, Firewall, ListUpdate, NewList, RefreshOutcome};
pub use metrics::{ListHits, Metrics, NetworkCount, PortCount, Probe, SourceCount, Unkept};
pub use plan::{ElementChange, FirewallPlan, plan};
pub use policy::{
    AddressSet, ListRule, Policy, PolicyInput, ProfileRule, Structure, TABLE, policy,
};
pub use reconciler::{
    FirewallHandle, FirewallOptions, FirewallPlane, FirewallStatus, PolicyList, PolicyView,
};

/// Low-level calls for benchmarks and system tests: apply a script, send elements, read the
/// table, find the default route. They act on the calling thread's network namespace.
pub mod raw {
    use super::plan::ElementChange;
    use crate::error::Result;

    /// Applies an nft script in one transaction.
    pub fn apply_script(script: &str) -> Result<()> {
        super::nft::apply_script(script)
    }

    /// Replaces the table with `policy` in one transaction, carrying the counters over (what
    /// the reconciler does).
    pub fn replace_table(policy: &super::Policy) -> Result<()> {
        super::nft::replace_table(policy)
    }

    /// The live table's counter values.
    pub fn read_carry() -> Result<super::ruleset::Carry> {
        super::nft::read_carry()
    }

    /// Moves the calling thread into a network namespace (e.g. `/run/netns/NAME`).
    pub fn enter_netns(path: &std::path::Path) -> Result<()> {
        super::reconciler::enter_netns(path).map_err(crate::error::Error::Firewall)
    }

    /// Adds and removes address-set elements over netlink.
    pub fn send_elements(changes: &[ElementChange]) -> Result<()> {
        super::netlink::send_elements(changes)
    }

    /// `nft -s list table inet mistborn`.
    pub fn table_text() -> Result<Option<String>> {
        super::nft::list_table_text(true)
    }

    /// Probe and list-hit counters of the live table, top `n` ports and sources.
    pub fn metrics(n: usize) -> Result<super::Metrics> {
        super::metrics::read_metrics(n)
    }

    /// The default route's interface.
    pub fn default_route_interface() -> std::io::Result<Option<String>> {
        super::netlink::default_route_interface()
    }

    /// Whether the calling thread's network namespace forwards IPv4 and IPv6 (reads only).
    pub fn forwarding() -> super::ForwardingStatus {
        super::forwarding::Sysctl::default().observe()
    }

    /// Deletes the table.
    pub fn delete_table() -> Result<()> {
        super::nft::delete_table()
    }
}

#[cfg(test)]
mod tests;
