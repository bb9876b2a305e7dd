//! `GET /register/m.login.registration_token/validity`.

use super::UserService;
use crate::config::RegistrationMode;
use crate::error::{Error, Result};

impl UserService {
    /// Whether `token` would be accepted by registration now. Spec: 403 only when the server
    /// does not permit registration at all; with open registration no token is recognised.
    pub fn registration_token_valid(&self, token: &str) -> Result<bool> {
        match self.config.registration.mode {
            RegistrationMode::Closed => Err(Error::forbidden(
                "Registration is not enabled on this homeserver",
            )),
            RegistrationMode::Open => Ok(false),
            RegistrationMode::Token => Ok(self
                .config
                .registration
                .tokens
                .iter()
                .any(|t| constant_time_eq(t.as_bytes(), token.as_bytes()))),
        }
    }
}

/// Compares without stopping at the first difference, so timing does not reveal a prefix.
pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use ruma::api::error::ErrorKind;

    use crate::config::{Config, RegistrationMode};
    use crate::service::Services;

    fn services(mode: RegistrationMode, tokens: &[&str]) -> (Services, tempfile::TempDir) {
        let (store, dir) = crate::store::sqlite::test_store();
        let mut config = Config {
            data_dir: dir.path().to_owned(),
            ..Config::default()
        };
        config.registration.mode = mode;
        config.registration.tokens = tokens.iter().map(|t| t.to_string()).collect();
        let s = Services::build(config, store, Arc::new(handover_policy::AllowAll)).unwrap();
        (s, dir)
    }

    #[test]
    fn token_mode_accepts_only_configured_tokens() {
        let (s, _d) = services(RegistrationMode::Token, &["ward-7-2025", "icu"]);
        assert!(s.users.registration_token_valid("ward-7-2025").unwrap());
        assert!(s.users.registration_token_valid("icu").unwrap());
        assert!(!s.users.registration_token_valid("ward-7-202").unwrap());
        assert!(!s.users.registration_token_valid("").unwrap());
    }

    #[test]
    fn closed_is_forbidden_and_open_knows_no_tokens() {
        let (s, _d) = services(RegistrationMode::Closed, &["icu"]);
        let err = s.users.registration_token_valid("icu").unwrap_err();
        assert_eq!(err.kind(), Some(&ErrorKind::Forbidden));
        let (s, _d) = services(RegistrationMode::Open, &["icu"]);
        assert!(!s.users.registration_token_valid("icu").unwrap());
    }
}
