//! `[sessions] idle_timeout` and `max_session_age`, enforced where every token is resolved
//! (`authenticate`). docs/IDENTITY.md "Session limits" explains the two answers:
//! - idle: a soft logout (`soft_logout: true`): the device's tokens end (refresh tokens too, so
//!   a refresh cannot revive it) but the device and its keys stay; the user signs in again on the
//!   same device and keeps their local data, as after a screen lock.
//! - maximum age: the session is over (`soft_logout: false`): the device is deleted, the client
//!   clears its data and signs in afresh.

use handover_compliance::Outcome;

use super::UserService;
use crate::error::{Error, Result};
use crate::service::audit::{action, entry};
use crate::service::blocking;
use crate::store::users::TokenOwner;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionEnd {
    Idle,
    MaxAge,
}

/// The configured limits in milliseconds (`None`: off).
#[derive(Debug, Clone, Copy, Default)]
pub struct SessionLimits {
    pub idle_ms: Option<u64>,
    pub max_age_ms: Option<u64>,
}

impl SessionLimits {
    /// Whether the session behind `o` has ended at `now` (ms), and why. Maximum age wins: a
    /// session both idle and too old is over, not merely paused.
    pub fn check(&self, o: &TokenOwner, now: i64) -> Option<SessionEnd> {
        let older_than = |since: i64, ms: u64| now.saturating_sub(since) > ms as i64;
        if self
            .max_age_ms
            .is_some_and(|ms| older_than(o.session_start_ts, ms))
        {
            return Some(SessionEnd::MaxAge);
        }
        let last_use = o.last_seen_ts.unwrap_or(o.session_start_ts);
        if self.idle_ms.is_some_and(|ms| older_than(last_use, ms)) {
            return Some(SessionEnd::Idle);
        }
        None
    }
}

fn unknown_token(soft_logout: bool, message: &str) -> Error {
    use ruma::api::error::{ErrorKind, UnknownTokenErrorData};
    let mut data = UnknownTokenErrorData::new();
    data.soft_logout = soft_logout;
    Error::new(
        http::StatusCode::UNAUTHORIZED,
        ErrorKind::UnknownToken(data),
        message,
    )
}

impl UserService {
    pub(super) fn session_limits(&self) -> SessionLimits {
        // Validated at start-up, so parsing cannot fail here.
        SessionLimits {
            idle_ms: self.config.sessions.idle_timeout_ms().ok().flatten(),
            max_age_ms: self.config.sessions.max_session_age_ms().ok().flatten(),
        }
    }

    /// Ends the session as `end` says; the error the client gets.
    pub(super) async fn end_limited_session(&self, o: &TokenOwner, end: SessionEnd) -> Error {
        let res = match end {
            SessionEnd::MaxAge => {
                self.end_device_session(&o.user_id, o.device_id.clone(), "max_session_age")
                    .await
            }
            SessionEnd::Idle => {
                let store = self.store.clone();
                let (u, d) = (o.user_id.to_string(), o.device_id.to_string());
                let done: Result<()> =
                    blocking(move || Ok(store.delete_device_tokens(&u, &d)?)).await;
                match done {
                    Ok(()) => {
                        let e = entry(o.user_id.as_str(), action::LOGOUT, Outcome::Success)
                            .detail("device_id", o.device_id.as_str())
                            .detail("reason", "idle_timeout");
                        self.audit.record(e).await
                    }
                    Err(e) => Err(e),
                }
            }
        };
        if let Err(e) = res {
            return e;
        }
        match end {
            SessionEnd::MaxAge => unknown_token(
                false,
                "Session ended: older than this server's maximum session age; sign in again",
            ),
            SessionEnd::Idle => unknown_token(
                true,
                "Session paused after inactivity; sign in again on this device",
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owner(start: i64, seen: Option<i64>) -> TokenOwner {
        TokenOwner {
            user_id: "@a:x".try_into().unwrap(),
            device_id: "D".into(),
            is_admin: false,
            deactivated: false,
            expires_ts: None,
            session_start_ts: start,
            last_seen_ts: seen,
        }
    }

    const MIN: u64 = 60_000;

    #[test]
    fn no_limits_never_end_a_session() {
        let l = SessionLimits::default();
        assert_eq!(l.check(&owner(0, None), i64::MAX / 2), None);
    }

    #[test]
    fn idle_counts_from_last_use_or_sign_in() {
        let l = SessionLimits {
            idle_ms: Some(30 * MIN),
            max_age_ms: None,
        };
        let start = 1_000_000;
        let now = start + 31 * MIN as i64;
        assert_eq!(l.check(&owner(start, None), now), Some(SessionEnd::Idle));
        assert_eq!(
            l.check(&owner(start, Some(now - 29 * MIN as i64)), now),
            None
        );
        assert_eq!(
            l.check(&owner(start, Some(now - 30 * MIN as i64 - 1)), now),
            Some(SessionEnd::Idle)
        );
        // Exactly at the limit is still allowed.
        assert_eq!(
            l.check(&owner(start, Some(now - 30 * MIN as i64)), now),
            None
        );
    }

    #[test]
    fn maximum_age_counts_from_first_sign_in_and_wins_over_idle() {
        let l = SessionLimits {
            idle_ms: Some(30 * MIN),
            max_age_ms: Some(12 * 60 * MIN),
        };
        let start = 5_000_000;
        let late = start + 12 * 60 * MIN as i64 + 1;
        // In constant use, still ended at the maximum age.
        assert_eq!(
            l.check(&owner(start, Some(late - 1)), late),
            Some(SessionEnd::MaxAge)
        );
        assert_eq!(
            l.check(&owner(start, Some(start)), late),
            Some(SessionEnd::MaxAge)
        );
        assert_eq!(l.check(&owner(start, Some(late - 1)), late - 2), None);
    }
}
