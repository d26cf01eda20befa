//! `/auth`: the second factor (TOTP enrollment, confirmation, reset), sign-in and sign-out from a
//! tunnel address, sessions; `/tls/ca.pem`. The identity of a sign-in is the WireGuard profile
//! behind the request's tunnel address, never a field of the body.

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use mistborn_core::Actor;
use mistborn_core::peers::PeerKind;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::{ApiError, ErrorBody};
use crate::extract::{Auth, ClientAddr, Enroller, Json, Path, Query, TunnelIdentity};
use crate::model::{
    CodeRequest, EnrollmentView, RecoveryCodes, SessionView, TotpStatusView, UserFilter, UserRef,
    WhoAmI,
};
use crate::state::{AppState, now};

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(whoami))
        .routes(routes!(totp_status))
        .routes(routes!(enroll))
        .routes(routes!(confirm))
        .routes(routes!(reset))
        .routes(routes!(login))
        .routes(routes!(logout))
        .routes(routes!(list_sessions))
        .routes(routes!(revoke_session))
        .routes(routes!(ca_pem))
}

async fn user_key(s: &AppState, actor: &Actor, user: Option<String>) -> Result<String, ApiError> {
    match user {
        Some(u) => Ok(u),
        None => Ok(s.mistborn.users().me(actor).await?.id.to_string()),
    }
}

/// Who the request's tunnel address belongs to, and whether it is signed in.
#[utoipa::path(get, path = "/auth/whoami", tag = "auth",
    responses((status = 200, body = WhoAmI)))]
async fn whoami(
    State(s): State<AppState>,
    ClientAddr(addr): ClientAddr,
    tunnel: TunnelIdentity,
) -> Result<Json<WhoAmI>, ApiError> {
    let Some(id) = tunnel.0 else {
        return Ok(Json(WhoAmI {
            address: addr.map(|a| a.to_string()),
            username: None,
            profile: None,
            mfa: false,
            verified: false,
            totp_confirmed: false,
        }));
    };
    let status = s
        .mistborn
        .auth()
        .status(&id.actor, id.peer.user_id.as_str())
        .await?;
    Ok(Json(WhoAmI {
        address: addr.map(|a| a.to_string()),
        username: Some(id.peer.username.to_string()),
        profile: Some(id.peer.name.to_string()),
        mfa: id.peer.kind == PeerKind::Mfa,
        verified: id.verified(),
        totp_confirmed: status.confirmed,
    }))
}

/// Whether a user (the caller by default) has a second factor.
#[utoipa::path(get, path = "/auth/totp", tag = "auth", params(UserFilter),
    responses((status = 200, body = TotpStatusView), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
async fn totp_status(
    State(s): State<AppState>,
    Enroller(actor): Enroller,
    Query(filter): Query<UserFilter>,
) -> Result<Json<TotpStatusView>, ApiError> {
    let user = user_key(&s, &actor, filter.user).await?;
    Ok(Json(s.mistborn.auth().status(&actor, &user).await?.into()))
}

/// Starts a TOTP enrollment; the secret and QR code are in this response only.
#[utoipa::path(post, path = "/auth/totp/enroll", tag = "auth", request_body = UserRef,
    responses((status = 200, body = EnrollmentView), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, description = "Already confirmed: a superuser resets it first", body = ErrorBody)),
    security(("bearer" = [])))]
async fn enroll(
    State(s): State<AppState>,
    Enroller(actor): Enroller,
    Json(body): Json<UserRef>,
) -> Result<Json<EnrollmentView>, ApiError> {
    let user = user_key(&s, &actor, body.user).await?;
    Ok(Json(
        s.mistborn.auth().enroll(&actor, &user, now()).await?.into(),
    ))
}

/// Confirms an enrollment with a first code; returns recovery codes, shown once.
#[utoipa::path(post, path = "/auth/totp/confirm", tag = "auth", request_body = CodeRequest,
    responses((status = 200, body = RecoveryCodes), (status = 400, description = "Wrong, expired or used code", body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 404, description = "No such user (or not visible to the caller)", body = ErrorBody)),
    security(("bearer" = [])))]
async fn confirm(
    State(s): State<AppState>,
    Enroller(actor): Enroller,
    Json(body): Json<CodeRequest>,
) -> Result<Json<RecoveryCodes>, ApiError> {
    let user = user_key(&s, &actor, body.user).await?;
    let recovery_codes = s
        .mistborn
        .auth()
        .confirm(&actor, &user, &body.code, now())
        .await?;
    Ok(Json(RecoveryCodes { recovery_codes }))
}

/// Removes a user's second factor and ends their sessions (superusers only).
#[utoipa::path(post, path = "/auth/totp/reset", tag = "auth", request_body = UserRef,
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
async fn reset(
    State(s): State<AppState>,
    Auth(actor): Auth,
    Json(body): Json<UserRef>,
) -> Result<StatusCode, ApiError> {
    let user = body.user.ok_or_else(|| {
        mistborn_core::Error::invalid("user", "name the user whose second factor to reset")
    })?;
    s.mistborn.auth().reset(&actor, &user).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Signs in the device behind the request's tunnel address with a TOTP or recovery code.
#[utoipa::path(post, path = "/auth/login", tag = "auth", request_body = CodeRequest,
    responses((status = 200, body = SessionView), (status = 401, description = "Wrong code, or not on the tunnel", body = ErrorBody),
        (status = 429, description = "Too many failed codes: wait", body = ErrorBody)))]
async fn login(
    State(s): State<AppState>,
    ClientAddr(addr): ClientAddr,
    Json(body): Json<CodeRequest>,
) -> Result<Json<SessionView>, ApiError> {
    let addr = addr.ok_or_else(|| {
        mistborn_core::Error::Unauthenticated("sign in from a device connected to the VPN".into())
    })?;
    Ok(Json(
        s.mistborn
            .auth()
            .login(addr, &body.code, now())
            .await?
            .into(),
    ))
}

/// Ends the session of the device behind the request's tunnel address.
#[utoipa::path(post, path = "/auth/logout", tag = "auth",
    responses((status = 204), (status = 404, description = "No session for this address", body = ErrorBody)))]
async fn logout(
    State(s): State<AppState>,
    ClientAddr(addr): ClientAddr,
) -> Result<StatusCode, ApiError> {
    let addr =
        addr.ok_or_else(|| mistborn_core::Error::not_found("session for this connection"))?;
    s.mistborn.auth().sign_out(addr, now()).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Live sessions: all for a superuser, the caller's own otherwise.
#[utoipa::path(get, path = "/auth/sessions", tag = "auth",
    responses((status = 200, body = Vec<SessionView>), (status = 401, body = ErrorBody)),
    security(("bearer" = [])))]
async fn list_sessions(
    State(s): State<AppState>,
    Auth(actor): Auth,
) -> Result<Json<Vec<SessionView>>, ApiError> {
    let sessions = s.mistborn.auth().sessions(&actor).await?;
    Ok(Json(sessions.into_iter().map(Into::into).collect()))
}

/// Ends a session (its owner or a superuser).
#[utoipa::path(delete, path = "/auth/sessions/{id}", tag = "auth", params(("id" = String, Path, description = "Session id (UUID)", pattern = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")),
    responses((status = 204), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
async fn revoke_session(
    State(s): State<AppState>,
    Auth(actor): Auth,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    s.mistborn.auth().revoke_session(&actor, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The local CA certificate, for devices to import (public).
#[utoipa::path(get, path = "/tls/ca.pem", tag = "auth",
    responses((status = 200, description = "PEM certificate", content_type = "application/x-pem-file")))]
async fn ca_pem(State(s): State<AppState>) -> Result<Response, ApiError> {
    let pem = s.mistborn.tls().ca_pem(now()).await?;
    Ok(([(header::CONTENT_TYPE, "application/x-pem-file")], pem).into_response())
}
