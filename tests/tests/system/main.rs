//! Mistborn system tests (need root; without it they skip, unless `CI` is set: then they fail).
//! Each test builds its own network namespaces, interfaces and data dirs, so they run in parallel.

mod firewall;
mod firewall_apply;
mod forwarding;
mod wireguard;
