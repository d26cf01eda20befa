//! `/status`: whether the data plane is on, and each visible profile's tunnel statistics; as JSON,
//! and as a WebSocket that pushes the caller's view whenever it changes. A regular user's view
//! holds only their own profiles (the core filters).

use axum::extract::State;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade, close_code};
use axum::http::header;
use axum::http::request::Parts;
use axum::response::Response;
use mistborn_core::status::StatusSnapshot;
use serde::Serialize;
use tokio::sync::broadcast::error::RecvError;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::{ApiError, ErrorBody};
use crate::extract::{Auth, Json};
use crate::live_caller::LiveCaller;
use crate::origin::{RequestOrigin, request_origin};
use crate::state::AppState;

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_status))
        .routes(routes!(status_ws))
}

/// The data plane's state.
#[derive(Debug, Serialize, ToSchema)]
pub struct DataPlaneView {
    /// The interface carries the stored profiles.
    pub on: bool,
    /// `kernel` or `userspace` when on.
    pub backend: Option<String>,
    /// Server interface name.
    pub interface: String,
    /// UDP listen port.
    pub listen_port: u16,
    /// Why it is off (no root, no module, no wireguard-go, backend none...).
    pub reason: Option<String>,
    /// Stored profiles that could not be put on the interface, and why.
    pub skipped: Vec<SkippedView>,
}

/// A stored profile left off the interface.
#[derive(Debug, Serialize, ToSchema)]
pub struct SkippedView {
    /// Profile id.
    pub id: String,
    /// Why.
    pub reason: String,
}

/// One profile's tunnel state.
#[derive(Debug, Serialize, ToSchema)]
pub struct PeerStatusView {
    /// Profile id.
    pub profile_id: String,
    /// Owner's id.
    pub user_id: String,
    /// Owner's name.
    pub username: String,
    /// Profile name.
    pub name: String,
    /// Tunnel IPv4 address.
    pub address_v4: String,
    /// Tunnel IPv6 address.
    pub address_v6: String,
    /// The device's public key.
    pub public_key: String,
    /// Where the device's packets last came from (`ip:port`).
    pub endpoint: Option<String>,
    /// Unix seconds of the latest handshake; null if never.
    pub latest_handshake: Option<i64>,
    /// Bytes received from the device.
    pub rx_bytes: u64,
    /// Bytes sent to the device.
    pub tx_bytes: u64,
    /// The latest handshake is recent enough for a live session (under 180 s).
    pub connected: bool,
}

/// What the caller sees of the live status.
#[derive(Debug, Serialize, ToSchema)]
pub struct StatusView {
    /// The data plane.
    pub dataplane: DataPlaneView,
    /// Visible profiles with their statistics.
    pub peers: Vec<PeerStatusView>,
    /// When the statistics were read, Unix seconds.
    pub updated_at: i64,
}

impl From<StatusSnapshot> for StatusView {
    fn from(s: StatusSnapshot) -> Self {
        let d = s.dataplane;
        Self {
            dataplane: DataPlaneView {
                on: d.on,
                backend: d.backend.map(|b| b.as_str().to_string()),
                interface: d.interface,
                listen_port: d.listen_port,
                reason: d.reason,
                skipped: d
                    .skipped
                    .into_iter()
                    .map(|k| SkippedView {
                        id: k.id,
                        reason: k.reason,
                    })
                    .collect(),
            },
            peers: s
                .peers
                .into_iter()
                .map(|p| PeerStatusView {
                    profile_id: p.peer_id.to_string(),
                    user_id: p.user_id.to_string(),
                    username: p.username.to_string(),
                    name: p.name.to_string(),
                    address_v4: p.address_v4.to_string(),
                    address_v6: p.address_v6.to_string(),
                    public_key: p.public_key.to_string(),
                    endpoint: p.endpoint.map(|e| e.to_string()),
                    latest_handshake: p.latest_handshake,
                    rx_bytes: p.rx_bytes,
                    tx_bytes: p.tx_bytes,
                    connected: p.connected,
                })
                .collect(),
            updated_at: s.updated_at,
        }
    }
}

/// The live status as the caller may see it: a superuser sees every profile, a regular user only
/// their own. `dataplane.on` is false with a `reason` when the tunnel is not running.
#[utoipa::path(get, path = "/status", tag = "status",
    responses(
        (status = 200, body = StatusView),
        (status = 401, description = "No or bad token", body = ErrorBody),
    ),
    security(("bearer" = [])))]
async fn get_status(State(s): State<AppState>, Auth(actor): Auth) -> Json<StatusView> {
    Json(s.mistborn.status().current(&actor).into())
}

/// WebSocket: sends the caller's status view (a `StatusView` JSON text message) at once and again
/// whenever it changes; changes to profiles the caller may not see are never sent. A browser may
/// open it only from a page Mistborn served (`Origin` `https://home.<dns_suffix>` or this
/// listener's own address); a client without `Origin` must send a token. The caller's rights are
/// checked again on every change to users, tokens, sign-ins and profiles, and when their session
/// ends: a caller who lost them gets close code 1008, one whose role changed gets the new view.
#[utoipa::path(get, path = "/status/ws", tag = "status",
    responses(
        (status = 101, description = "Switching to WebSocket; then one StatusView JSON text message per change"),
        (status = 400, description = "Not a WebSocket upgrade request", body = ErrorBody),
        (status = 401, description = "No or bad token (a client without an Origin header needs one)", body = ErrorBody),
        (status = 403, description = "The Origin is not a page Mistborn served", body = ErrorBody),
    ),
    security(("bearer" = [])))]
async fn status_ws(
    State(s): State<AppState>,
    parts: Parts,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response, ApiError> {
    match request_origin(&parts.headers, s.mistborn.config()) {
        RequestOrigin::Ours => {}
        RequestOrigin::Foreign => return Err(ApiError::foreign_origin()),
        // Not a browser: the device's tunnel address proves nothing about which program asks.
        RequestOrigin::Absent if !parts.headers.contains_key(header::AUTHORIZATION) => {
            return Err(ApiError::missing_token());
        }
        RequestOrigin::Absent => {}
    }
    let caller = LiveCaller::authenticate(&parts, &s).await?;
    let ws = ws.map_err(ApiError::not_websocket)?;
    Ok(ws.on_upgrade(move |socket| push(socket, s, caller)))
}

/// Why a socket is closed when its caller's rights end.
const RIGHTS_ENDED: &str = "signed out, revoked or expired: authenticate again";

async fn push(mut socket: WebSocket, s: AppState, mut caller: LiveCaller) {
    let mut changes = s.mistborn.subscribe();
    let mut stream = s.mistborn.status().subscribe(caller.actor().clone());
    loop {
        // Biased: a change of rights is handled before a view is sent with the old ones.
        let recheck = tokio::select! {
            biased;
            change = changes.recv() => match change {
                Ok(change) => LiveCaller::may_be_touched_by(&change),
                // Missed some: any of them may have been about this caller.
                Err(RecvError::Lagged(_)) => true,
                Err(RecvError::Closed) => break,
            },
            () = caller.expiry() => true,
            view = stream.next() => {
                let Some(view) = view else { break };
                let Ok(text) = serde_json::to_string(&StatusView::from(view)) else { break };
                if socket.send(Message::Text(text.into())).await.is_err() {
                    break;
                }
                false
            }
            msg = socket.recv() => match msg {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => break,
                Some(Ok(_)) => false,
            },
        };
        if !recheck {
            continue;
        }
        match caller.recheck(&s).await {
            Ok(false) => {}
            // The next view is the one the new rights allow.
            Ok(true) => stream = s.mistborn.status().subscribe(caller.actor().clone()),
            Err(e) => {
                tracing::debug!("status socket closed: {e}");
                let close = CloseFrame {
                    code: close_code::POLICY,
                    reason: RIGHTS_ENDED.into(),
                };
                let _ = socket.send(Message::Close(Some(close))).await;
                break;
            }
        }
    }
}
