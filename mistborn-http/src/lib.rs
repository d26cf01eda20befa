//! # mistborn-http
//!
//! The REST API of Mistborn (axum, OpenAPI by utoipa) and the `mistborn` command. Handlers are
//! thin: they authenticate the caller into a [`mistborn_core::Actor`], call the core, and map
//! its errors once ([`ApiError::status`]). Build the router with [`router`]; serve it with
//! [`serve`] on TCP and [`serve_proxy_socket`] for the reverse proxy.
#![warn(missing_docs)]

pub mod api;
pub mod error;
pub mod extract;
pub mod forward;
pub mod live_caller;
pub mod model;
pub mod origin;
mod proxy_socket;
mod server;
pub mod state;
pub mod ui;

pub use api::{spec, spec_json};
pub use error::ApiError;
pub use proxy_socket::{ProxySocket, bind_proxy_socket, serve_proxy_socket};
pub use server::{JSON_BODY_LIMIT, router, serve};
pub use state::AppState;
