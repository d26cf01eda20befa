//! Request extractors whose failures are [`ApiError`]s, so a bad body, path or query gets the same
//! JSON error shape as a rule violation, and the bearer-token extractor that yields the [`Actor`].

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequest, FromRequestParts};
use axum::http::header;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use mistborn_core::Actor;
use serde::Serialize;

use crate::error::ApiError;
use crate::state::AppState;

/// `axum::Json` with [`ApiError`] as its rejection.
#[derive(Debug, FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub struct Json<T>(pub T);

impl<T: Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

/// `axum::extract::Path` with [`ApiError`] as its rejection.
#[derive(Debug, FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub struct Path<T>(pub T);

/// `axum::extract::Query` with [`ApiError`] as its rejection.
#[derive(Debug, FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub struct Query<T>(pub T);

/// The caller, authenticated by `Authorization: Bearer <API token>`, or else by the WireGuard
/// tunnel the request came through (a WireGuard-only profile as it is, an MFA profile with a live
/// session). What the caller may do is decided by the core from this [`Actor`].
#[derive(Debug, Clone)]
pub struct Auth(pub Actor);

impl FromRequestParts<AppState> for Auth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        if parts.headers.get(header::AUTHORIZATION).is_none() {
            let identity = TunnelIdentity::from_request_parts(parts, state).await?;
            let id = identity.0.ok_or_else(ApiError::missing_token)?;
            return Ok(Auth(id.verified_actor()?.clone()));
        }
        bearer(parts, state).await.map(Auth)
    }
}

/// Where a request comes from: the TCP peer, or, when the peer is this host's own reverse proxy
/// (a loopback address), the client address the proxy put first in `X-Forwarded-For`. `None` when
/// the server was not started with connection info.
#[derive(Debug, Clone, Copy)]
pub struct ClientAddr(pub Option<IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddr {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let Some(ConnectInfo(peer)) = parts.extensions.get::<ConnectInfo<SocketAddr>>().copied()
        else {
            return Ok(ClientAddr(None));
        };
        if !peer.ip().is_loopback() {
            return Ok(ClientAddr(Some(peer.ip())));
        }
        // Caddy replaces a client-sent X-Forwarded-For with the address it saw, so the first entry
        // is the client. Only a loopback peer (the proxy on this host) is trusted to say so.
        let forwarded = parts
            .headers
            .get("x-forwarded-for")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(',').next())
            .and_then(|v| v.trim().parse::<IpAddr>().ok());
        Ok(ClientAddr(Some(forwarded.unwrap_or(peer.ip()))))
    }
}

/// The profile behind the request's tunnel address, verified or not (for the sign-in endpoints).
#[derive(Debug, Clone)]
pub struct TunnelIdentity(pub Option<mistborn_core::auth::TunnelIdentity>);

impl FromRequestParts<AppState> for TunnelIdentity {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let ClientAddr(addr) = ClientAddr::from_request_parts(parts, state).await?;
        let Some(addr) = addr else {
            return Ok(TunnelIdentity(None));
        };
        Ok(TunnelIdentity(
            state
                .mistborn
                .auth()
                .identify(addr, crate::state::now())
                .await?,
        ))
    }
}

/// The caller for setting up a second factor: a bearer token, or the tunnel identity even before
/// its first sign-in (the tunnel is the first factor; the core refuses to replace a confirmed second
/// factor, so this cannot be used to take one over).
#[derive(Debug, Clone)]
pub struct Enroller(pub Actor);

impl FromRequestParts<AppState> for Enroller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        if parts.headers.get(header::AUTHORIZATION).is_some() {
            return bearer(parts, state).await.map(Enroller);
        }
        let TunnelIdentity(id) = TunnelIdentity::from_request_parts(parts, state).await?;
        id.map(|id| Enroller(id.actor))
            .ok_or_else(ApiError::missing_token)
    }
}

/// The actor of a bearer token.
async fn bearer(parts: &Parts, state: &AppState) -> Result<Actor, ApiError> {
    {
        let header = parts
            .headers
            .get(header::AUTHORIZATION)
            .ok_or_else(ApiError::missing_token)?;
        let token = header
            .to_str()
            .ok()
            .and_then(|v| {
                let (scheme, rest) = v.split_once(' ')?;
                scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
            })
            .filter(|t| !t.is_empty())
            .ok_or_else(ApiError::missing_token)?;
        Ok(state.mistborn.users().authenticate_token(token).await?)
    }
}
