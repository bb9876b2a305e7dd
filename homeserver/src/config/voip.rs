//! `[voip]`: TURN credentials for calls (`GET /voip/turnServer`), coturn's
//! `use-auth-secret` / REST API scheme: the server and coturn share a secret, and each
//! credential is `expiry:user_id` with an HMAC-SHA1 password coturn can check by itself.

use serde::{Deserialize, Serialize};

use super::parse_duration_ms;

#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VoipConfig {
    /// TURN URIs handed to clients, e.g. `["turn:turn.trust.nhs.uk:3478?transport=udp"]`.
    /// Empty: no TURN server (clients get `{}`).
    #[serde(default)]
    pub turn_uris: Vec<String>,
    /// coturn's `static-auth-secret`; needed when `turn_uris` is set.
    #[serde(default)]
    pub turn_shared_secret: Option<String>,
    /// How long a credential works (a duration: "1d", "12h").
    #[serde(default = "default_ttl")]
    pub turn_ttl: String,
}

fn default_ttl() -> String {
    "1d".into()
}

impl Default for VoipConfig {
    fn default() -> Self {
        Self {
            turn_uris: vec![],
            turn_shared_secret: None,
            turn_ttl: default_ttl(),
        }
    }
}

/// The secret never reaches a log through `{:?}`.
impl std::fmt::Debug for VoipConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VoipConfig")
            .field("turn_uris", &self.turn_uris)
            .field(
                "turn_shared_secret",
                &self.turn_shared_secret.as_ref().map(|_| "<redacted>"),
            )
            .field("turn_ttl", &self.turn_ttl)
            .finish()
    }
}

impl VoipConfig {
    pub fn ttl_secs(&self) -> Result<u64, String> {
        let ms = parse_duration_ms(&self.turn_ttl)
            .map_err(|e| format!("configuration error: key `voip.turn_ttl`: {e}"))?;
        Ok(ms / 1000)
    }

    pub fn validate(&self) -> Result<(), String> {
        if self.ttl_secs()? == 0 {
            return Err("configuration error: key `voip.turn_ttl` must be at least 1s".into());
        }
        for u in &self.turn_uris {
            if !["turn:", "turns:", "stun:"]
                .iter()
                .any(|p| u.starts_with(p))
            {
                return Err(format!(
                    "configuration error: key `voip.turn_uris`: {u:?} is not a turn:, turns: or stun: URI"
                ));
            }
        }
        if !self.turn_uris.is_empty()
            && self.turn_shared_secret.as_deref().is_none_or(str::is_empty)
        {
            return Err(
                "configuration error: key `voip.turn_uris` needs `voip.turn_shared_secret`".into(),
            );
        }
        Ok(())
    }
}
