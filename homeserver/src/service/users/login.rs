//! Password login, audited whichever way it ends. The password never leaves this function: the
//! trail records the user id tried, the client address and the outcome.

use std::net::IpAddr;

use handover_compliance::Outcome;
use ruma::OwnedDeviceId;
use ruma::api::error::ErrorKind;

use super::{NewSession, UserService};
use crate::error::Result;
use crate::service::audit::{action, entry, with_ip};

/// Names for why a login failed; metadata for the trail, never shown to the client.
fn failure_reason(kind: Option<&ErrorKind>) -> &'static str {
    match kind {
        Some(ErrorKind::UserDeactivated) => "deactivated",
        Some(ErrorKind::Forbidden) => "invalid_credentials",
        _ => "error",
    }
}

impl UserService {
    /// `m.login.password` for `user` (a localpart or full id): a new session whose token does
    /// not expire, or `M_FORBIDDEN`.
    pub async fn login(
        &self,
        user: &str,
        password: &str,
        device_id: Option<OwnedDeviceId>,
        display_name: Option<String>,
        client_ip: Option<IpAddr>,
    ) -> Result<NewSession> {
        self.login_device(user, password, device_id, display_name, false, client_ip)
            .await
    }

    /// [`Self::login`]; with `want_refresh` (the client supports refresh tokens) the session
    /// may get an expiring access token and a refresh token (`[sessions]`).
    pub async fn login_device(
        &self,
        user: &str,
        password: &str,
        device_id: Option<OwnedDeviceId>,
        display_name: Option<String>,
        want_refresh: bool,
        client_ip: Option<IpAddr>,
    ) -> Result<NewSession> {
        let res = async {
            if !self.config.identity.password_login {
                // The spec's answer to a login type the server does not offer.
                return Err(crate::error::Error::new(
                    http::StatusCode::BAD_REQUEST,
                    ruma::api::error::ErrorKind::Unknown,
                    "Unknown login type m.login.password: password sign-in is turned off on \
                     this server; sign in with your organisation's identity provider",
                ));
            }
            let user_id = self.parse_login_user(user)?;
            let record = self.check_password(&user_id, password).await?;
            self.start_session(&record.user_id, device_id, display_name, want_refresh)
                .await
        }
        .await;
        let e = match &res {
            Ok(s) => entry(s.user_id.as_str(), action::LOGIN, Outcome::Success)
                .detail("device_id", s.device_id.as_str()),
            // The name exactly as tried (cut to a sane length), so guessing shows in the trail.
            Err(err) => entry(
                &user.chars().take(255).collect::<String>(),
                action::LOGIN,
                Outcome::Failure,
            )
            .detail("reason", failure_reason(err.kind())),
        };
        self.audit.record(with_ip(e, client_ip)).await?;
        res
    }
}
