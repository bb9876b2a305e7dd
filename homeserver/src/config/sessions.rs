//! `[sessions]`: access token expiry with refresh tokens (spec `/refresh`, Matrix 1.3). Off by
//! default: a token that expires under a client that never refreshes logs its user out, so it
//! is turned on once the deployment's clients are known to refresh.

use serde::{Deserialize, Serialize};

use super::parse_duration_ms;

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionsConfig {
    /// Lifetime of an access token issued to a client that asks for a refresh token
    /// (`refresh_token: true` on /login and /register), e.g. "5m". Unset: no refresh tokens
    /// are issued and access tokens never expire. Clients that do not ask keep tokens that do
    /// not expire either (they could not renew them).
    #[serde(default)]
    pub access_token_lifetime: Option<String>,
    /// A session (device) not used for this long is signed out softly (`M_UNKNOWN_TOKEN`,
    /// `soft_logout: true`: its tokens end, the device and its keys stay, the user signs in
    /// again on it), e.g. "30m". At least "2m" (last use is recorded once a minute). Unset: off.
    #[serde(default)]
    pub idle_timeout: Option<String>,
    /// A session (device) this old since its first sign-in is ended outright (the device is
    /// deleted; `soft_logout: false`), e.g. "12h" for a shift. Unset: off.
    #[serde(default)]
    pub max_session_age: Option<String>,
}

impl SessionsConfig {
    /// The access token lifetime in milliseconds, `None` when expiry is off.
    pub fn access_token_lifetime_ms(&self) -> Result<Option<u64>, String> {
        self.access_token_lifetime
            .as_deref()
            .map(parse_duration_ms)
            .transpose()
            .map_err(|e| format!("configuration error: key `sessions.access_token_lifetime`: {e}"))
    }

    pub fn idle_timeout_ms(&self) -> Result<Option<u64>, String> {
        self.idle_timeout
            .as_deref()
            .map(parse_duration_ms)
            .transpose()
            .map_err(|e| format!("configuration error: key `sessions.idle_timeout`: {e}"))
    }

    pub fn max_session_age_ms(&self) -> Result<Option<u64>, String> {
        self.max_session_age
            .as_deref()
            .map(parse_duration_ms)
            .transpose()
            .map_err(|e| format!("configuration error: key `sessions.max_session_age`: {e}"))
    }

    pub fn validate(&self) -> Result<(), String> {
        if self.idle_timeout_ms()?.is_some_and(|ms| ms < 120_000) {
            return Err(
                "configuration error: key `sessions.idle_timeout` must be at least \"2m\" (last \
                 use is recorded once a minute)"
                    .into(),
            );
        }
        if self.max_session_age_ms()? == Some(0) {
            return Err(
                "configuration error: key `sessions.max_session_age` must be longer than 0".into(),
            );
        }
        if self.access_token_lifetime_ms()? == Some(0) {
            return Err(
                "configuration error: key `sessions.access_token_lifetime` must be longer than 0"
                    .into(),
            );
        }
        Ok(())
    }
}
