//! UIA for replacing cross-signing keys: sessions from the OAuth 2.0 API have no password to
//! re-enter, so they get the `m.oauth` stage (spec v1.17, MSC4312): the client sends the user
//! to the account page (`?action=org.matrix.cross_signing_reset`), the user signs in there and
//! approves, and the client's retry succeeds within the approval window (with or without the
//! stage's `auth`, as Element X and matrix-sdk retry both ways). Other sessions keep the
//! password stage.

use ruma::api::client::uiaa::AuthData;

use super::{Session, UserService};
use crate::error::Result;
use crate::service::blocking;
use crate::service::uiaa::ACCOUNT_PAGE_PATH;

impl UserService {
    /// `Ok(())` when `session` may replace its user's cross-signing keys now.
    pub(crate) async fn require_cross_signing_uia(
        &self,
        session: &Session,
        auth: Option<&AuthData>,
    ) -> Result<()> {
        let store = self.store.clone();
        let (u, d) = (session.user_id.to_string(), session.device_id.to_string());
        let oauth = blocking(move || Ok(store.device_uses_oauth(&u, &d)?)).await?;
        if !oauth {
            return self.require_password_uia(&session.user_id, auth).await;
        }
        if self.uiaa.take_oauth_approval(session.user_id.as_str()) {
            return Ok(());
        }
        let url = format!(
            "{}{}?action=org.matrix.cross_signing_reset",
            self.config.base_url().trim_end_matches('/'),
            ACCOUNT_PAGE_PATH
        );
        Err(self.uiaa.oauth_required(auth, &url))
    }
}
