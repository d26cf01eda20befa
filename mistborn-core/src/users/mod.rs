//! Users (superuser or regular), their argon2 passwords and their API tokens.

mod service;
mod store;
mod types;

pub use service::Users;
pub(crate) use types::validate_label;
pub use types::{ApiToken, NewToken, NewUser, Role, TokenId, User, UserId, Username};

/// Number of users, for first-start detection.
pub(crate) async fn count(pool: &sqlx::AnyPool) -> crate::error::Result<i64> {
    store::count_users(pool).await
}
