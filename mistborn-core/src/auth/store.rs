//! SQL for TOTP secrets, recovery codes and sessions.

use std::net::IpAddr;

use sqlx::any::AnyRow;
use sqlx::{AnyPool, Row};

use super::types::{Session, SessionId};
use crate::error::{Error, Result};
use crate::peers::PeerId;
use crate::users::UserId;

/// A stored TOTP row.
pub(crate) struct TotpRow {
    pub secret: String,
    pub confirmed: bool,
    pub last_step: Option<u64>,
}

pub(crate) async fn totp(pool: &AnyPool, user: &UserId) -> Result<Option<TotpRow>> {
    let row = sqlx::query("SELECT secret, confirmed, last_step FROM totp WHERE user_id = $1")
        .bind(user.as_str())
        .fetch_optional(pool)
        .await?;
    row.map(|r| {
        let confirmed: i64 = r.try_get("confirmed")?;
        let last: Option<i64> = r.try_get("last_step")?;
        Ok(TotpRow {
            secret: r.try_get("secret")?,
            confirmed: confirmed != 0,
            last_step: last.and_then(|l| u64::try_from(l).ok()),
        })
    })
    .transpose()
}

/// Stores a new, unconfirmed secret, replacing an unconfirmed one, in one conditional statement:
/// returns false (and changes nothing) when the user's second factor is confirmed, so a
/// confirmation that lands between an enrollment's check and its write is never wiped.
pub(crate) async fn put_totp(
    pool: &AnyPool,
    user: &UserId,
    sealed: &str,
    now: i64,
) -> Result<bool> {
    let done = sqlx::query(
        "INSERT INTO totp (user_id, secret, confirmed, last_step, created_at) VALUES ($1, $2, 0, NULL, $3) \
         ON CONFLICT (user_id) DO UPDATE SET secret = excluded.secret, confirmed = 0, last_step = NULL, \
         created_at = excluded.created_at WHERE totp.confirmed = 0",
    )
    .bind(user.as_str())
    .bind(sealed)
    .bind(now)
    .execute(pool)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Confirms the enrollment whose secret is `sealed` (the one the code was checked against) and
/// marks `step` used; false when the enrollment was replaced or confirmed meanwhile.
pub(crate) async fn confirm(
    pool: &AnyPool,
    user: &UserId,
    sealed: &str,
    step: u64,
) -> Result<bool> {
    let done = sqlx::query(
        "UPDATE totp SET last_step = $1, confirmed = 1 WHERE user_id = $2 AND secret = $3 AND confirmed = 0 \
         AND (last_step IS NULL OR last_step < $1)",
    )
    .bind(step as i64)
    .bind(user.as_str())
    .bind(sealed)
    .execute(pool)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Marks `step` used on a confirmed second factor, only if it is newer than the stored one: two
/// concurrent logins with the same code cannot both win.
pub(crate) async fn use_step(pool: &AnyPool, user: &UserId, step: u64) -> Result<bool> {
    let done = sqlx::query(
        "UPDATE totp SET last_step = $1 WHERE user_id = $2 AND confirmed = 1 AND (last_step IS NULL OR last_step < $1)",
    )
    .bind(step as i64)
    .bind(user.as_str())
    .execute(pool)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Replaces the user's recovery codes.
pub(crate) async fn put_recovery_codes(
    pool: &AnyPool,
    user: &UserId,
    hashes: &[String],
) -> Result<()> {
    let mut tx = pool.begin().await?;
    sqlx::query("DELETE FROM recovery_codes WHERE user_id = $1")
        .bind(user.as_str())
        .execute(&mut *tx)
        .await?;
    for h in hashes {
        sqlx::query("INSERT INTO recovery_codes (id, user_id, code_hash, used_at) VALUES ($1, $2, $3, NULL)")
            .bind(uuid::Uuid::new_v4().to_string())
            .bind(user.as_str())
            .bind(h)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Spends an unused recovery code; false when there is none with that hash.
pub(crate) async fn use_recovery_code(
    pool: &AnyPool,
    user: &UserId,
    hash: &str,
    now: i64,
) -> Result<bool> {
    let done = sqlx::query(
        "UPDATE recovery_codes SET used_at = $1 WHERE user_id = $2 AND code_hash = $3 AND used_at IS NULL",
    )
    .bind(now)
    .bind(user.as_str())
    .bind(hash)
    .execute(pool)
    .await?;
    Ok(done.rows_affected() >= 1)
}

pub(crate) async fn recovery_codes_left(pool: &AnyPool, user: &UserId) -> Result<i64> {
    Ok(sqlx::query_scalar(
        "SELECT COUNT(*) FROM recovery_codes WHERE user_id = $1 AND used_at IS NULL",
    )
    .bind(user.as_str())
    .fetch_one(pool)
    .await?)
}

/// Removes the second factor and every session of a user.
pub(crate) async fn reset(pool: &AnyPool, user: &UserId) -> Result<()> {
    let mut tx = pool.begin().await?;
    for sql in [
        "DELETE FROM totp WHERE user_id = $1",
        "DELETE FROM recovery_codes WHERE user_id = $1",
        "DELETE FROM sessions WHERE user_id = $1",
    ] {
        sqlx::query(sql)
            .bind(user.as_str())
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(())
}

macro_rules! select_sessions {
    ($tail:literal) => {
        concat!(
            "SELECT s.id, s.user_id, u.username, s.peer_id, s.address, s.created_at, s.expires_at ",
            "FROM sessions s JOIN users u ON u.id = s.user_id ",
            $tail
        )
    };
}

fn session_from_row(row: &AnyRow) -> Result<Session> {
    let username: String = row.try_get("username")?;
    let address: String = row.try_get("address")?;
    Ok(Session {
        id: SessionId(row.try_get("id")?),
        user_id: UserId(row.try_get("user_id")?),
        username: username
            .parse()
            .map_err(|e| Error::Corrupt(format!("session owner: {e}")))?,
        peer_id: PeerId(row.try_get("peer_id")?),
        address: address
            .parse()
            .map_err(|e| Error::Corrupt(format!("session address: {e}")))?,
        created_at: row.try_get("created_at")?,
        expires_at: row.try_get("expires_at")?,
    })
}

/// Starts a session for a profile, replacing the profile's previous one.
pub(crate) async fn put_session(pool: &AnyPool, s: &Session) -> Result<()> {
    let mut tx = pool.begin().await?;
    sqlx::query("DELETE FROM sessions WHERE peer_id = $1")
        .bind(s.peer_id.as_str())
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "INSERT INTO sessions (id, user_id, peer_id, address, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(s.id.as_str())
    .bind(s.user_id.as_str())
    .bind(s.peer_id.as_str())
    .bind(s.address.to_string())
    .bind(s.created_at)
    .bind(s.expires_at)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(())
}

pub(crate) async fn live_session_for_peer(
    pool: &AnyPool,
    peer: &PeerId,
    now: i64,
) -> Result<Option<Session>> {
    sqlx::query(select_sessions!(
        "WHERE s.peer_id = $1 AND s.expires_at > $2"
    ))
    .bind(peer.as_str())
    .bind(now)
    .fetch_optional(pool)
    .await?
    .as_ref()
    .map(session_from_row)
    .transpose()
}

pub(crate) async fn sessions(pool: &AnyPool, user: Option<&UserId>) -> Result<Vec<Session>> {
    let rows = match user {
        Some(u) => {
            sqlx::query(select_sessions!(
                "WHERE s.user_id = $1 ORDER BY s.created_at"
            ))
            .bind(u.as_str())
            .fetch_all(pool)
            .await?
        }
        None => {
            sqlx::query(select_sessions!("ORDER BY s.created_at"))
                .fetch_all(pool)
                .await?
        }
    };
    rows.iter().map(session_from_row).collect()
}

pub(crate) async fn session(pool: &AnyPool, id: &SessionId) -> Result<Option<Session>> {
    sqlx::query(select_sessions!("WHERE s.id = $1"))
        .bind(id.as_str())
        .fetch_optional(pool)
        .await?
        .as_ref()
        .map(session_from_row)
        .transpose()
}

pub(crate) async fn delete_session(pool: &AnyPool, id: &SessionId) -> Result<()> {
    sqlx::query("DELETE FROM sessions WHERE id = $1")
        .bind(id.as_str())
        .execute(pool)
        .await?;
    Ok(())
}

/// Deletes expired sessions and returns the addresses they held.
pub(crate) async fn expire(pool: &AnyPool, now: i64) -> Result<Vec<IpAddr>> {
    let mut tx = pool.begin().await?;
    let addrs: Vec<String> =
        sqlx::query_scalar("SELECT address FROM sessions WHERE expires_at <= $1")
            .bind(now)
            .fetch_all(&mut *tx)
            .await?;
    sqlx::query("DELETE FROM sessions WHERE expires_at <= $1")
        .bind(now)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(addrs.iter().filter_map(|a| a.parse().ok()).collect())
}

/// Addresses with a live session, for the firewall's MFA set.
pub(crate) async fn open_addresses(pool: &AnyPool, now: i64) -> Result<Vec<IpAddr>> {
    let addrs: Vec<String> =
        sqlx::query_scalar("SELECT address FROM sessions WHERE expires_at > $1")
            .bind(now)
            .fetch_all(pool)
            .await?;
    Ok(addrs.iter().filter_map(|a| a.parse().ok()).collect())
}
