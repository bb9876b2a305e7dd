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

    pub fn validate(&self) -> Result<(), String> {
        if self.access_token_lifetime_ms()? == Some(0) {
            return Err(
                "configuration error: key `sessions.access_token_lifetime` must be longer than 0"
                    .into(),
            );
        }
        Ok(())
    }
}
