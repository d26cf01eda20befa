//! Request extractors whose failures are [`ApiError`]s, so a bad body, path or query gets the same
//! JSON error shape as a rule violation, and the bearer-token extractor that yields the [`Actor`].

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequest, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, header};
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

/// Proof that a request came through the reverse proxy's own hop: the unix socket that only the
/// proxy may open ([`crate::serve_proxy_socket`]). That listener puts it on every request it
/// serves; nothing a client sends can, so a forwarded address is believed only with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProxyHop;

/// The caller's tunnel address, as far as it is proven: over the proxy's socket
/// ([`ProxyHop`]), the client address the proxy added to `X-Forwarded-For`; over TCP, the peer
/// address itself when it lies in a tunnel subnet (the API bound on the tunnel side: WireGuard
/// proved it). Never a header on TCP: any local process can send one. `None` otherwise, and when
/// the server was not started with connection info.
///
/// That address is ambient identity (the browser does not choose to send it), so a state-changing
/// request resting on it must come from a page Mistborn served: see [`check_ambient_origin`].
/// Forward-auth, which changes nothing, reads the address without that rule ([`ProxiedClient`]).
#[derive(Debug, Clone, Copy)]
pub struct ClientAddr(pub Option<IpAddr>);

impl FromRequestParts<AppState> for ClientAddr {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let ProxiedClient(addr) = ProxiedClient::from_request_parts(parts, state).await?;
        if addr.is_some() {
            check_ambient_origin(parts, state)?;
        }
        Ok(ClientAddr(addr))
    }
}

/// The one rule for ambient identity: a POST, PUT, PATCH or DELETE without a bearer token that
/// would be identified by its tunnel address must carry the `Origin` of a page Mistborn served
/// ([`crate::origin::origin_allowed`]: `home.<suffix>` or the API's own origin). A foreign
/// origin, or none (every browser sends one on these methods, so a missing one is a program that
/// should use a token), is refused 403; any site the device's browser opens could otherwise act
/// as the device. Requests with a token are not ambient and are not checked here.
pub fn check_ambient_origin(parts: &Parts, state: &AppState) -> Result<(), ApiError> {
    let safe = matches!(
        parts.method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE
    );
    if safe
        || parts.headers.contains_key(header::AUTHORIZATION)
        || crate::origin::origin_allowed(&parts.headers, state.mistborn.config())
    {
        return Ok(());
    }
    Err(ApiError::foreign_origin())
}

/// The caller's proven tunnel address (see [`ClientAddr`]) without the Origin rule: for
/// forward-auth, which only answers a question about the request the proxy holds.
#[derive(Debug, Clone, Copy)]
pub struct ProxiedClient(pub Option<IpAddr>);

impl FromRequestParts<AppState> for ProxiedClient {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let addr = if parts.extensions.get::<ProxyHop>().is_some() {
            forwarded_for(&parts.headers)
        } else {
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|ConnectInfo(peer)| peer.ip().to_canonical())
        };
        let wg = &state.mistborn.config().wireguard;
        Ok(ProxiedClient(addr.filter(|a| match a {
            IpAddr::V4(v4) => wg.subnet_v4.contains(v4),
            IpAddr::V6(v6) => wg.subnet_v6.contains(v6),
        })))
    }
}

/// The address the trusted hop added to `X-Forwarded-For`: the rightmost entry of the last header
/// line. Caddy replaces the header with the one address it saw; nginx
/// (`$proxy_add_x_forwarded_for`) and HAProxy (`option forwardfor`) append theirs, so whatever a
/// client sent stands to the left. An unparsable rightmost entry is no address (never a fallback
/// to an entry the client wrote).
pub fn forwarded_for(headers: &HeaderMap) -> Option<IpAddr> {
    let line = headers.get_all("x-forwarded-for").iter().next_back()?;
    let entry = line.to_str().ok()?.rsplit(',').next()?.trim();
    entry.parse::<IpAddr>().ok().map(|a| a.to_canonical())
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
/// factor, so this cannot be used to take one over). Before sign-in the device acts only for its
/// own user ([`mistborn_core::auth::TunnelIdentity::enrolling_actor`]).
#[derive(Debug, Clone)]
pub struct Enroller(pub Actor);

impl FromRequestParts<AppState> for Enroller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        if parts.headers.get(header::AUTHORIZATION).is_some() {
            return bearer(parts, state).await.map(Enroller);
        }
        let TunnelIdentity(id) = TunnelIdentity::from_request_parts(parts, state).await?;
        id.map(|id| Enroller(id.enrolling_actor()))
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

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(lines: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for l in lines {
            h.append("x-forwarded-for", l.parse().expect("header value"));
        }
        h
    }

    #[test]
    fn the_rightmost_forwarded_entry_is_the_one_the_proxy_added() {
        let ip = |s: &str| Some(s.parse::<IpAddr>().expect("ip"));
        assert_eq!(forwarded_for(&headers(&["10.15.91.2"])), ip("10.15.91.2"));
        // nginx appends to what the client sent: the client's part is on the left.
        assert_eq!(
            forwarded_for(&headers(&["10.15.91.2, 10.15.91.7"])),
            ip("10.15.91.7")
        );
        // A client-sent line first, the proxy's own line last (HAProxy adds a header line).
        assert_eq!(
            forwarded_for(&headers(&["10.15.91.2", "10.15.91.7"])),
            ip("10.15.91.7")
        );
        assert_eq!(
            forwarded_for(&headers(&["::ffff:10.15.91.7"])),
            ip("10.15.91.7")
        );
        // Garbage on the right is no address, never the entry to its left.
        assert_eq!(forwarded_for(&headers(&["10.15.91.2, nonsense"])), None);
        assert_eq!(forwarded_for(&headers(&["10.15.91.2,"])), None);
        assert_eq!(forwarded_for(&HeaderMap::new()), None);
    }
}
