//! Password change and deactivation, both behind password UIA.

use ruma::UserId;
use ruma::api::client::uiaa::AuthData;

use handover_compliance::Outcome;

use super::{Session, UserService, hash_password};
use crate::error::Result;
use crate::service::audit::{action, entry};
use crate::service::blocking;

impl UserService {
    /// Sets a new password after UIA. With `logout_devices` every other device (and its tokens)
    /// is removed; the requesting device stays logged in (spec: SHOULD NOT revoke it).
    pub async fn change_password(
        &self,
        session: &Session,
        new_password: &str,
        logout_devices: bool,
        auth: Option<&AuthData>,
    ) -> Result<()> {
        // Before UIA, so the user is not asked for their password only to be refused after.
        self.check_password_strength(new_password)?;
        self.require_password_uia(&session.user_id, auth).await?;
        let store = self.store.clone();
        let uid = session.user_id.clone();
        let keep = session.device_id.clone();
        let mut removed = Vec::new();
        if logout_devices {
            removed = self.device_ids(&uid).await?;
            removed.retain(|d| *d != keep);
        }
        let new_password = new_password.to_owned();
        blocking(move || {
            let hash = hash_password(&new_password)?;
            store.set_password_hash(uid.as_str(), &hash)?;
            if logout_devices {
                store.delete_other_devices(uid.as_str(), keep.as_str())?;
            }
            Ok(())
        })
        .await?;
        self.devices_removed(&session.user_id, removed).await;
        tracing::info!(user_id = %session.user_id, logout_devices, "password changed");
        let e = entry(
            session.user_id.as_str(),
            action::PASSWORD_CHANGE,
            Outcome::Success,
        );
        self.audit
            .record(e.detail("logout_devices", logout_devices))
            .await?;
        Ok(())
    }

    /// `POST /account/deactivate`: UIA, then `deactivate`.
    pub async fn deactivate_account(
        &self,
        session: &Session,
        erase: bool,
        auth: Option<&AuthData>,
    ) -> Result<()> {
        self.require_password_uia(&session.user_id, auth).await?;
        self.deactivate(&session.user_id, erase).await
    }

    /// The account part of deactivation: no more logins, every device and token gone, profile
    /// cleared; with `erase`, account data and filters deleted too.
    /// Leaving rooms is done by `AccountService::deactivate`, which calls this first.
    pub async fn deactivate(&self, user_id: &UserId, erase: bool) -> Result<()> {
        let store = self.store.clone();
        let uid = user_id.to_owned();
        let removed = self.device_ids(user_id).await?;
        blocking(move || Ok(store.deactivate_user(uid.as_str(), erase)?)).await?;
        self.devices_removed(user_id, removed).await;
        tracing::info!(user_id = %user_id, erase, "account deactivated");
        let e = entry(user_id.as_str(), action::DEACTIVATE, Outcome::Success);
        self.audit
            .record(e.target(user_id.as_str()).detail("erase", erase))
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use ruma::api::error::ErrorKind;

    use crate::error::Error;
    use crate::service::test_services;
    use crate::service::users::devices::tests::password_auth;
    use crate::service::users::test_login;

    #[tokio::test]
    async fn change_password_logs_out_other_devices() {
        let (s, _d) = test_services();
        let (me, my_token) = test_login(&s.users, "alice", "old password").await;
        let (_, other_token) = test_login(&s.users, "alice", "old password").await;

        let weak = s.users.change_password(&me, "short", true, None).await;
        assert!(matches!(
            weak.unwrap_err().kind(),
            Some(ErrorKind::WeakPassword)
        ));
        let first = s
            .users
            .change_password(&me, "new password", true, None)
            .await;
        assert!(matches!(first, Err(Error::Uiaa(_))));

        let auth = password_auth("alice", "old password", None);
        s.users
            .change_password(&me, "new password", true, Some(&auth))
            .await
            .unwrap();
        assert!(s.users.authenticate(&my_token, None).await.is_ok());
        assert!(s.users.authenticate(&other_token, None).await.is_err());
        assert!(
            s.users
                .check_password(&me.user_id, "old password")
                .await
                .is_err()
        );
        assert!(
            s.users
                .check_password(&me.user_id, "new password")
                .await
                .is_ok()
        );
    }

    #[tokio::test]
    async fn change_password_can_keep_other_devices() {
        let (s, _d) = test_services();
        let (me, _) = test_login(&s.users, "alice", "old password").await;
        let (_, other_token) = test_login(&s.users, "alice", "old password").await;
        let auth = password_auth("alice", "old password", None);
        s.users
            .change_password(&me, "new password", false, Some(&auth))
            .await
            .unwrap();
        assert!(s.users.authenticate(&other_token, None).await.is_ok());
    }

    #[tokio::test]
    async fn deactivate_ends_sessions_and_logins() {
        let (s, _d) = test_services();
        let (me, token) = test_login(&s.users, "alice", "correct horse").await;
        let wrong = password_auth("alice", "nope nope", None);
        assert!(matches!(
            s.users.deactivate_account(&me, false, Some(&wrong)).await,
            Err(Error::Uiaa(_))
        ));
        assert!(s.users.authenticate(&token, None).await.is_ok());

        let auth = password_auth("alice", "correct horse", None);
        s.users
            .deactivate_account(&me, false, Some(&auth))
            .await
            .unwrap();
        assert!(s.users.authenticate(&token, None).await.is_err());
        assert!(
            s.users
                .check_password(&me.user_id, "correct horse")
                .await
                .is_err()
        );
        let p = s.users.get_profile(&me.user_id).await.unwrap();
        assert_eq!(p.displayname, None);
    }
}
