//! The `m.login.password` UIA flow that guards device deletion, password change and
//! deactivation: the requester re-proves their own password.

use ruma::UserId;
use ruma::api::client::uiaa::{AuthData, AuthFlow, AuthType, UserIdentifier};
use ruma::api::error::ErrorKind;

use super::UserService;
use crate::error::Result;

impl UserService {
    /// `Ok(())` once `auth` completes the password flow for `user_id`; otherwise the UIA 401
    /// (flows, session, and `M_FORBIDDEN` as `auth_error` after a wrong password).
    pub(crate) async fn require_password_uia(
        &self,
        user_id: &UserId,
        auth: Option<&AuthData>,
    ) -> Result<()> {
        let flows = [AuthFlow::new(vec![AuthType::Password])];
        // Verify before entering the UIA service: hashing is slow, must run off the executor,
        // and must not hold the UIA sessions lock.
        let proven = self.password_stage_ok(user_id, auth).await?;
        self.uiaa.check(auth, &flows, &move |_| Ok(proven))
    }

    async fn password_stage_ok(&self, user_id: &UserId, auth: Option<&AuthData>) -> Result<bool> {
        let Some(AuthData::Password(p)) = auth else {
            return Ok(false);
        };
        // The identifier must name the requester: a token for one account cannot be combined
        // with another account's password.
        let UserIdentifier::Matrix(m) = &p.identifier else {
            return Ok(false);
        };
        match self.parse_login_user(&m.user) {
            Ok(named) if named == user_id => {}
            _ => return Ok(false),
        }
        match self.check_password(user_id, &p.password).await {
            Ok(_) => Ok(true),
            Err(e) if matches!(e.kind(), Some(ErrorKind::Forbidden)) => Ok(false),
            Err(e) => Err(e),
        }
    }
}
