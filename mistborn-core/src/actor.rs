//! Who is asking. Every core call takes an [`Actor`]; authorization rules live here and in the
//! domain services, never in frontends.

use crate::error::{Error, Result};
use crate::users::{Role, UserId};

/// The caller of a core operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    /// The host's operator using the local CLI or library with access to the data dir: may do all.
    System,
    /// A signed-in user (API token, session or tunnel identity).
    User {
        /// The user's id.
        id: UserId,
        /// The user's role at the time of authentication.
        role: Role,
    },
}

impl Actor {
    /// Whether the actor has superuser rights.
    pub fn is_superuser(&self) -> bool {
        matches!(
            self,
            Actor::System
                | Actor::User {
                    role: Role::Superuser,
                    ..
                }
        )
    }

    /// Fails unless the actor is a superuser.
    pub fn require_superuser(&self, action: &str) -> Result<()> {
        if self.is_superuser() {
            Ok(())
        } else {
            Err(Error::Forbidden(format!("{action} needs a superuser")))
        }
    }

    /// Whether the actor may see and change things owned by `owner`.
    pub fn may_access(&self, owner: &UserId) -> bool {
        match self {
            Actor::System => true,
            Actor::User { id, role } => *role == Role::Superuser || id == owner,
        }
    }

    /// The user id, if the actor is a user.
    pub fn user_id(&self) -> Option<&UserId> {
        match self {
            Actor::System => None,
            Actor::User { id, .. } => Some(id),
        }
    }
}
