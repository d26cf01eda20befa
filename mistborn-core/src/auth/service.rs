//! The auth rules: enrollment, login and sign-out from a tunnel address, sessions, forward-auth.

use std::net::IpAddr;

use super::forward::{DenyReason, ForwardDecision};
use super::store;
use super::totp::TotpSecret;
use super::types::{Enrollment, Session, SessionId, TotpStatus, TunnelIdentity};
use crate::actor::Actor;
use crate::crypto::hash_token;
use crate::error::{Error, Result};
use crate::mistborn::{Change, Mistborn};
use crate::peers::PeerKind;
use crate::store::revision::Domain;

/// Recovery codes handed out per confirmation.
pub const RECOVERY_CODES: usize = 10;

/// The auth API of a [`Mistborn`] handle. Calls that depend on time take `now` (Unix seconds).
#[derive(Debug, Clone, Copy)]
pub struct Auth<'a> {
    pub(crate) m: &'a Mistborn,
}

fn unix(now: i64) -> u64 {
    u64::try_from(now).unwrap_or(0)
}

impl Auth<'_> {
    fn pool(&self) -> &sqlx::AnyPool {
        self.m.store().pool()
    }

    /// The profile, user and session behind a tunnel address; `None` for any other address.
    pub async fn identify(&self, addr: IpAddr, now: i64) -> Result<Option<TunnelIdentity>> {
        let Some(peer) = self.m.peers().by_tunnel_address(addr).await? else {
            return Ok(None);
        };
        let actor = self.m.users().actor_for(&peer.user_id).await?;
        let session = store::live_session_for_peer(self.pool(), &peer.id, now).await?;
        Ok(Some(TunnelIdentity {
            peer,
            actor,
            session,
        }))
    }

    /// Whether a user has a second factor.
    pub async fn status(&self, actor: &Actor, user_key: &str) -> Result<TotpStatus> {
        let user = self.m.users().get(actor, user_key).await?;
        let row = store::totp(self.pool(), &user.id).await?;
        let left = store::recovery_codes_left(self.pool(), &user.id).await?;
        Ok(TotpStatus {
            enrolled: row.is_some(),
            confirmed: row.is_some_and(|r| r.confirmed),
            recovery_codes_left: u32::try_from(left).unwrap_or(0),
        })
    }

    /// Starts a TOTP enrollment for a user (oneself, or anyone as a superuser). A confirmed second
    /// factor is never replaced this way: a superuser resets it first.
    pub async fn enroll(&self, actor: &Actor, user_key: &str, now: i64) -> Result<Enrollment> {
        let user = self.m.users().get(actor, user_key).await?;
        let already = || {
            Error::Conflict(format!(
                "user '{}' already has a confirmed second factor; a superuser must reset it first",
                user.username
            ))
        };
        // A cheap early answer; the write below decides (it never replaces a confirmed factor).
        if store::totp(self.pool(), &user.id)
            .await?
            .is_some_and(|r| r.confirmed)
        {
            return Err(already());
        }
        let secret = TotpSecret::generate();
        let issuer = &self.m.config().auth.issuer;
        let otpauth_uri = secret.otpauth_uri(user.username.as_str(), issuer)?;
        let qr_png = crate::peers::qr_png(&otpauth_uri, 6)?;
        let sealed = self.m.secrets().seal(secret.as_bytes())?;
        if !store::put_totp(self.pool(), &user.id, &sealed, now).await? {
            return Err(already());
        }
        Ok(Enrollment {
            secret_base32: secret.to_base32(),
            otpauth_uri,
            qr_png,
        })
    }

    /// Confirms an enrollment with a first valid code; returns the recovery codes, shown once.
    pub async fn confirm(
        &self,
        actor: &Actor,
        user_key: &str,
        code: &str,
        now: i64,
    ) -> Result<Vec<String>> {
        let user = self.m.users().get(actor, user_key).await?;
        let row = store::totp(self.pool(), &user.id)
            .await?
            .ok_or_else(|| Error::invalid("code", "start an enrollment first"))?;
        if row.confirmed {
            return Err(Error::Conflict(
                "the second factor is already confirmed".into(),
            ));
        }
        let secret = self.secret(&row.secret)?;
        let step = secret
            .verify(code, unix(now), row.last_step)?
            .ok_or_else(|| {
                Error::invalid("code", "wrong or expired code: check the device's clock")
            })?;
        if !store::confirm(self.pool(), &user.id, &row.secret, step).await? {
            return Err(Error::Conflict(
                "the enrollment was confirmed or started again meanwhile: check the status and enroll again if needed".into(),
            ));
        }
        let codes: Vec<String> = (0..RECOVERY_CODES).map(|_| new_recovery_code()).collect();
        let hashes: Vec<String> = codes.iter().map(|c| hash_token(&normalize(c))).collect();
        store::put_recovery_codes(self.pool(), &user.id, &hashes).await?;
        Ok(codes)
    }

    /// Removes a user's second factor and ends their sessions (superusers only).
    pub async fn reset(&self, actor: &Actor, user_key: &str) -> Result<()> {
        actor.require_superuser("resetting a second factor")?;
        let user = self.m.users().get(actor, user_key).await?;
        let ended = store::sessions(self.pool(), Some(&user.id)).await?;
        store::reset(self.pool(), &user.id).await?;
        self.close_profiles_of(ended.into_iter().map(|s| s.address))
            .await?;
        Ok(())
    }

    fn secret(&self, sealed: &str) -> Result<TotpSecret> {
        TotpSecret::from_bytes(self.m.secrets().open(sealed)?)
    }

    /// Signs in the device behind `addr` with a TOTP code or a recovery code. Failures count
    /// against both the user and the address; too many refuse further tries for a while.
    pub async fn login(&self, addr: IpAddr, code: &str, now: i64) -> Result<Session> {
        let id = self.identify(addr, now).await?.ok_or_else(|| {
            Error::Unauthenticated("sign in from a device connected to the VPN".into())
        })?;
        let user_id = id.peer.user_id.clone();
        let keys = vec![format!("user:{user_id}"), format!("addr:{addr}")];
        let attempt = Attempt::reserve(self.m, keys, now)?;
        let accepted = self.check_code(&user_id, code, now).await?;
        attempt.settle(accepted)?;
        let session = Session {
            id: SessionId::generate(),
            user_id,
            username: id.peer.username.clone(),
            peer_id: id.peer.id.clone(),
            address: addr,
            created_at: now,
            expires_at: now
                + i64::try_from(self.m.config().auth.session_ttl_secs).unwrap_or(i64::MAX / 2),
        };
        store::put_session(self.pool(), &session).await?;
        // Open both addresses of the profile: the login came over one family, the device uses both.
        self.notify_profile(&id.peer, true).await;
        Ok(session)
    }

    async fn check_code(&self, user: &crate::users::UserId, code: &str, now: i64) -> Result<bool> {
        let row = store::totp(self.pool(), user)
            .await?
            .filter(|r| r.confirmed)
            .ok_or_else(|| {
                Error::invalid(
                    "code",
                    "no second factor is set up for this user: enroll first",
                )
            })?;
        let secret = self.secret(&row.secret)?;
        if let Some(step) = secret.verify(code, unix(now), row.last_step)? {
            return store::use_step(self.pool(), user, step).await;
        }
        let recovery = normalize(code);
        if recovery.len() == RECOVERY_CODE_LEN {
            return store::use_recovery_code(self.pool(), user, &hash_token(&recovery), now).await;
        }
        Ok(false)
    }

    /// Ends the session of the device behind `addr`.
    pub async fn sign_out(&self, addr: IpAddr, now: i64) -> Result<()> {
        let id = self
            .identify(addr, now)
            .await?
            .ok_or_else(|| Error::not_found(format!("session for {addr}")))?;
        let session = id
            .session
            .ok_or_else(|| Error::not_found(format!("session for {addr}")))?;
        self.end(&session).await
    }

    async fn end(&self, session: &Session) -> Result<()> {
        store::delete_session(self.pool(), &session.id).await?;
        self.close_profiles_of([session.address]).await
    }

    /// Records a sessions write: bumps the revision and announces that both tunnel addresses of
    /// a profile gained or lost their login.
    async fn notify_profile(&self, peer: &crate::peers::Peer, open: bool) {
        self.m.changed(Domain::Sessions, access(peer, open)).await;
    }

    /// Closes both addresses of the profiles the sessions at `addresses` were bound to (one
    /// revision bump for all of them).
    async fn close_profiles_of(&self, addresses: impl IntoIterator<Item = IpAddr>) -> Result<()> {
        let mut changes = Vec::new();
        for address in addresses {
            if let Some(peer) = self.m.peers().by_tunnel_address(address).await? {
                changes.extend(access(&peer, false));
            }
        }
        self.m.changed(Domain::Sessions, changes).await;
        Ok(())
    }

    /// Sessions the actor may see: all for a superuser, their own otherwise.
    pub async fn sessions(&self, actor: &Actor) -> Result<Vec<Session>> {
        let owner = if actor.is_superuser() {
            None
        } else {
            actor.user_id()
        };
        store::sessions(self.pool(), owner).await
    }

    /// Ends a session by id (its owner or a superuser).
    pub async fn revoke_session(&self, actor: &Actor, id: &str) -> Result<()> {
        let not_found = || Error::not_found(format!("session {id}"));
        let id: SessionId = id.parse().map_err(|_| not_found())?;
        let session = store::session(self.pool(), &id)
            .await?
            .filter(|s| actor.may_access(&s.user_id))
            .ok_or_else(not_found)?;
        self.end(&session).await
    }

    /// Deletes expired sessions and closes their addresses; returns how many ended.
    pub async fn expire_sessions(&self, now: i64) -> Result<usize> {
        let addrs = store::expire(self.pool(), now).await?;
        let n = addrs.len();
        if n > 0 {
            self.close_profiles_of(addrs).await?;
        }
        self.m.throttle(|t| t.sweep(unix(now)));
        Ok(n)
    }

    /// Tunnel addresses of MFA profiles with a live session (both families), for the firewall.
    pub async fn open_addresses(&self, now: i64) -> Result<Vec<IpAddr>> {
        let mut out = Vec::new();
        for a in store::open_addresses(self.pool(), now).await? {
            if let Some(peer) = self.m.peers().by_tunnel_address(a).await? {
                out.extend([IpAddr::from(peer.address_v4), IpAddr::from(peer.address_v6)]);
            }
        }
        out.sort();
        out.dedup();
        Ok(out)
    }

    /// Tunnel addresses (both families) of MFA profiles without a live session: devices that have
    /// only the first factor (the DNS resolver answers them the local zone only).
    pub async fn pending_addresses(&self, now: i64) -> Result<Vec<IpAddr>> {
        let open = self.open_addresses(now).await?;
        let mut out: Vec<IpAddr> = self
            .m
            .peers()
            .list(&Actor::System)
            .await?
            .into_iter()
            .filter(|p| p.kind == PeerKind::Mfa)
            .flat_map(|p| [IpAddr::from(p.address_v4), IpAddr::from(p.address_v6)])
            .filter(|a| !open.contains(a))
            .collect();
        out.sort();
        out.dedup();
        Ok(out)
    }

    /// Whether the Host names a Mistborn site: `home.<suffix>`, `dns.<suffix>` or a known service.
    pub fn is_known_host(&self, host: &str) -> bool {
        let host = strip_port(host).trim_end_matches('.').to_ascii_lowercase();
        let suffix = self.m.config().dns_suffix.to_ascii_lowercase();
        let Some(label) = host.strip_suffix(&format!(".{suffix}")) else {
            return false;
        };
        matches!(label, "home" | "dns")
            || self
                .m
                .config()
                .proxy
                .services
                .iter()
                .any(|s| s.name == label)
    }

    /// The forward-auth decision for a request from `addr` to `host`. Deny by default; a store error
    /// is an error (the HTTP layer answers 5xx), never an allow.
    pub async fn forward(
        &self,
        addr: Option<IpAddr>,
        host: Option<&str>,
        now: i64,
    ) -> Result<ForwardDecision> {
        if !host.is_some_and(|h| self.is_known_host(h)) {
            return Ok(ForwardDecision::Deny(DenyReason::UnknownHost));
        }
        let Some(addr) = addr else {
            return Ok(ForwardDecision::Deny(DenyReason::NotTunnel));
        };
        let Some(id) = self.identify(addr, now).await? else {
            return Ok(ForwardDecision::Deny(DenyReason::NotTunnel));
        };
        if id.peer.kind == PeerKind::Mfa && id.session.is_none() {
            return Ok(ForwardDecision::Deny(DenyReason::SignInRequired));
        }
        Ok(ForwardDecision::Allow {
            username: id.peer.username.clone(),
            profile: id.peer.name.to_string(),
        })
    }
}

/// One login attempt's reservation in the throttle. Dropped unsettled (the code check failed with
/// an error, or the caller went away), it frees its slot without counting as a failure.
struct Attempt<'a> {
    m: &'a Mistborn,
    keys: Vec<String>,
    now: u64,
    settled: bool,
}

impl<'a> Attempt<'a> {
    fn reserve(m: &'a Mistborn, keys: Vec<String>, now: i64) -> Result<Self> {
        let now = unix(now);
        m.throttle(|t| t.reserve(&keys, now))
            .map_err(|retry_after_secs| Error::Throttled { retry_after_secs })?;
        Ok(Self {
            m,
            keys,
            now,
            settled: false,
        })
    }

    /// Records the outcome: `Ok` for a right code, the error to return for a wrong one.
    fn settle(mut self, accepted: bool) -> Result<()> {
        self.settled = true;
        let ban = self
            .m
            .throttle(|t| t.settle(&self.keys, self.now, Some(accepted)));
        match (accepted, ban) {
            (true, _) => Ok(()),
            (false, Some(retry_after_secs)) => Err(Error::Throttled { retry_after_secs }),
            (false, None) => Err(Error::Unauthenticated("wrong or already used code".into())),
        }
    }
}

impl Drop for Attempt<'_> {
    fn drop(&mut self) {
        if !self.settled {
            self.m.throttle(|t| t.settle(&self.keys, self.now, None));
        }
    }
}

/// Recovery codes: 16 characters of base32 (80 bits), shown grouped as `XXXX-XXXX-XXXX-XXXX`.
const RECOVERY_CODE_LEN: usize = 16;

fn new_recovery_code() -> String {
    use rand::RngCore;
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut raw = [0u8; RECOVERY_CODE_LEN];
    rand::rng().fill_bytes(&mut raw);
    let chars: Vec<char> = raw
        .iter()
        .map(|b| ALPHABET[usize::from(b % 32)] as char)
        .collect();
    chars
        .chunks(4)
        .map(|c| c.iter().collect::<String>())
        .collect::<Vec<_>>()
        .join("-")
}

/// Case and dashes do not matter when typing a recovery code.
fn normalize(code: &str) -> String {
    code.chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_uppercase())
        .collect()
}

fn strip_port(host: &str) -> &str {
    if host.starts_with('[') {
        return host;
    }
    match host.rsplit_once(':') {
        Some((h, p)) if p.bytes().all(|b| b.is_ascii_digit()) && !h.contains(':') => h,
        _ => host,
    }
}

/// The access changes of both tunnel addresses of a profile.
fn access(peer: &crate::peers::Peer, open: bool) -> [Change; 2] {
    [peer.address_v4.into(), peer.address_v6.into()].map(|address| Change::Access { address, open })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recovery_codes_normalize() {
        let c = new_recovery_code();
        assert_eq!(c.len(), 19);
        assert_eq!(normalize(&c).len(), RECOVERY_CODE_LEN);
        assert_eq!(normalize(&c.to_lowercase()), normalize(&c));
    }

    #[test]
    fn ports_are_stripped_from_hosts() {
        assert_eq!(strip_port("home.mistborn:443"), "home.mistborn");
        assert_eq!(strip_port("home.mistborn"), "home.mistborn");
    }
}
