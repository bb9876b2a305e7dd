//! TURN credentials (`GET /voip/turnServer`) in coturn's shared-secret scheme (`[voip]`):
//! username `expiry:user_id` (expiry in Unix seconds), password
//! base64(HMAC-SHA1(secret, username)). coturn verifies them with the same secret and no call
//! back to us. HMAC-SHA1 is what coturn specifies; it is not used for anything else here.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ring::hmac;
use ruma::UserId;

use crate::config::VoipConfig;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TurnCredentials {
    pub username: String,
    pub password: String,
    pub uris: Vec<String>,
    pub ttl: Duration,
}

pub struct VoipService {
    /// `None` when no TURN server is configured.
    turn: Option<(hmac::Key, Vec<String>)>,
    ttl: Duration,
}

impl VoipService {
    /// From a validated config (`VoipConfig::validate`).
    pub fn new(cfg: &VoipConfig) -> Self {
        let turn = match (&cfg.turn_shared_secret, cfg.turn_uris.is_empty()) {
            (Some(secret), false) => Some((
                hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, secret.as_bytes()),
                cfg.turn_uris.clone(),
            )),
            _ => None,
        };
        Self {
            turn,
            ttl: Duration::from_secs(cfg.ttl_secs().unwrap_or(86_400)),
        }
    }

    /// Credentials for `user`, valid for the configured TTL from `now`; `None` without TURN.
    pub fn credentials_at(&self, user: &UserId, now: SystemTime) -> Option<TurnCredentials> {
        let (key, uris) = self.turn.as_ref()?;
        let expiry = (now + self.ttl)
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        let username = format!("{expiry}:{user}");
        let password = STANDARD.encode(hmac::sign(key, username.as_bytes()).as_ref());
        Some(TurnCredentials {
            username,
            password,
            uris: uris.clone(),
            ttl: self.ttl,
        })
    }

    pub fn credentials(&self, user: &UserId) -> Option<TurnCredentials> {
        self.credentials_at(user, SystemTime::now())
    }
}

#[cfg(test)]
mod tests {
    use ruma::user_id;

    use super::*;

    #[test]
    fn coturn_rest_credentials() {
        let cfg = VoipConfig {
            turn_uris: vec!["turn:turn.example.org:3478?transport=udp".into()],
            turn_shared_secret: Some("s3cret".into()),
            turn_ttl: "1h".into(),
        };
        cfg.validate().unwrap();
        let v = VoipService::new(&cfg);
        let at = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let c = v
            .credentials_at(user_id!("@alice:example.org"), at)
            .unwrap();
        assert_eq!(c.username, "1700003600:@alice:example.org");
        // `printf '1700003600:@alice:example.org' | openssl dgst -sha1 -hmac s3cret -binary | base64`
        assert_eq!(c.password, "DwTxSrYoQgbdbUzNhDKfrCGmqbE=");
        assert_eq!(c.ttl, Duration::from_secs(3600));
        assert_eq!(c.uris, cfg.turn_uris);

        assert!(
            VoipService::new(&VoipConfig::default())
                .credentials(user_id!("@alice:example.org"))
                .is_none()
        );
        let no_secret = VoipConfig {
            turn_shared_secret: None,
            ..cfg.clone()
        };
        assert!(no_secret.validate().is_err());
        let bad_uri = VoipConfig {
            turn_uris: vec!["https://turn.example.org".into()],
            ..cfg.clone()
        };
        assert!(bad_uri.validate().is_err());
        assert!(!format!("{cfg:?}").contains("s3cret"));
    }
}
