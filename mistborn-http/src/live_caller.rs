//! A caller whose rights are checked again while a long-lived connection stays open (the status
//! WebSocket): the credentials of the upgrade request are kept and authenticated anew when the
//! core announces a change that may touch them, and when the session they rest on expires. A
//! revoked token, a demoted or deleted user, a signed-out or expired device lose what they had.

use std::time::Duration;

use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;
use mistborn_core::{Actor, Change};

use crate::error::ApiError;
use crate::extract::{Auth, TunnelIdentity};
use crate::state::AppState;

/// The caller of a long-lived request, with what is needed to authenticate them again.
#[derive(Debug)]
pub struct LiveCaller {
    /// The request's head, credentials included; authenticated again exactly like the first time.
    parts: Parts,
    actor: Actor,
    /// Unix seconds when the sign-in session this caller rests on ends (a device with a second
    /// factor, no token); `None` when nothing expires by time.
    expires_at: Option<i64>,
}

impl LiveCaller {
    /// Authenticates the request as [`Auth`] does, and keeps its head for [`Self::recheck`].
    pub async fn authenticate(parts: &Parts, state: &AppState) -> Result<Self, ApiError> {
        let Auth(actor) = Auth::from_request_parts(&mut parts.clone(), state).await?;
        let expires_at = if parts.headers.contains_key(header::AUTHORIZATION) {
            None
        } else {
            let TunnelIdentity(id) =
                TunnelIdentity::from_request_parts(&mut parts.clone(), state).await?;
            id.and_then(|id| id.session).map(|s| s.expires_at)
        };
        Ok(Self {
            parts: parts.clone(),
            actor,
            expires_at,
        })
    }

    /// Who the caller is now.
    pub fn actor(&self) -> &Actor {
        &self.actor
    }

    /// Authenticates the kept request again. `Ok(true)` when the caller's rights changed (the
    /// [`Self::actor`] is new), `Ok(false)` when they are as before, an error when the caller is
    /// no longer who they were (the connection must end).
    pub async fn recheck(&mut self, state: &AppState) -> Result<bool, ApiError> {
        let again = Self::authenticate(&self.parts, state).await?;
        let changed = again.actor != self.actor;
        *self = again;
        Ok(changed)
    }

    /// Whether a change the core announced may touch who a caller is: users, roles and tokens;
    /// sign-in and sign-out of tunnel addresses; profiles (a deleted profile is no identity).
    pub fn may_be_touched_by(change: &Change) -> bool {
        matches!(
            change,
            Change::Users | Change::Access { .. } | Change::Peers(_)
        )
    }

    /// Completes when the session ends by time (never for callers without one); then call
    /// [`Self::recheck`]. When a recheck at expiry still succeeds (a clock between two readings),
    /// it fires again a second later.
    pub async fn expiry(&self) {
        let Some(expires_at) = self.expires_at else {
            return std::future::pending().await;
        };
        let now = time::OffsetDateTime::now_utc();
        let left = (time::OffsetDateTime::from_unix_timestamp(expires_at).unwrap_or(now) - now)
            .as_seconds_f64();
        // The core counts whole seconds: wait just past the second the session ends in.
        let wait = if left > 0.0 {
            Duration::from_secs_f64(left) + Duration::from_millis(20)
        } else {
            Duration::from_secs(1)
        };
        tokio::time::sleep(wait).await;
    }
}
