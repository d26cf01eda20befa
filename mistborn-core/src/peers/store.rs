//! SQL for profiles (same text on SQLite and PostgreSQL).

use std::collections::BTreeSet;

use sqlx::any::AnyRow;
use sqlx::{AnyPool, Row};

use super::alloc::AddressPool;
use super::types::{Peer, PeerId};
use crate::error::{Error, Result};
use crate::store::revision;
use crate::users::UserId;

/// A profile row with its sealed secrets, as stored.
#[derive(Debug, Clone)]
pub(crate) struct PeerRow {
    pub peer: Peer,
    pub addr_index: u64,
    /// Sealed private key, absent for device-generated keys.
    pub private_key: Option<String>,
    /// Sealed preshared key.
    pub preshared_key: String,
}

/// The columns of a profile row, joined with its owner's name.
macro_rules! select_peers {
    ($($tail:literal)?) => {
        concat!(
            "SELECT p.id, p.user_id, u.username, p.name, p.kind, p.client_to_client, p.listen_port, ",
            "p.addr_index, p.public_key, p.private_key, p.preshared_key, p.created_at ",
            "FROM peers p JOIN users u ON u.id = p.user_id ",
            $($tail)?
        )
    };
}

fn corrupt(id: &str, what: &str, e: impl std::fmt::Display) -> Error {
    Error::Corrupt(format!("stored profile {id}: {what}: {e}"))
}

fn from_row(row: &AnyRow, pool: &AddressPool) -> Result<PeerRow> {
    let id: String = row.try_get("id")?;
    let index: i64 = row.try_get("addr_index")?;
    let index = u64::try_from(index).map_err(|e| corrupt(&id, "addr_index", e))?;
    let (address_v4, address_v6) = pool.addresses(index);
    let private_key: Option<String> = row.try_get("private_key")?;
    let public_key: String = row.try_get("public_key")?;
    let username: String = row.try_get("username")?;
    let name: String = row.try_get("name")?;
    let kind: String = row.try_get("kind")?;
    let listen_port: String = row.try_get("listen_port")?;
    let c2c: i64 = row.try_get("client_to_client")?;
    let peer = Peer {
        id: PeerId(id.clone()),
        user_id: UserId(row.try_get("user_id")?),
        username: username.parse().map_err(|e| corrupt(&id, "owner", e))?,
        name: name.parse().map_err(|e| corrupt(&id, "name", e))?,
        kind: kind.parse().map_err(|e| corrupt(&id, "kind", e))?,
        client_to_client: c2c != 0,
        listen_port: listen_port
            .parse()
            .map_err(|e| corrupt(&id, "listen_port", e))?,
        address_v4,
        address_v6,
        public_key: public_key
            .parse()
            .map_err(|e| corrupt(&id, "public key", e))?,
        server_generated_key: private_key.is_some(),
        created_at: row.try_get("created_at")?,
    };
    Ok(PeerRow {
        peer,
        addr_index: index,
        private_key,
        preshared_key: row.try_get("preshared_key")?,
    })
}

/// What [`insert_allocating`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Insert {
    /// Stored; the profiles revision it made.
    Stored(i64),
    /// The owner already has a profile with this name.
    NameTaken,
    /// The owner already has `quota` profiles or more.
    OverQuota,
}

/// Allocates the lowest free address for `row` and inserts it, checking the name and the owner's
/// quota (when given), all in one transaction. The transaction first bumps the profiles revision,
/// which takes that row's write lock (PostgreSQL) or the database's (SQLite): concurrent creators
/// queue there instead of racing for the same address, and every check below sees the rows the
/// previous creator committed.
pub(crate) async fn insert_allocating(
    pool: &AnyPool,
    addrs: &AddressPool,
    row: &mut PeerRow,
    quota: Option<u32>,
) -> Result<Insert> {
    let mut tx = pool.begin().await?;
    let rev = revision::bump(&mut tx, revision::Domain::Peers).await?;
    let p = &row.peer;
    let same_name: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM peers WHERE user_id = $1 AND name = $2")
            .bind(p.user_id.as_str())
            .bind(p.name.as_str())
            .fetch_one(&mut *tx)
            .await?;
    if same_name > 0 {
        return Ok(Insert::NameTaken);
    }
    if let Some(quota) = quota {
        let owned: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM peers WHERE user_id = $1")
            .bind(p.user_id.as_str())
            .fetch_one(&mut *tx)
            .await?;
        if owned >= i64::from(quota) {
            return Ok(Insert::OverQuota);
        }
    }
    let used: Vec<i64> = sqlx::query_scalar("SELECT addr_index FROM peers")
        .fetch_all(&mut *tx)
        .await?;
    let used: BTreeSet<u64> = used
        .into_iter()
        .filter_map(|i| u64::try_from(i).ok())
        .collect();
    let index = addrs.next_free(&used)?;
    (row.peer.address_v4, row.peer.address_v6) = addrs.addresses(index);
    row.addr_index = index;
    let p = &row.peer;
    sqlx::query(
        "INSERT INTO peers (id, user_id, name, kind, client_to_client, listen_port, addr_index, public_key, private_key, preshared_key, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
    )
    .bind(p.id.as_str())
    .bind(p.user_id.as_str())
    .bind(p.name.as_str())
    .bind(p.kind.as_str())
    .bind(i64::from(p.client_to_client))
    .bind(p.listen_port.as_str())
    .bind(row.addr_index as i64)
    .bind(p.public_key.to_base64())
    .bind(row.private_key.clone())
    .bind(&row.preshared_key)
    .bind(p.created_at)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(Insert::Stored(rev))
}

/// Every profile row. Rows that do not parse are returned as errors beside the good ones, so one
/// corrupt row never hides the others.
pub(crate) async fn list_all(
    pool: &AnyPool,
    addrs: &AddressPool,
    owner: Option<&UserId>,
) -> Result<Vec<Result<PeerRow>>> {
    let rows = match owner {
        Some(u) => {
            sqlx::query(select_peers!(
                "WHERE p.user_id = $1 ORDER BY u.username, p.name"
            ))
            .bind(u.as_str())
            .fetch_all(pool)
            .await?
        }
        None => {
            sqlx::query(select_peers!("ORDER BY u.username, p.name"))
                .fetch_all(pool)
                .await?
        }
    };
    Ok(rows.iter().map(|r| from_row(r, addrs)).collect())
}

pub(crate) async fn get(
    pool: &AnyPool,
    addrs: &AddressPool,
    id: &PeerId,
) -> Result<Option<PeerRow>> {
    sqlx::query(select_peers!("WHERE p.id = $1"))
        .bind(id.as_str())
        .fetch_optional(pool)
        .await?
        .as_ref()
        .map(|r| from_row(r, addrs))
        .transpose()
}

pub(crate) async fn get_by_index(
    pool: &AnyPool,
    addrs: &AddressPool,
    index: u64,
) -> Result<Option<PeerRow>> {
    sqlx::query(select_peers!("WHERE p.addr_index = $1"))
        .bind(index as i64)
        .fetch_optional(pool)
        .await?
        .as_ref()
        .map(|r| from_row(r, addrs))
        .transpose()
}

pub(crate) async fn find_by_name(
    pool: &AnyPool,
    addrs: &AddressPool,
    owner: &UserId,
    name: &str,
) -> Result<Option<PeerRow>> {
    sqlx::query(select_peers!("WHERE p.user_id = $1 AND p.name = $2"))
        .bind(owner.as_str())
        .bind(name)
        .fetch_optional(pool)
        .await?
        .as_ref()
        .map(|r| from_row(r, addrs))
        .transpose()
}

/// Updates a profile's editable fields; returns the profiles revision it made.
pub(crate) async fn update(pool: &AnyPool, p: &Peer) -> Result<i64> {
    let mut tx = pool.begin().await?;
    sqlx::query(
        "UPDATE peers SET name = $1, kind = $2, client_to_client = $3, listen_port = $4 WHERE id = $5",
    )
    .bind(p.name.as_str())
    .bind(p.kind.as_str())
    .bind(i64::from(p.client_to_client))
    .bind(p.listen_port.as_str())
    .bind(p.id.as_str())
    .execute(&mut *tx)
    .await?;
    let rev = revision::bump(&mut tx, revision::Domain::Peers).await?;
    tx.commit().await?;
    Ok(rev)
}

/// Deletes a profile; returns the profiles revision it made.
pub(crate) async fn delete(pool: &AnyPool, id: &PeerId) -> Result<i64> {
    let mut tx = pool.begin().await?;
    sqlx::query("DELETE FROM peers WHERE id = $1")
        .bind(id.as_str())
        .execute(&mut *tx)
        .await?;
    let rev = revision::bump(&mut tx, revision::Domain::Peers).await?;
    tx.commit().await?;
    Ok(rev)
}

/// The owner of a stored row, read without parsing the rest (so a corrupt row can still be
/// authorized and deleted).
pub(crate) async fn owner_of(pool: &AnyPool, id: &PeerId) -> Result<Option<UserId>> {
    Ok(
        sqlx::query_scalar::<_, String>("SELECT user_id FROM peers WHERE id = $1")
            .bind(id.as_str())
            .fetch_optional(pool)
            .await?
            .map(UserId),
    )
}

/// A stored row as the data plane sees it: the parsed row, or why it cannot be used (with the id
/// and owner as far as they can be read, so the report points at the row).
pub(crate) struct DataplaneRow {
    pub id: String,
    pub user_id: Option<UserId>,
    pub row: Result<PeerRow>,
}

fn dataplane_row(r: &AnyRow, addrs: &AddressPool) -> DataplaneRow {
    DataplaneRow {
        id: r.try_get::<String, _>("id").unwrap_or_default(),
        user_id: r.try_get::<String, _>("user_id").ok().map(UserId),
        row: from_row(r, addrs),
    }
}

/// Every profile row for the data plane; a corrupt row is returned as an error beside the others.
pub(crate) async fn list_for_dataplane(
    pool: &AnyPool,
    addrs: &AddressPool,
) -> Result<Vec<DataplaneRow>> {
    let rows = sqlx::query(select_peers!("ORDER BY p.addr_index"))
        .fetch_all(pool)
        .await?;
    Ok(rows.iter().map(|r| dataplane_row(r, addrs)).collect())
}

/// One profile row for the data plane, `None` when it is gone.
pub(crate) async fn get_for_dataplane(
    pool: &AnyPool,
    addrs: &AddressPool,
    id: &PeerId,
) -> Result<Option<DataplaneRow>> {
    Ok(sqlx::query(select_peers!("WHERE p.id = $1"))
        .bind(id.as_str())
        .fetch_optional(pool)
        .await?
        .map(|r| dataplane_row(&r, addrs)))
}
