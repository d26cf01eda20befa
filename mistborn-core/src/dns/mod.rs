//! The filtering resolver on hickory-server: block lists (hosts, plain domains, adblock syntax)
//! with subdomain matching, allow and deny entries, the local `<suffix>` zone, encrypted
//! upstreams with a cache, and a query log attributed to profiles and users.
//!
//! Per query: local zone, then the filter, then the upstreams (`handler`). The filter is one
//! immutable [`Filter`] swapped whole on reload (`arc-swap`), so a reload never lets a blocked
//! name through and never stops answers.

pub mod config;
pub mod handler;
mod inherited;
pub mod lists;
pub mod log;
pub(crate) mod logstore;
pub mod matcher;
pub mod rebuild;
pub mod resolver;
pub mod server;
mod service;
mod stats;
mod store;
pub mod types;
pub mod upstream;
pub mod zone;

pub use config::{BlockedAnswer, DnsConfig, UpstreamConfig, UpstreamProtocol};
pub use handler::{DnsHandler, DnsState};
pub use inherited::take_passed_sockets;
pub use lists::{CheckedName, EntryKind, NameClass, ParsedList, check_name, parse_list};
pub use log::{Outcome, QueryEvent, QueryLogger};
pub use matcher::{BlockReason, Filter, FilterBuilder, Verdict};
pub use resolver::Resolver;
pub use server::DnsServer;
pub use service::Dns;
pub use types::{
    Bucket, Count, DnsList, DnsRule, DnsStats, LineError, ListRefresh, LogFilter, LoggedQuery,
    RuleKind,
};
pub use upstream::Upstream;
pub use zone::{LocalHost, LocalZone};
