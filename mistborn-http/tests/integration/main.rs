//! Integration tests of mistborn-http: the REST API through the router and a real listener, the
//! OpenAPI document, the `mistborn` binary, and `wg setconf` on rendered configs.
#![allow(clippy::unwrap_used)]

mod api_auth;
mod api_dns;
mod api_errors;
mod api_firewall;
mod api_flow;
mod api_status;
mod api_status_ws;
mod api_web;
mod cli;
mod cross_process;
mod daemon;
mod dns_restart;
mod identity;
mod listener;
mod openapi;
mod proxy_e2e;
mod support;
mod system_firewall;
mod system_firewall_policy;
mod system_wireguard;
mod wg_setconf;
