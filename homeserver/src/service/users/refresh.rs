//! Access token expiry and refresh tokens (spec `/refresh`). Only a client that asks for a
//! refresh token (`refresh_token: true`) gets an expiring access token, and only when
//! `sessions.access_token_lifetime` is set: a client that cannot refresh would be logged out.
//! Refresh tokens are single use; the access token issued with one stops working when it is
//! spent (the spec lets the server revoke it at once).

use ruma::api::error::{ErrorKind, UnknownTokenErrorData};
use ruma::{OwnedDeviceId, OwnedUserId, UserId};

use super::{NewSession, UserService, hash_token, new_token};
use crate::error::{Error, Result};
use crate::service::blocking;
use crate::store::now_ms;
use crate::store::users::TokenHashes;

/// `M_UNKNOWN_TOKEN` with `soft_logout: true`: the session lives on, the client refreshes (or
/// logs in again on the same device) and keeps its keys.
pub(super) fn expired() -> Error {
    let mut data = UnknownTokenErrorData::new();
    data.soft_logout = true;
    Error::new(
        http::StatusCode::UNAUTHORIZED,
        ErrorKind::UnknownToken(data),
        "Access token has expired",
    )
}

/// Fresh secrets for a session, handed to the client once.
struct Issued {
    access_token: String,
    refresh_token: Option<String>,
    expires_in_ms: Option<u64>,
}

impl Issued {
    /// New tokens and the hashes the store keeps.
    fn new(lifetime_ms: Option<u64>, with_refresh: bool) -> (Self, TokenHashes) {
        let access_token = new_token();
        let refresh_token = (with_refresh && lifetime_ms.is_some()).then(new_token);
        let expires_in_ms = refresh_token.as_ref().and(lifetime_ms);
        let hashes = TokenHashes {
            access: hash_token(&access_token),
            expires_ts: expires_in_ms.map(|ms| now_ms().saturating_add(ms as i64)),
            refresh: refresh_token.as_deref().map(hash_token),
        };
        let issued = Self {
            access_token,
            refresh_token,
            expires_in_ms,
        };
        (issued, hashes)
    }

    fn session(self, user_id: OwnedUserId, device_id: OwnedDeviceId) -> NewSession {
        NewSession {
            user_id,
            device_id,
            access_token: self.access_token,
            refresh_token: self.refresh_token,
            expires_in_ms: self.expires_in_ms,
        }
    }
}

impl UserService {
    fn token_lifetime_ms(&self) -> Option<u64> {
        // Validated at start-up (Config::validate), so an error here cannot happen.
        self.config
            .sessions
            .access_token_lifetime_ms()
            .ok()
            .flatten()
    }

    /// Starts a session on `device_id` (new random id if `None`); with `want_refresh` and
    /// expiry configured, the access token expires and a refresh token comes with it.
    pub async fn start_session(
        &self,
        user_id: &UserId,
        device_id: Option<OwnedDeviceId>,
        display_name: Option<String>,
        want_refresh: bool,
    ) -> Result<NewSession> {
        let device_id = device_id.unwrap_or_else(ruma::DeviceId::new);
        let (issued, hashes) = Issued::new(self.token_lifetime_ms(), want_refresh);
        let store = self.store.clone();
        let (uid, did) = (user_id.to_owned(), device_id.clone());
        blocking(move || {
            let (u, d, n) = (uid.as_str(), did.as_str(), display_name.as_deref());
            Ok(store.create_session_tokens(u, d, n, &hashes)?)
        })
        .await?;
        Ok(issued.session(user_id.to_owned(), device_id))
    }

    /// `POST /refresh`: spends `refresh_token` for a new access and refresh token on the same
    /// device. An unknown or already spent one is `M_UNKNOWN_TOKEN` (not a soft logout: the
    /// client must log in again).
    pub async fn refresh(&self, refresh_token: &str) -> Result<NewSession> {
        let Some(lifetime) = self.token_lifetime_ms() else {
            // Expiry turned off since the token was issued: its holder needs it no more.
            return Err(Error::unknown_token("Refresh tokens are not in use"));
        };
        let (issued, hashes) = Issued::new(Some(lifetime), true);
        let store = self.store.clone();
        let spent = hash_token(refresh_token);
        let owner = blocking(move || Ok(store.refresh_session(&spent, &hashes)?)).await?;
        let Some((user_id, device_id)) = owner else {
            tracing::warn!("refresh with an unknown or already used refresh token refused");
            return Err(Error::unknown_token(
                "Unknown or already used refresh token",
            ));
        };
        Ok(issued.session(user_id, device_id))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::config::{Config, SessionsConfig};
    use crate::service::Services;

    fn services(lifetime: Option<&str>) -> (Services, tempfile::TempDir) {
        let (store, dir) = crate::store::sqlite::test_store();
        let config = Config {
            data_dir: dir.path().to_owned(),
            sessions: SessionsConfig {
                access_token_lifetime: lifetime.map(str::to_owned),
                ..SessionsConfig::default()
            },
            ..Config::default()
        };
        let policy = Arc::new(handover_policy::AllowAll);
        (Services::build(config, store, policy).unwrap(), dir)
    }

    /// `Some(soft_logout)` for an `M_UNKNOWN_TOKEN` error.
    fn soft_logout(e: &Error) -> Option<bool> {
        match e.kind() {
            Some(ErrorKind::UnknownToken(d)) => Some(d.soft_logout),
            _ => None,
        }
    }

    #[tokio::test]
    async fn refresh_tokens_only_when_configured_and_asked_for() {
        let (off, _d) = services(None);
        let (_, _) = super::super::test_login(&off.users, "alice", "a long password").await;
        let alice = off.users.user_id_for("alice").unwrap();
        let s = off.users.start_session(&alice, None, None, true).await;
        let s = s.unwrap();
        assert!(s.refresh_token.is_none() && s.expires_in_ms.is_none());

        let (on, _d) = services(Some("5m"));
        super::super::test_login(&on.users, "alice", "a long password").await;
        let plain = on.users.start_session(&alice, None, None, false).await;
        let plain = plain.unwrap();
        assert!(plain.refresh_token.is_none() && plain.expires_in_ms.is_none());
        let s = on.users.start_session(&alice, None, None, true).await;
        let s = s.unwrap();
        assert!(s.refresh_token.is_some());
        assert_eq!(s.expires_in_ms, Some(300_000));
        assert!(on.users.authenticate(&s.access_token, None).await.is_ok());
    }

    #[tokio::test]
    async fn expired_token_soft_logout_then_single_use_refresh() {
        let (s, _d) = services(Some("200ms"));
        super::super::test_login(&s.users, "alice", "a long password").await;
        let alice = s.users.user_id_for("alice").unwrap();
        let first = s.users.start_session(&alice, None, None, true).await;
        let first = first.unwrap();
        assert!(
            s.users
                .authenticate(&first.access_token, None)
                .await
                .is_ok()
        );
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        let err = s.users.authenticate(&first.access_token, None).await;
        assert_eq!(soft_logout(&err.unwrap_err()), Some(true));

        let refresh1 = first.refresh_token.unwrap();
        let second = s.users.refresh(&refresh1).await.unwrap();
        assert_eq!(second.device_id, first.device_id);
        assert_eq!(second.expires_in_ms, Some(200));
        let session = s.users.authenticate(&second.access_token, None).await;
        assert_eq!(session.unwrap().device_id, first.device_id);
        // Spent: a second use is refused, and it is not a soft logout.
        let reused = s.users.refresh(&refresh1).await.err().unwrap();
        assert_eq!(soft_logout(&reused), Some(false));
        assert_eq!(
            soft_logout(&s.users.refresh("hot_nope").await.err().unwrap()),
            Some(false)
        );

        // The next refresh revokes the access token issued with the previous one at once.
        let third = s
            .users
            .refresh(second.refresh_token.as_deref().unwrap())
            .await;
        let third = third.unwrap();
        let old = s.users.authenticate(&second.access_token, None).await;
        assert_eq!(soft_logout(&old.unwrap_err()), Some(false));
        // Logging out takes the device and its refresh token with it.
        let session = s
            .users
            .authenticate(&third.access_token, None)
            .await
            .unwrap();
        s.users.logout(&session).await.unwrap();
        let after = s
            .users
            .refresh(third.refresh_token.as_deref().unwrap())
            .await;
        assert!(after.is_err());
    }
}
