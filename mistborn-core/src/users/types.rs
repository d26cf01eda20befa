//! The user domain's value types, validated on construction.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::{Error, Result};

/// A user's stable id.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct UserId(pub(crate) String);

impl UserId {
    pub(crate) fn generate() -> Self {
        Self(Uuid::new_v4().to_string())
    }
    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for UserId {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Uuid::parse_str(s)
            .map(|u| Self(u.to_string()))
            .map_err(|_| Error::invalid("user id", format!("'{s}' is not a UUID")))
    }
}

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A login name: 1-32 characters of lowercase letters, digits, '.', '_' and '-', starting with a
/// letter or digit (safe in URLs, file names and DNS labels).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Username(String);

impl Username {
    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for Username {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        let ok_char = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(c);
        let first_ok = s
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
        if s.is_empty() || s.len() > 32 || !first_ok || !s.chars().all(ok_char) {
            return Err(Error::invalid(
                "username",
                format!(
                    "'{s}': use 1-32 lowercase letters, digits, '.', '_' or '-', starting with a letter or digit"
                ),
            ));
        }
        Ok(Self(s.to_string()))
    }
}

impl TryFrom<String> for Username {
    type Error = Error;
    fn try_from(s: String) -> Result<Self> {
        s.parse()
    }
}

impl From<Username> for String {
    fn from(u: Username) -> Self {
        u.0
    }
}

impl fmt::Display for Username {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What a user may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Manages everything.
    Superuser,
    /// Manages only their own profiles and tokens.
    Regular,
}

impl Role {
    /// The stored and printed name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Superuser => "superuser",
            Role::Regular => "regular",
        }
    }
}

impl FromStr for Role {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "superuser" | "admin" => Ok(Role::Superuser),
            "regular" | "user" => Ok(Role::Regular),
            _ => Err(Error::invalid(
                "role",
                format!("'{s}' is not 'superuser' or 'regular'"),
            )),
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A stored user (never carries the password hash out of the core).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    /// Stable id.
    pub id: UserId,
    /// Login name.
    pub username: Username,
    /// Rights.
    pub role: Role,
    /// Creation time, Unix seconds.
    pub created_at: i64,
}

/// Input for creating a user.
#[derive(Debug, Clone)]
pub struct NewUser {
    /// Login name (validated).
    pub username: String,
    /// Password, at least 8 characters.
    pub password: String,
    /// Rights.
    pub role: Role,
}

/// An API token's id.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TokenId(pub(crate) String);

impl TokenId {
    pub(crate) fn generate() -> Self {
        Self(Uuid::new_v4().to_string())
    }
    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for TokenId {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Uuid::parse_str(s)
            .map(|u| Self(u.to_string()))
            .map_err(|_| Error::invalid("token id", format!("'{s}' is not a UUID")))
    }
}

impl fmt::Display for TokenId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A stored API token (without its secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiToken {
    /// Token id (for revocation).
    pub id: TokenId,
    /// Owner.
    pub user_id: UserId,
    /// A label chosen at creation ("ansible", "phone", ...).
    pub name: String,
    /// Creation time, Unix seconds.
    pub created_at: i64,
    /// Last successful use, Unix seconds.
    pub last_used_at: Option<i64>,
}

/// A token just created: the secret is shown this once and never stored.
#[derive(Debug, Clone)]
pub struct NewToken {
    /// The stored part.
    pub token: ApiToken,
    /// The bearer secret.
    pub secret: String,
}

/// Validates a free-form label (token or profile name): 1-64 printable characters.
pub(crate) fn validate_label(field: &'static str, s: &str) -> Result<String> {
    let t = s.trim();
    if t.is_empty() || t.chars().count() > 64 || t.chars().any(|c| c.is_control()) {
        return Err(Error::invalid(
            field,
            format!("'{s}': use 1-64 printable characters"),
        ));
    }
    Ok(t.to_string())
}

pub(crate) const MIN_PASSWORD_LEN: usize = 8;

pub(crate) fn validate_password(p: &str) -> Result<()> {
    if p.chars().count() < MIN_PASSWORD_LEN {
        return Err(Error::invalid(
            "password",
            format!("use at least {MIN_PASSWORD_LEN} characters"),
        ));
    }
    if p.len() > 1024 {
        return Err(Error::invalid("password", "use at most 1024 bytes"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames() {
        for ok in ["admin", "bob", "a.b-c_d", "0x"] {
            assert!(ok.parse::<Username>().is_ok(), "{ok}");
        }
        for bad in ["", "Bob", "-bob", "a b", "ü", &"x".repeat(33)] {
            assert!(bad.parse::<Username>().is_err(), "{bad}");
        }
    }

    #[test]
    fn labels_and_passwords() {
        assert_eq!(validate_label("name", " phone ").expect("ok"), "phone");
        assert!(validate_label("name", "").is_err());
        assert!(validate_label("name", "a\nb").is_err());
        assert!(validate_password("short").is_err());
        assert!(validate_password("long enough").is_ok());
    }
}
