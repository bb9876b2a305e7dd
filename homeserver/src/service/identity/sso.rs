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
        let Some((user_id, upstream)) = self.take_login_token(token) else {
            let e = entry("unknown", action::SSO_LOGIN, Outcome::Failure)
                .detail("reason", "invalid_login_token");
            self.audit.record(with_ip(e, ip)).await?;
            return Err(Error::forbidden("Invalid or expired login token"));
        };
        let s = self
            .users
            .start_session(&user_id, device_id, display_name, want_refresh)
            .await?;
        if let Some(up) = upstream {
            let store = self.sessions.clone();
            let (u, d) = (user_id.to_string(), s.device_id.to_string());
            crate::service::blocking(move || Ok(store.record_upstream_session(&up, &u, &d)?))
                .await?;
        }
        let e = entry(user_id.as_str(), action::SSO_LOGIN, Outcome::Success)
            .detail("device_id", s.device_id.as_str());
        self.audit.record(with_ip(e, ip)).await?;
        Ok(s)
    }
}

/// Where a legacy SSO redirect goes first.
pub enum SsoStart {
    /// To the provider's sign-in page.
    Provider(String),
    /// To Handover's chooser (several providers, none named): the checked `redirectUrl`.
    Chooser(String),
}

impl IdentityService {
    /// `GET /login/sso/redirect[/{idpId}]`: the client's `redirectUrl` must be valid and on
    /// `[identity] sso_redirect_allowlist` (a login token sent elsewhere would hand the account
    /// to whoever is there); a refusal is a page, audited, and nothing is issued.
    pub async fn sso_start(
        &self,
        idp: Option<String>,
        redirect_url: Option<String>,
        browser: &str,
        ip: Option<IpAddr>,
    ) -> std::result::Result<SsoStart, super::Refusal> {
        use ::http::StatusCode;
        let Some(url) = redirect_url.and_then(|u| url::Url::parse(&u).ok()) else {
            return Err(super::Refusal::new(
                StatusCode::BAD_REQUEST,
                "Missing redirectUrl",
                "The app must say where to return to (a valid redirectUrl).",
            ));
        };
        if !self.config.identity.sso_redirect_allowed(&url) {
            let e = entry("unknown", action::IDENTITY_REFUSED, Outcome::Denied)
                .detail("reason", "sso_redirect_not_allowed")
                .detail("redirect_origin", url.origin().ascii_serialization());
            self.audit
                .record(with_ip(e, ip))
                .await
                .map_err(super::Refusal::internal)?;
            return Err(super::Refusal::new(
                StatusCode::BAD_REQUEST,
                "App not allowed",
                format!(
                    "This server does not sign in apps at {}: it is not on the list of apps \
                     allowed to use this sign-in. Nothing was sent to it. Ask your \
                     administrator if you expected it to work.",
                    url.origin().ascii_serialization()
                ),
            ));
        }
        let idp = match (idp, self.providers()) {
            (Some(i), _) => i,
            (None, [only]) => only.id.clone(),
            (None, _) => return Ok(SsoStart::Chooser(url.to_string())),
        };
        self.start(&idp, browser, super::Next::Sso(url.to_string()))
            .await
            .map(SsoStart::Provider)
    }

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
