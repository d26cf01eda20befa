//! `/profiles`: WireGuard profiles. Regular users see and change only their own; others' profiles
//! are "not found" to them (the core decides).

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use mistborn_core::peers::EnrollmentRequest;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::{ApiError, ErrorBody};
use crate::extract::{Auth, Json, Path, Query};
use crate::model::{
    CreateProfile, EnrollDevice, Enrollment, ProfileView, UpdateProfile, UserFilter,
};
use crate::state::AppState;

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_profiles, create_profile))
        .routes(routes!(enroll_device))
        .routes(routes!(get_profile, update_profile, delete_profile))
        .routes(routes!(profile_config))
        .routes(routes!(profile_qr))
}

/// The profiles the caller may see: all for a superuser, their own for a regular user; `?user=`
/// narrows to one user.
#[utoipa::path(get, path = "/profiles", tag = "profiles",
    params(UserFilter),
    responses(
        (status = 200, body = Vec<ProfileView>),
        (status = 401, description = "No or bad token", body = ErrorBody),
        (status = 404, description = "No such user (or not visible to the caller)", body = ErrorBody),
    ),
    security(("bearer" = [])))]
async fn list_profiles(
    State(s): State<AppState>,
    Auth(actor): Auth,
    Query(filter): Query<UserFilter>,
) -> Result<Json<Vec<ProfileView>>, ApiError> {
    let peers = s.mistborn.peers();
    let list = match filter.user {
        Some(user) => peers.list_for_user(&actor, &user).await?,
        None => peers.list(&actor).await?,
    };
    Ok(Json(list.into_iter().map(Into::into).collect()))
}

/// Creates a profile: allocates its tunnel addresses and makes its keys, or takes the device's
/// own public key. The owner is the caller unless a superuser names another user.
#[utoipa::path(post, path = "/profiles", tag = "profiles",
    request_body = CreateProfile,
    responses(
        (status = 201, body = ProfileView),
        (status = 400, description = "Bad name, public key or body", body = ErrorBody),
        (status = 401, description = "No or bad token", body = ErrorBody),
        (status = 403, description = "A regular user asked for `kind: wireguard` or `listen_port: udp53/udp443` (superuser decisions), or has `peers.max_profiles_per_user` profiles already", body = ErrorBody),
        (status = 404, description = "No such user (or not visible to the caller)", body = ErrorBody),
        (status = 409, description = "Name or key taken, or the address pool is full (`pool_exhausted`)", body = ErrorBody),
    ),
    security(("bearer" = [])))]
async fn create_profile(
    State(s): State<AppState>,
    Auth(actor): Auth,
    Json(body): Json<CreateProfile>,
) -> Result<(StatusCode, Json<ProfileView>), ApiError> {
    let peer = s.mistborn.peers().create(&actor, body.into()).await?;
    Ok((StatusCode::CREATED, Json(peer.into())))
}

/// Enrolls a device that generated its own key pair: creates its profile with the device's
/// public key and answers with the rest of its config, so the private key never leaves it.
#[utoipa::path(post, path = "/profiles/enroll", tag = "profiles",
    request_body = EnrollDevice,
    responses(
        (status = 201, body = Enrollment),
        (status = 400, description = "Bad name, public key or body", body = ErrorBody),
        (status = 401, description = "No or bad token", body = ErrorBody),
        (status = 403, description = "A regular user asked for `kind: wireguard` or `listen_port: udp53/udp443` (superuser decisions), or has `peers.max_profiles_per_user` profiles already", body = ErrorBody),
        (status = 404, description = "No such user (or not visible to the caller)", body = ErrorBody),
        (status = 409, description = "Name or key taken, or the address pool is full (`pool_exhausted`)", body = ErrorBody),
    ),
    security(("bearer" = [])))]
async fn enroll_device(
    State(s): State<AppState>,
    Auth(actor): Auth,
    Json(body): Json<EnrollDevice>,
) -> Result<(StatusCode, Json<Enrollment>), ApiError> {
    let kind = match body.kind {
        Some(k) => k.into(),
        None => s.mistborn.peers().default_kind(&actor),
    };
    let mut request = EnrollmentRequest::new(&body.name, &body.public_key, kind)?;
    request.client_to_client = body.client_to_client.unwrap_or(false);
    request.listen_port = body.listen_port.map(Into::into).unwrap_or_default();
    let answer = s
        .mistborn
        .peers()
        .enroll(&actor, body.user.as_deref(), request)
        .await?;
    Ok((StatusCode::CREATED, Json(answer.into())))
}

/// One profile.
#[utoipa::path(get, path = "/profiles/{id}", tag = "profiles",
    params(("id" = String, Path, description = "Profile id (UUID)", pattern = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")),
    responses(
        (status = 200, body = ProfileView),
        (status = 401, description = "No or bad token", body = ErrorBody),
        (status = 404, description = "No such profile (or not visible to the caller)", body = ErrorBody),
    ),
    security(("bearer" = [])))]
async fn get_profile(
    State(s): State<AppState>,
    Auth(actor): Auth,
    Path(id): Path<String>,
) -> Result<Json<ProfileView>, ApiError> {
    Ok(Json(s.mistborn.peers().get(&actor, &id).await?.into()))
}

/// Changes name, kind, client-to-client flag or port choice.
#[utoipa::path(patch, path = "/profiles/{id}", tag = "profiles",
    params(("id" = String, Path, description = "Profile id (UUID)", pattern = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")),
    request_body = UpdateProfile,
    responses(
        (status = 200, body = ProfileView),
        (status = 400, description = "Bad name or body", body = ErrorBody),
        (status = 401, description = "No or bad token", body = ErrorBody),
        (status = 403, description = "A regular user changed `kind` to `wireguard` or `listen_port` to `udp53`/`udp443` (superuser decisions)", body = ErrorBody),
        (status = 404, description = "No such profile (or not visible to the caller)", body = ErrorBody),
        (status = 409, description = "The owner has a profile of that name", body = ErrorBody),
    ),
    security(("bearer" = [])))]
async fn update_profile(
    State(s): State<AppState>,
    Auth(actor): Auth,
    Path(id): Path<String>,
    Json(body): Json<UpdateProfile>,
) -> Result<Json<ProfileView>, ApiError> {
    let peer = s.mistborn.peers().update(&actor, &id, body.into()).await?;
    Ok(Json(peer.into()))
}

/// Deletes a profile; its addresses are free again.
#[utoipa::path(delete, path = "/profiles/{id}", tag = "profiles",
    params(("id" = String, Path, description = "Profile id (UUID)", pattern = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, description = "No or bad token", body = ErrorBody),
        (status = 404, description = "No such profile (or not visible to the caller)", body = ErrorBody),
    ),
    security(("bearer" = [])))]
async fn delete_profile(
    State(s): State<AppState>,
    Auth(actor): Auth,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    s.mistborn.peers().delete(&actor, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The client config file (wg-quick format) for the device.
#[utoipa::path(get, path = "/profiles/{id}/config", tag = "profiles",
    params(("id" = String, Path, description = "Profile id (UUID)", pattern = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")),
    responses(
        (status = 200, description = "The client config", body = String, content_type = "text/plain"),
        (status = 401, description = "No or bad token", body = ErrorBody),
        (status = 404, description = "No such profile (or not visible to the caller)", body = ErrorBody),
    ),
    security(("bearer" = [])))]
async fn profile_config(
    State(s): State<AppState>,
    Auth(actor): Auth,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let config = s.mistborn.peers().client_config(&actor, &id).await?;
    Ok((
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        config.render(),
    ))
}

/// The client config as a QR code for the WireGuard phone apps.
#[utoipa::path(get, path = "/profiles/{id}/qr.png", tag = "profiles",
    params(("id" = String, Path, description = "Profile id (UUID)", pattern = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")),
    responses(
        (status = 200, description = "PNG image of the QR code", body = Vec<u8>, content_type = "image/png"),
        (status = 401, description = "No or bad token", body = ErrorBody),
        (status = 404, description = "No such profile (or not visible to the caller)", body = ErrorBody),
    ),
    security(("bearer" = [])))]
async fn profile_qr(
    State(s): State<AppState>,
    Auth(actor): Auth,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let png = s.mistborn.peers().qr_png(&actor, &id).await?;
    Ok(([(header::CONTENT_TYPE, "image/png")], png))
}
