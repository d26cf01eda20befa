//! The data plane's read of the profiles: every row with its preshared key opened, or the reason
//! it has to be skipped. Crate-internal: secrets never leave the core through this path.

use super::service::{Peers, key_from_bytes};
use super::store;
use super::types::{Peer, PeerId};
use crate::crypto::WgKey;
use crate::error::Result;
use crate::users::UserId;

/// A profile ready for the interface.
#[derive(Debug, Clone)]
pub struct StoredProfile {
    /// The profile (public part).
    pub peer: Peer,
    /// Its opened preshared key.
    pub preshared_key: Option<WgKey>,
}

/// A stored profile the data plane cannot use, and why.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SkippedProfile {
    /// The row's id.
    pub id: String,
    /// The owner, when readable (decides who sees the report).
    pub user_id: Option<UserId>,
    /// What is wrong with it.
    pub reason: String,
}

/// A stored profile as the data plane takes it: ready, or skipped with the reason.
pub type DataplaneProfile = std::result::Result<StoredProfile, SkippedProfile>;

impl Peers<'_> {
    /// Every stored profile with its preshared key, for the reconciler. A row that does not parse
    /// or whose secret does not open is reported and skipped; the others still come up.
    pub(crate) async fn for_dataplane(&self) -> Result<Vec<DataplaneProfile>> {
        let rows = store::list_for_dataplane(self.m.store().pool(), &self.m.address_pool()).await?;
        Ok(rows.into_iter().map(|r| self.open(r)).collect())
    }

    /// One stored profile for the reconciler (after a change of just that profile); `None` when
    /// it is gone.
    pub(crate) async fn one_for_dataplane(&self, id: &PeerId) -> Result<Option<DataplaneProfile>> {
        let row =
            store::get_for_dataplane(self.m.store().pool(), &self.m.address_pool(), id).await?;
        Ok(row.map(|r| self.open(r)))
    }

    fn open(&self, r: store::DataplaneRow) -> DataplaneProfile {
        let skipped = |reason: String| SkippedProfile {
            id: r.id.clone(),
            user_id: r.user_id.clone(),
            reason,
        };
        let row = r.row.map_err(|e| skipped(e.to_string()))?;
        let psk = self
            .m
            .secrets()
            .open(&row.preshared_key)
            .and_then(|b| key_from_bytes(&b))
            .map_err(|e| skipped(e.to_string()))?;
        Ok(StoredProfile {
            peer: row.peer,
            preshared_key: Some(psk),
        })
    }
}
