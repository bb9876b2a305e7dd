//! OpenID tokens (`POST /user/{userId}/openid/request_token`): a short-lived opaque token a
//! user hands to a third party (an integration manager, a widget), which that party exchanges
//! at `GET /_matrix/federation/v1/openid/userinfo` for the user's id and nothing else.
//!
//! Tokens are kept hashed (SHA-256, as access tokens are) and in memory only: they live an hour,
//! grant no access to this server, and a client asks for a new one whenever it needs one, so
//! losing them in a restart costs a re-request, while never writing them keeps them out of
//! backups.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use ruma::{OwnedUserId, UserId};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use super::users::{Session, hash_token};
use crate::error::{Error, Result};

/// How long a token is good for (Synapse's default too).
pub const TOKEN_TTL: Duration = Duration::from_secs(3600);
/// Live tokens kept at most: bounds memory whatever clients ask for.
const MAX_TOKENS: usize = 100_000;

#[derive(Default)]
pub struct OpenIdService {
    /// Token hash -> (user, expiry).
    tokens: Mutex<HashMap<String, (OwnedUserId, Instant)>>,
}

impl OpenIdService {
    pub fn new() -> Self {
        Self::default()
    }

    /// A new token for the requester; `user_id` must be the requester (403 otherwise).
    pub fn request_token(&self, session: &Session, user_id: &UserId) -> Result<(String, Duration)> {
        if session.user_id != user_id {
            return Err(Error::forbidden(
                "You may only request OpenID tokens for yourself",
            ));
        }
        // 256 random bits; the prefix tells it apart from an access token in a support ticket.
        let token = format!("hoi_{}", URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>()));
        let now = Instant::now();
        let mut tokens = self.tokens.lock().expect("openid lock");
        if tokens.len() >= MAX_TOKENS {
            tokens.retain(|_, (_, exp)| *exp > now);
        }
        if tokens.len() >= MAX_TOKENS {
            return Err(Error::new(
                http::StatusCode::TOO_MANY_REQUESTS,
                ruma::api::error::ErrorKind::LimitExceeded(Default::default()),
                "Too many OpenID tokens outstanding; try again later",
            ));
        }
        tokens.insert(hash_token(&token), (user_id.to_owned(), now + TOKEN_TTL));
        Ok((token, TOKEN_TTL))
    }

    /// Whose token this is, or 401 `M_UNKNOWN_TOKEN` (unknown or expired).
    pub fn userinfo(&self, token: &str) -> Result<OwnedUserId> {
        let unknown = || Error::unknown_token("Unknown or expired OpenID token");
        let mut tokens = self.tokens.lock().expect("openid lock");
        let key = hash_token(token);
        match tokens.get(&key) {
            Some((user, exp)) if *exp > Instant::now() => Ok(user.clone()),
            Some(_) => {
                tokens.remove(&key);
                Err(unknown())
            }
            None => Err(unknown()),
        }
    }
}

#[cfg(test)]
mod tests {
    use ruma::api::error::ErrorKind;

    use super::*;
    use crate::service::test_services;
    use crate::service::users::test_login;

    #[tokio::test]
    async fn tokens_name_their_user_until_they_expire() {
        let (s, _d) = test_services();
        let (alice, _) = test_login(&s.users, "alice", "correct horse").await;
        let (bob, _) = test_login(&s.users, "bob", "correct horse").await;
        let o = OpenIdService::new();
        let (tok, ttl) = o.request_token(&alice, &alice.user_id).unwrap();
        assert_eq!(ttl, TOKEN_TTL);
        assert_eq!(o.userinfo(&tok).unwrap(), alice.user_id);
        // Only the hash is kept.
        assert!(!o.tokens.lock().unwrap().contains_key(&tok));

        let err = o.request_token(&bob, &alice.user_id).unwrap_err();
        assert!(matches!(err.kind(), Some(ErrorKind::Forbidden)));
        let err = o.userinfo("not-a-token").unwrap_err();
        assert!(matches!(err.kind(), Some(ErrorKind::UnknownToken { .. })));

        // Expired: refused and forgotten.
        for (_, exp) in o.tokens.lock().unwrap().values_mut() {
            *exp = Instant::now() - Duration::from_secs(1);
        }
        let err = o.userinfo(&tok).unwrap_err();
        assert!(matches!(err.kind(), Some(ErrorKind::UnknownToken { .. })));
        assert!(o.tokens.lock().unwrap().is_empty());
    }
}
