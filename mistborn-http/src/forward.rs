//! `/auth/forward`: the decision reverse proxies ask for before every request to a service (Caddy
//! `forward_auth`, Traefik ForwardAuth, nginx `auth_request`). Allowed: 200 with an empty body (a
//! body makes Caddy drop the connection) and `Remote-User`/`Remote-Name`/`Remote-Email`. Denied: 403
//! `Mistborn: Not authorized`, or for a browser that only needs to sign in, a redirect to the login
//! page. A store error is a 500: never an allow.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use mistborn_core::auth::{DenyReason, ForwardDecision};
use mistborn_core::proxy::NOT_AUTHORIZED;

use crate::extract::ProxiedClient;
use crate::state::{AppState, now};

/// The forward-auth endpoint.
pub async fn forward(
    State(s): State<AppState>,
    ProxiedClient(addr): ProxiedClient,
    headers: HeaderMap,
) -> Response {
    let host = headers
        .get("x-forwarded-host")
        .or_else(|| headers.get(header::HOST))
        .and_then(|v| v.to_str().ok());
    match s.mistborn.auth().forward(addr, host, now()).await {
        Ok(ForwardDecision::Allow { username, profile }) => {
            let email = format!("{username}@{}", s.mistborn.config().dns_suffix);
            (
                StatusCode::OK,
                [
                    ("remote-user", username.to_string()),
                    ("remote-name", profile),
                    ("remote-email", email),
                    (header::CONTENT_LENGTH.as_str(), "0".to_string()),
                ],
            )
                .into_response()
        }
        Ok(ForwardDecision::Deny(reason)) => deny(&s, reason, &headers),
        Err(e) => {
            tracing::error!("forward-auth could not decide: {e}");
            (StatusCode::INTERNAL_SERVER_ERROR, NOT_AUTHORIZED).into_response()
        }
    }
}

fn deny(s: &AppState, reason: DenyReason, headers: &HeaderMap) -> Response {
    let browser = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("text/html"));
    if reason == DenyReason::SignInRequired && browser {
        let login = format!("https://home.{}/", s.mistborn.config().dns_suffix);
        return (
            StatusCode::FOUND,
            [(header::LOCATION, login)],
            NOT_AUTHORIZED,
        )
            .into_response();
    }
    (
        StatusCode::FORBIDDEN,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        NOT_AUTHORIZED,
    )
        .into_response()
}
