//! `/users` and `/me`: user accounts (superusers manage them; everyone can see and re-password
//! themselves).

use axum::extract::State;
use axum::http::StatusCode;
use mistborn_core::users::NewUser;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::{ApiError, ErrorBody};
use crate::extract::{Auth, Json, Path};
use crate::model::{CreateUser, SetPassword, SetRole, UserView};
use crate::state::AppState;

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(me))
        .routes(routes!(list_users, create_user))
        .routes(routes!(get_user, delete_user))
        .routes(routes!(set_role))
        .routes(routes!(set_password))
}

/// The caller's own account.
#[utoipa::path(get, path = "/me", tag = "users",
    responses(
        (status = 200, body = UserView),
        (status = 401, description = "No or bad token", body = ErrorBody),
    ),
    security(("bearer" = [])))]
async fn me(State(s): State<AppState>, Auth(actor): Auth) -> Result<Json<UserView>, ApiError> {
    Ok(Json(s.mistborn.users().me(&actor).await?.into()))
}

/// Every user (superusers only).
#[utoipa::path(get, path = "/users", tag = "users",
    responses(
        (status = 200, body = Vec<UserView>),
        (status = 401, description = "No or bad token", body = ErrorBody),
        (status = 403, description = "Not a superuser", body = ErrorBody),
    ),
    security(("bearer" = [])))]
async fn list_users(
    State(s): State<AppState>,
    Auth(actor): Auth,
) -> Result<Json<Vec<UserView>>, ApiError> {
    let users = s.mistborn.users().list(&actor).await?;
    Ok(Json(users.into_iter().map(Into::into).collect()))
}

/// Creates a user (superusers only).
#[utoipa::path(post, path = "/users", tag = "users",
    request_body = CreateUser,
    responses(
        (status = 201, body = UserView),
        (status = 400, description = "Bad username, password or body", body = ErrorBody),
        (status = 401, description = "No or bad token", body = ErrorBody),
        (status = 403, description = "Not a superuser", body = ErrorBody),
        (status = 409, description = "The username is taken", body = ErrorBody),
    ),
    security(("bearer" = [])))]
async fn create_user(
    State(s): State<AppState>,
    Auth(actor): Auth,
    Json(body): Json<CreateUser>,
) -> Result<(StatusCode, Json<UserView>), ApiError> {
    let new = NewUser {
        username: body.username,
        password: body.password,
        role: body.role.into(),
    };
    let user = s.mistborn.users().create(&actor, new).await?;
    Ok((StatusCode::CREATED, Json(user.into())))
}

/// One user by id or username (regular users: only themselves).
#[utoipa::path(get, path = "/users/{user}", tag = "users",
    params(("user" = String, Path, description = "User id or username")),
    responses(
        (status = 200, body = UserView),
        (status = 401, description = "No or bad token", body = ErrorBody),
        (status = 404, description = "No such user (or not visible to the caller)", body = ErrorBody),
    ),
    security(("bearer" = [])))]
async fn get_user(
    State(s): State<AppState>,
    Auth(actor): Auth,
    Path(user): Path<String>,
) -> Result<Json<UserView>, ApiError> {
    Ok(Json(s.mistborn.users().get(&actor, &user).await?.into()))
}

/// Deletes a user with all their profiles and tokens (superusers only; never the last superuser).
#[utoipa::path(delete, path = "/users/{user}", tag = "users",
    params(("user" = String, Path, description = "User id or username")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, description = "No or bad token", body = ErrorBody),
        (status = 403, description = "Not a superuser", body = ErrorBody),
        (status = 404, description = "No such user", body = ErrorBody),
        (status = 409, description = "The last superuser", body = ErrorBody),
    ),
    security(("bearer" = [])))]
async fn delete_user(
    State(s): State<AppState>,
    Auth(actor): Auth,
    Path(user): Path<String>,
) -> Result<StatusCode, ApiError> {
    s.mistborn.users().delete(&actor, &user).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Changes a user's role (superusers only; the last superuser stays one).
#[utoipa::path(put, path = "/users/{user}/role", tag = "users",
    params(("user" = String, Path, description = "User id or username")),
    request_body = SetRole,
    responses(
        (status = 200, body = UserView),
        (status = 400, description = "Bad body", body = ErrorBody),
        (status = 401, description = "No or bad token", body = ErrorBody),
        (status = 403, description = "Not a superuser", body = ErrorBody),
        (status = 404, description = "No such user", body = ErrorBody),
        (status = 409, description = "The last superuser", body = ErrorBody),
    ),
    security(("bearer" = [])))]
async fn set_role(
    State(s): State<AppState>,
    Auth(actor): Auth,
    Path(user): Path<String>,
    Json(body): Json<SetRole>,
) -> Result<Json<UserView>, ApiError> {
    let user = s
        .mistborn
        .users()
        .set_role(&actor, &user, body.role.into())
        .await?;
    Ok(Json(user.into()))
}

/// Sets a new password: one's own, or anyone's as a superuser.
#[utoipa::path(put, path = "/users/{user}/password", tag = "users",
    params(("user" = String, Path, description = "User id or username")),
    request_body = SetPassword,
    responses(
        (status = 204, description = "Changed"),
        (status = 400, description = "Password too short or bad body", body = ErrorBody),
        (status = 401, description = "No or bad token", body = ErrorBody),
        (status = 404, description = "No such user (or not visible to the caller)", body = ErrorBody),
    ),
    security(("bearer" = [])))]
async fn set_password(
    State(s): State<AppState>,
    Auth(actor): Auth,
    Path(user): Path<String>,
    Json(body): Json<SetPassword>,
) -> Result<StatusCode, ApiError> {
    s.mistborn
        .users()
        .set_password(&actor, &user, &body.password)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
