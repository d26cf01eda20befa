//! The user rules: who may create, see, change and delete users and tokens.

use super::store;
use super::types::{
    ApiToken, NewToken, NewUser, Role, TokenId, User, UserId, Username, validate_label,
    validate_password,
};
use crate::actor::Actor;
use crate::crypto::{hash_password, hash_token, new_token, verify_password};
use crate::error::{Error, Result};
use crate::mistborn::{Change, Mistborn};
use crate::store::revision::Domain;
use crate::store::{conflict_if_taken, now_unix};

/// The users API of a [`Mistborn`] handle.
#[derive(Debug, Clone, Copy)]
pub struct Users<'a> {
    pub(crate) m: &'a Mistborn,
}

impl Users<'_> {
    fn pool(&self) -> &sqlx::AnyPool {
        self.m.store().pool()
    }

    /// Creates a user (superusers only).
    pub async fn create(&self, actor: &Actor, new: NewUser) -> Result<User> {
        actor.require_superuser("creating users")?;
        let username: Username = new.username.parse()?;
        validate_password(&new.password)?;
        let user = User {
            id: UserId::generate(),
            username,
            role: new.role,
            created_at: now_unix(),
        };
        let hash = hash_password(&new.password)?;
        store::insert_user(self.pool(), &user, &hash)
            .await
            .map_err(conflict_if_taken(|| {
                format!("a user named '{}' already exists", user.username)
            }))?;
        self.m.changed(Domain::Users, [Change::Users]).await;
        Ok(user)
    }

    /// Every user (superusers only).
    pub async fn list(&self, actor: &Actor) -> Result<Vec<User>> {
        actor.require_superuser("listing users")?;
        store::list_users(self.pool()).await
    }

    /// A user by id or username. Regular users see only themselves.
    pub async fn get(&self, actor: &Actor, key: &str) -> Result<User> {
        let user = self.resolve(key).await?;
        if !actor.may_access(&user.id) {
            return Err(Error::not_found(format!("user '{key}'")));
        }
        Ok(user)
    }

    /// The user behind an actor (`System` has none).
    pub async fn me(&self, actor: &Actor) -> Result<User> {
        let id = actor
            .user_id()
            .ok_or_else(|| Error::invalid("actor", "the system actor is not a user"))?;
        self.get(actor, id.as_str()).await
    }

    /// Looks a user up by id or name without an authorization check (internal).
    pub(crate) async fn resolve(&self, key: &str) -> Result<User> {
        let found = if key.parse::<UserId>().is_ok() {
            store::get_user_by_id(self.pool(), key).await?
        } else {
            None
        };
        let found = match found {
            Some(u) => Some(u),
            None => store::get_user_by_name(self.pool(), key).await?,
        };
        found.ok_or_else(|| Error::not_found(format!("user '{key}'")))
    }

    /// Deletes a user with all their profiles and tokens (superusers only; never the last one).
    pub async fn delete(&self, actor: &Actor, key: &str) -> Result<()> {
        actor.require_superuser("deleting users")?;
        let user = self.resolve(key).await?;
        if user.role == Role::Superuser && store::count_superusers(self.pool()).await? <= 1 {
            return Err(Error::Conflict(
                "cannot delete the last superuser; promote another user first".into(),
            ));
        }
        let (users_rev, peers_rev) = store::delete_user(self.pool(), &user.id).await?;
        self.m.announce(Domain::Users, users_rev);
        self.m.notify(Change::Users);
        self.m
            .notify_peers(peers_rev, crate::mistborn::PeerChange::All);
        Ok(())
    }

    /// Changes a user's role (superusers only; the last superuser stays one).
    pub async fn set_role(&self, actor: &Actor, key: &str, role: Role) -> Result<User> {
        actor.require_superuser("changing roles")?;
        let mut user = self.resolve(key).await?;
        if user.role == Role::Superuser
            && role != Role::Superuser
            && store::count_superusers(self.pool()).await? <= 1
        {
            return Err(Error::Conflict(
                "cannot demote the last superuser; promote another user first".into(),
            ));
        }
        store::set_role(self.pool(), &user.id, role).await?;
        user.role = role;
        self.m.changed(Domain::Users, [Change::Users]).await;
        Ok(user)
    }

    /// Sets a new password: for oneself, or for anyone as a superuser.
    pub async fn set_password(&self, actor: &Actor, key: &str, password: &str) -> Result<()> {
        let user = self.get(actor, key).await?;
        validate_password(password)?;
        store::set_password_hash(self.pool(), &user.id, &hash_password(password)?).await?;
        self.m.changed(Domain::Users, [Change::Users]).await;
        Ok(())
    }

    /// Checks a username and password; the error does not tell which one was wrong, and neither
    /// does the time it takes: an unknown user's password is checked against a dummy hash. A
    /// regular user may check only their own password (no password oracle for other accounts); a
    /// superuser (or the system) anyone's.
    pub async fn check_password(
        &self,
        actor: &Actor,
        username: &str,
        password: &str,
    ) -> Result<User> {
        if !actor.is_superuser() {
            let own = match actor.user_id() {
                Some(id) => store::get_user_by_id(self.pool(), id.as_str()).await?,
                None => None,
            };
            if own.is_none_or(|u| u.username.as_str() != username) {
                return Err(Error::Forbidden(
                    "checking another user's password needs a superuser".into(),
                ));
            }
        }
        let denied = || Error::Unauthenticated("wrong username or password".into());
        let user = store::get_user_by_name(self.pool(), username).await?;
        let hash = match &user {
            Some(u) => store::password_hash(self.pool(), &u.id).await?,
            None => None,
        };
        let password = password.to_string();
        // argon2 takes tens of milliseconds of CPU: off the async workers.
        let matches = tokio::task::spawn_blocking(move || match hash {
            Some(h) => verify_password(&password, &h),
            None => {
                let _ = verify_password(&password, dummy_hash());
                Ok(false)
            }
        })
        .await
        .map_err(|e| Error::Crypto(format!("password check did not finish: {e}")))??;
        match user {
            Some(u) if matches => Ok(u),
            _ => Err(denied()),
        }
    }

    /// Creates an API token for `user_key` (oneself, or anyone as a superuser). The secret is in
    /// the result only.
    pub async fn create_token(
        &self,
        actor: &Actor,
        user_key: &str,
        name: &str,
    ) -> Result<NewToken> {
        let user = self.get(actor, user_key).await?;
        let name = validate_label("token name", name)?;
        let secret = new_token();
        let token = ApiToken {
            id: TokenId::generate(),
            user_id: user.id,
            name,
            created_at: now_unix(),
            last_used_at: None,
        };
        store::insert_token(self.pool(), &token, &hash_token(&secret))
            .await
            .map_err(conflict_if_taken(|| {
                format!(
                    "user '{}' already has a token named '{}'; revoke it or pick another name",
                    user_key, token.name
                )
            }))?;
        self.m.changed(Domain::Users, [Change::Users]).await;
        Ok(NewToken { token, secret })
    }

    /// The tokens of `user_key` (oneself, or anyone as a superuser).
    pub async fn list_tokens(&self, actor: &Actor, user_key: &str) -> Result<Vec<ApiToken>> {
        let user = self.get(actor, user_key).await?;
        store::list_tokens(self.pool(), &user.id).await
    }

    /// Revokes a token by id (its owner or a superuser).
    pub async fn revoke_token(&self, actor: &Actor, id: &str) -> Result<()> {
        let id: TokenId = id.parse()?;
        let token = store::get_token(self.pool(), &id)
            .await?
            .filter(|t| actor.may_access(&t.user_id))
            .ok_or_else(|| Error::not_found(format!("token {id}")))?;
        store::delete_token(self.pool(), &token.id).await?;
        // Connections authenticated by it (the status WebSocket) end on this.
        self.m.changed(Domain::Users, [Change::Users]).await;
        Ok(())
    }

    /// Turns a bearer token into the actor it stands for.
    pub async fn authenticate_token(&self, secret: &str) -> Result<Actor> {
        let denied = || Error::Unauthenticated("unknown or revoked API token".into());
        let token = store::find_token_by_hash(self.pool(), &hash_token(secret.trim()))
            .await?
            .ok_or_else(denied)?;
        let user = store::get_user_by_id(self.pool(), token.user_id.as_str())
            .await?
            .ok_or_else(denied)?;
        store::touch_token(self.pool(), &token.id, now_unix()).await?;
        Ok(Actor::User {
            id: user.id,
            role: user.role,
        })
    }

    /// The actor for a user (for sessions and tunnel identities resolved elsewhere in core).
    pub async fn actor_for(&self, id: &UserId) -> Result<Actor> {
        let user = self.resolve(id.as_str()).await?;
        Ok(Actor::User {
            id: user.id,
            role: user.role,
        })
    }
}

/// A hash of a random password with the same parameters as real ones, made once: checking an
/// unknown user's password against it costs what a real check costs.
fn dummy_hash() -> &'static str {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY.get_or_init(|| hash_password(&new_token()).unwrap_or_default())
}
