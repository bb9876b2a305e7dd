//! `POST /login` with `m.login.application_service` (spec: Application Service API, "Server
//! admin style permissions"): an appservice, authenticated by its `as_token`, logs in a user of
//! its namespace without a password, so that user gets a device (a bridge bot needs one to
//! take part in end-to-end encryption). Audited like a password login.

use handover_compliance::Outcome;
use ruma::OwnedDeviceId;

use super::{AppserviceService, exclusive};
use crate::error::{Error, Result};
use crate::service::audit::{action, entry};
use crate::service::users::{NewSession, Session};

impl AppserviceService {
    /// A new session for `user` (localpart or full id) on behalf of the appservice whose
    /// `as_token` made the request: 401 without one, 400 `M_EXCLUSIVE` outside its namespace,
    /// 403 for an unknown or deactivated user.
    pub async fn login(
        &self,
        caller: Option<&Session>,
        user: &str,
        device_id: Option<OwnedDeviceId>,
        display_name: Option<String>,
        want_refresh: bool,
    ) -> Result<NewSession> {
        let Some(a) = caller
            .and_then(|s| s.appservice.as_deref())
            .and_then(|id| self.registry.by_id(id))
        else {
            return Err(Error::new(
                http::StatusCode::UNAUTHORIZED,
                ruma::api::error::ErrorKind::MissingToken,
                "m.login.application_service needs an appservice's as_token",
            ));
        };
        let user_id = self.users.parse_login_user(user)?;
        if !a.controls_user(&user_id) {
            let e = entry(a.sender.as_str(), "appservice.denied", Outcome::Denied)
                .rule("login_outside_namespace")
                .target(user_id.as_str())
                .detail("appservice", a.id());
            self.audit.record(e).await?;
            return Err(exclusive(format!(
                "{user_id} is not in the namespace of application service {}",
                a.id()
            )));
        }
        match self.users.get_user(&user_id).await? {
            Some(r) if !r.deactivated => {}
            _ => return Err(Error::forbidden(format!("{user_id} does not exist"))),
        }
        let session = self
            .users
            .start_session(&user_id, device_id, display_name, want_refresh)
            .await?;
        let e = entry(user_id.as_str(), action::LOGIN, Outcome::Success)
            .detail("device_id", session.device_id.as_str())
            .detail("appservice", a.id());
        self.audit.record(e).await?;
        Ok(session)
    }
}
