//! Registration tokens (`m.login.registration_token`, with `[registration] mode = "token"`):
//! the config's `tokens` (unlimited, for bootstrapping) and the tokens made through the admin
//! API, which have Synapse's limits: `uses_allowed` (a use is held while a registration that
//! passed the token stage still has stages to go: `pending`; spent when the account is made:
//! `completed`) and `expiry_time`.

use super::RegistrationService;
use crate::config::RegistrationMode;
use crate::error::{Error, Result};
use crate::service::blocking;
use crate::service::users::constant_time_eq;
use crate::store::now_ms;

/// The UIA session note naming the token a registration passed its stage with.
pub(super) const TOKEN_NOTE: &str = "registration_token";

/// A token presented at the UIA stage.
pub(super) struct PresentedToken {
    pub token: String,
    pub valid: bool,
    /// One of the config's tokens (no limits, nothing counted).
    pub from_config: bool,
}

impl RegistrationService {
    /// `GET /_matrix/client/v1/register/m.login.registration_token/validity`.
    pub async fn token_valid(&self, token: &str) -> Result<bool> {
        match self.config.registration.mode {
            RegistrationMode::Closed => Err(Error::forbidden(
                "Registration is not enabled on this homeserver",
            )),
            RegistrationMode::Open => Ok(false),
            RegistrationMode::Token => Ok(self.check_token(token).await?.valid),
        }
    }

    pub(super) async fn check_token(&self, token: &str) -> Result<PresentedToken> {
        let from_config = (self.config.registration.tokens.iter())
            .any(|k| constant_time_eq(k.as_bytes(), token.as_bytes()));
        let valid = from_config || {
            let (store, t) = (self.tokens.clone(), token.to_owned());
            blocking(move || Ok(store.registration_token_usable(&t, now_ms())?)).await?
        };
        Ok(PresentedToken {
            token: token.to_owned(),
            valid,
            from_config,
        })
    }

    /// The token stage passed and the registration goes on to other stages.
    pub(super) async fn hold_token_use(&self, t: &PresentedToken) -> Result<()> {
        if !t.valid || t.from_config {
            return Ok(());
        }
        let (store, token) = (self.tokens.clone(), t.token.clone());
        blocking(move || Ok(store.reserve_registration_token(&token, now_ms())?)).await?;
        Ok(())
    }

    /// Every stage passed: spends one use of the token (the held one when it was passed in an
    /// earlier request). `Some(token)` when a stored token was spent, for a refund if the
    /// account cannot be made; a token used up in the meantime refuses the registration.
    pub(super) async fn spend_token(
        &self,
        token: &str,
        presented_now: Option<&PresentedToken>,
    ) -> Result<Option<String>> {
        let from_config = (self.config.registration.tokens.iter())
            .any(|k| constant_time_eq(k.as_bytes(), token.as_bytes()));
        if from_config {
            return Ok(None);
        }
        let reserved = presented_now.is_none();
        let (store, t) = (self.tokens.clone(), token.to_owned());
        let ok = blocking(move || Ok(store.complete_registration_token(&t, reserved, now_ms())?))
            .await?;
        if !ok {
            return Err(Error::forbidden(
                "The registration token is no longer valid",
            ));
        }
        Ok(Some(token.to_owned()))
    }

    pub(super) async fn refund_token(&self, token: &str) {
        let (store, t) = (self.tokens.clone(), token.to_owned());
        if let Err(e) = blocking(move || Ok(store.refund_registration_token(&t)?)).await {
            tracing::warn!(error = %e, "registration token use not given back");
        }
    }
}
