//! `/tokens`: API tokens. Everyone manages their own; superusers anyone's.

use axum::extract::State;
use axum::http::StatusCode;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::{ApiError, ErrorBody};
use crate::extract::{Auth, Json, Path, Query};
use crate::model::{CreateToken, CreatedToken, TokenView, UserFilter};
use crate::state::AppState;

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_tokens, create_token))
        .routes(routes!(revoke_token))
}

/// The caller's id, or the named user's.
async fn owner(
    s: &AppState,
    actor: &mistborn_core::Actor,
    user: Option<String>,
) -> Result<String, ApiError> {
    match user {
        Some(u) => Ok(u),
        None => Ok(s.mistborn.users().me(actor).await?.id.to_string()),
    }
}

/// The tokens of the caller (or, with `?user=`, of another user for superusers).
#[utoipa::path(get, path = "/tokens", tag = "tokens",
    params(UserFilter),
    responses(
        (status = 200, body = Vec<TokenView>),
        (status = 401, description = "No or bad token", body = ErrorBody),
        (status = 404, description = "No such user (or not visible to the caller)", body = ErrorBody),
    ),
    security(("bearer" = [])))]
async fn list_tokens(
    State(s): State<AppState>,
    Auth(actor): Auth,
    Query(filter): Query<UserFilter>,
) -> Result<Json<Vec<TokenView>>, ApiError> {
    let user = owner(&s, &actor, filter.user).await?;
    let tokens = s.mistborn.users().list_tokens(&actor, &user).await?;
    Ok(Json(tokens.into_iter().map(Into::into).collect()))
}

/// Creates a token; its secret is in this response only.
#[utoipa::path(post, path = "/tokens", tag = "tokens",
    request_body = CreateToken,
    responses(
        (status = 201, body = CreatedToken),
        (status = 400, description = "Bad name or body", body = ErrorBody),
        (status = 401, description = "No or bad token", body = ErrorBody),
        (status = 404, description = "No such user (or not visible to the caller)", body = ErrorBody),
        (status = 409, description = "The user has a token of that name", body = ErrorBody),
    ),
    security(("bearer" = [])))]
async fn create_token(
    State(s): State<AppState>,
    Auth(actor): Auth,
    Json(body): Json<CreateToken>,
) -> Result<(StatusCode, Json<CreatedToken>), ApiError> {
    let user = owner(&s, &actor, body.user).await?;
    let token = s
        .mistborn
        .users()
        .create_token(&actor, &user, &body.name)
        .await?;
    Ok((StatusCode::CREATED, Json(token.into())))
}

/// Revokes a token (its owner or a superuser).
#[utoipa::path(delete, path = "/tokens/{id}", tag = "tokens",
    params(("id" = String, Path, description = "Token id (UUID)", pattern = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")),
    responses(
        (status = 204, description = "Revoked"),
        (status = 400, description = "Malformed id", body = ErrorBody),
        (status = 401, description = "No or bad token", body = ErrorBody),
        (status = 404, description = "No such token (or not visible to the caller)", body = ErrorBody),
    ),
    security(("bearer" = [])))]
async fn revoke_token(
    State(s): State<AppState>,
    Auth(actor): Auth,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    s.mistborn.users().revoke_token(&actor, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
