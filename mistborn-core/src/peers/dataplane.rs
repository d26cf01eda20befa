//! The data plane's read of the profiles: every row with its preshared key opened, or the reason
//! it has to be skipped. Crate-internal: secrets never leave the core through this path.

use super::service::{Peers, key_from_bytes};
use super::store;
use super::types::Peer;
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

impl Peers<'_> {
    /// Every stored profile with its preshared key, for the reconciler. A row that does not parse
    /// or whose secret does not open is reported and skipped; the others still come up.
    pub(crate) async fn for_dataplane(
        &self,
    ) -> Result<Vec<std::result::Result<StoredProfile, SkippedProfile>>> {
        let rows = store::list_for_dataplane(self.m.store().pool(), &self.m.address_pool()).await?;
        let secrets = self.m.secrets();
        Ok(rows
            .into_iter()
            .map(|r| {
                let skipped = |e: crate::Error| SkippedProfile {
                    id: r.id.clone(),
                    user_id: r.user_id.clone(),
                    reason: e.to_string(),
                };
                let row = r.row.as_ref().map_err(|e| skipped_from(&r, e))?;
                let psk = secrets
                    .open(&row.preshared_key)
                    .and_then(|b| key_from_bytes(&b))
                    .map_err(skipped)?;
                Ok(StoredProfile {
                    peer: row.peer.clone(),
                    preshared_key: Some(psk),
                })
            })
            .collect())
    }
}

fn skipped_from(r: &store::DataplaneRow, e: &crate::Error) -> SkippedProfile {
    SkippedProfile {
        id: r.id.clone(),
        user_id: r.user_id.clone(),
        reason: e.to_string(),
    }
}
