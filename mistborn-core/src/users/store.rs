//! SQL for users and API tokens (same text on SQLite and PostgreSQL).

use sqlx::any::AnyRow;
use sqlx::{AnyPool, Row};

use super::types::{ApiToken, Role, TokenId, User, UserId, Username};
use crate::error::{Error, Result};

macro_rules! user_cols {
    () => {
        "id, username, role, created_at"
    };
}

fn user_from_row(row: &AnyRow) -> Result<User> {
    let username: String = row.try_get("username")?;
    let role: String = row.try_get("role")?;
    Ok(User {
        id: UserId(row.try_get("id")?),
        username: username
            .parse::<Username>()
            .map_err(|e| Error::Corrupt(format!("stored username: {e}")))?,
        role: role
            .parse::<Role>()
            .map_err(|e| Error::Corrupt(format!("stored role: {e}")))?,
        created_at: row.try_get("created_at")?,
    })
}

fn token_from_row(row: &AnyRow) -> Result<ApiToken> {
    Ok(ApiToken {
        id: TokenId(row.try_get("id")?),
        user_id: UserId(row.try_get("user_id")?),
        name: row.try_get("name")?,
        created_at: row.try_get("created_at")?,
        last_used_at: row.try_get("last_used_at")?,
    })
}

pub(crate) async fn insert_user(pool: &AnyPool, user: &User, password_hash: &str) -> Result<()> {
    sqlx::query(
        "INSERT INTO users (id, username, role, password_hash, created_at) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(user.id.as_str())
    .bind(user.username.as_str())
    .bind(user.role.as_str())
    .bind(password_hash)
    .bind(user.created_at)
    .execute(pool)
    .await?;
    Ok(())
}

pub(crate) async fn count_users(pool: &AnyPool) -> Result<i64> {
    Ok(sqlx::query_scalar("SELECT COUNT(*) FROM users")
        .fetch_one(pool)
        .await?)
}

pub(crate) async fn count_superusers(pool: &AnyPool) -> Result<i64> {
    Ok(
        sqlx::query_scalar("SELECT COUNT(*) FROM users WHERE role = 'superuser'")
            .fetch_one(pool)
            .await?,
    )
}

pub(crate) async fn list_users(pool: &AnyPool) -> Result<Vec<User>> {
    sqlx::query(concat!(
        "SELECT ",
        user_cols!(),
        " FROM users ORDER BY username"
    ))
    .fetch_all(pool)
    .await?
    .iter()
    .map(user_from_row)
    .collect()
}

pub(crate) async fn get_user_by_id(pool: &AnyPool, id: &str) -> Result<Option<User>> {
    sqlx::query(concat!(
        "SELECT ",
        user_cols!(),
        " FROM users WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(pool)
    .await?
    .as_ref()
    .map(user_from_row)
    .transpose()
}

pub(crate) async fn get_user_by_name(pool: &AnyPool, name: &str) -> Result<Option<User>> {
    sqlx::query(concat!(
        "SELECT ",
        user_cols!(),
        " FROM users WHERE username = $1"
    ))
    .bind(name)
    .fetch_optional(pool)
    .await?
    .as_ref()
    .map(user_from_row)
    .transpose()
}

pub(crate) async fn password_hash(pool: &AnyPool, id: &UserId) -> Result<Option<String>> {
    Ok(
        sqlx::query_scalar("SELECT password_hash FROM users WHERE id = $1")
            .bind(id.as_str())
            .fetch_optional(pool)
            .await?,
    )
}

pub(crate) async fn set_password_hash(pool: &AnyPool, id: &UserId, hash: &str) -> Result<()> {
    sqlx::query("UPDATE users SET password_hash = $1 WHERE id = $2")
        .bind(hash)
        .bind(id.as_str())
        .execute(pool)
        .await?;
    Ok(())
}

pub(crate) async fn set_role(pool: &AnyPool, id: &UserId, role: Role) -> Result<()> {
    sqlx::query("UPDATE users SET role = $1 WHERE id = $2")
        .bind(role.as_str())
        .bind(id.as_str())
        .execute(pool)
        .await?;
    Ok(())
}

/// Deletes the user with their profiles and tokens in one transaction.
/// Deletes a user with their profiles and tokens; returns the users and profiles revisions it
/// made.
pub(crate) async fn delete_user(pool: &AnyPool, id: &UserId) -> Result<(i64, i64)> {
    let mut tx = pool.begin().await?;
    for sql in [
        "DELETE FROM peers WHERE user_id = $1",
        "DELETE FROM api_tokens WHERE user_id = $1",
        "DELETE FROM users WHERE id = $1",
    ] {
        sqlx::query(sql).bind(id.as_str()).execute(&mut *tx).await?;
    }
    use crate::store::revision::{Domain, bump};
    let users = bump(&mut tx, Domain::Users).await?;
    let peers = bump(&mut tx, Domain::Peers).await?;
    tx.commit().await?;
    Ok((users, peers))
}

pub(crate) async fn insert_token(pool: &AnyPool, token: &ApiToken, hash: &str) -> Result<()> {
    sqlx::query(
        "INSERT INTO api_tokens (id, user_id, name, token_hash, created_at, last_used_at) VALUES ($1, $2, $3, $4, $5, NULL)",
    )
    .bind(token.id.as_str())
    .bind(token.user_id.as_str())
    .bind(&token.name)
    .bind(hash)
    .bind(token.created_at)
    .execute(pool)
    .await?;
    Ok(())
}

pub(crate) async fn list_tokens(pool: &AnyPool, user: &UserId) -> Result<Vec<ApiToken>> {
    sqlx::query(
        "SELECT id, user_id, name, created_at, last_used_at FROM api_tokens WHERE user_id = $1 ORDER BY created_at, name",
    )
    .bind(user.as_str())
    .fetch_all(pool)
    .await?
    .iter()
    .map(token_from_row)
    .collect()
}

pub(crate) async fn get_token(pool: &AnyPool, id: &TokenId) -> Result<Option<ApiToken>> {
    sqlx::query("SELECT id, user_id, name, created_at, last_used_at FROM api_tokens WHERE id = $1")
        .bind(id.as_str())
        .fetch_optional(pool)
        .await?
        .as_ref()
        .map(token_from_row)
        .transpose()
}

pub(crate) async fn find_token_by_hash(pool: &AnyPool, hash: &str) -> Result<Option<ApiToken>> {
    sqlx::query(
        "SELECT id, user_id, name, created_at, last_used_at FROM api_tokens WHERE token_hash = $1",
    )
    .bind(hash)
    .fetch_optional(pool)
    .await?
    .as_ref()
    .map(token_from_row)
    .transpose()
}

pub(crate) async fn touch_token(pool: &AnyPool, id: &TokenId, now: i64) -> Result<()> {
    sqlx::query("UPDATE api_tokens SET last_used_at = $1 WHERE id = $2")
        .bind(now)
        .bind(id.as_str())
        .execute(pool)
        .await?;
    Ok(())
}

pub(crate) async fn delete_token(pool: &AnyPool, id: &TokenId) -> Result<()> {
    sqlx::query("DELETE FROM api_tokens WHERE id = $1")
        .bind(id.as_str())
        .execute(pool)
        .await?;
    Ok(())
}
