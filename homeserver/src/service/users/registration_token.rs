//! Constant-time comparison of registration tokens (their checks: service/registration/tokens.rs).

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

    #[tokio::test]
    async fn token_mode_accepts_only_configured_tokens() {
        let (s, _d) = services(RegistrationMode::Token, &["ward-7-2025", "icu"]);
        assert!(s.registration.token_valid("ward-7-2025").await.unwrap());
        assert!(s.registration.token_valid("icu").await.unwrap());
        assert!(!s.registration.token_valid("ward-7-202").await.unwrap());
        assert!(!s.registration.token_valid("").await.unwrap());
    }

    #[tokio::test]
    async fn closed_is_forbidden_and_open_knows_no_tokens() {
        let (s, _d) = services(RegistrationMode::Closed, &["icu"]);
        let err = s.registration.token_valid("icu").await.unwrap_err();
        assert_eq!(err.kind(), Some(&ErrorKind::Forbidden));
        let (s, _d) = services(RegistrationMode::Open, &["icu"]);
        assert!(!s.registration.token_valid("icu").await.unwrap());
    }
}
