//! `m.login.token`: the legacy SSO client trades the `loginToken` it was handed for a session.

use std::net::IpAddr;
use std::time::Duration;

use handover_compliance::Outcome;
use ruma::api::client::uiaa::AuthData;
use ruma::{OwnedDeviceId, UserId};

use super::{IdentityService, action};
use crate::error::{Error, Result};
use crate::service::audit::{entry, with_ip};
use crate::service::users::NewSession;

impl IdentityService {
    /// A session for the user a single-use login token names; `M_FORBIDDEN` when the token is
    /// unknown, spent or expired.
    pub async fn login_with_token(
        &self,
        token: &str,
        device_id: Option<OwnedDeviceId>,
        display_name: Option<String>,
        want_refresh: bool,
        ip: Option<IpAddr>,
    ) -> Result<NewSession> {
        let Some(user_id) = self.take_login_token(token) else {
            let e = entry("unknown", action::SSO_LOGIN, Outcome::Failure)
                .detail("reason", "invalid_login_token");
            self.audit.record(with_ip(e, ip)).await?;
            return Err(Error::forbidden("Invalid or expired login token"));
        };
        let s = self
            .users
            .start_session(&user_id, device_id, display_name, want_refresh)
            .await?;
        let e = entry(user_id.as_str(), action::SSO_LOGIN, Outcome::Success)
            .detail("device_id", s.device_id.as_str());
        self.audit.record(with_ip(e, ip)).await?;
        Ok(s)
    }
}

impl IdentityService {
    /// `POST /login/get_token`: a single-use login token for `user_id`, after the password UIA
    /// stage (always asked again: the spec wants explicit consent for each new device).
    /// 404 `M_UNRECOGNIZED` unless `[identity] get_login_token = true`.
    pub async fn login_token_for_session(
        &self,
        user_id: &UserId,
        auth: Option<&AuthData>,
        ip: Option<IpAddr>,
    ) -> Result<(String, Duration)> {
        if !self.config.identity.get_login_token {
            return Err(Error::unrecognized(
                http::StatusCode::NOT_FOUND,
                "POST /login/get_token is not enabled on this server",
            ));
        }
        self.users.require_password_uia(user_id, auth).await?;
        let (token, ttl) = self.issue_login_token(user_id.to_owned());
        let e = entry(
            user_id.as_str(),
            action::LOGIN_TOKEN_ISSUED,
            Outcome::Success,
        );
        self.audit.record(with_ip(e, ip)).await?;
        Ok((token, ttl))
    }
}
