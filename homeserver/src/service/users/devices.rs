//! The user's own devices: list, inspect, rename, delete (deletion behind password UIA).

use http::StatusCode;
use ruma::api::client::uiaa::AuthData;
use ruma::api::error::ErrorKind;
use ruma::{DeviceId, OwnedDeviceId, UserId};

use handover_compliance::Outcome;

use super::{Session, UserService};
use crate::error::{Error, Result};
use crate::service::audit::{action, entry};
use crate::service::blocking;
use crate::store::users::DeviceRecord;

/// Longest device display name we store (Synapse's limit, so clients already respect it).
const MAX_DEVICE_NAME_CHARS: usize = 100;

impl UserService {
    pub async fn list_devices(&self, user_id: &UserId) -> Result<Vec<DeviceRecord>> {
        let store = self.store.clone();
        let uid = user_id.to_owned();
        blocking(move || Ok(store.list_devices(uid.as_str())?)).await
    }

    /// One of the user's devices, or 404 `M_NOT_FOUND`.
    pub async fn get_device(&self, user_id: &UserId, device_id: &DeviceId) -> Result<DeviceRecord> {
        let store = self.store.clone();
        let (uid, did) = (user_id.to_owned(), device_id.to_owned());
        blocking(move || Ok(store.get_device(uid.as_str(), did.as_str())?))
            .await?
            .ok_or_else(|| Error::not_found("No device with that ID"))
    }

    /// Renames one of the user's devices; `None` leaves the name unchanged (spec). Regular
    /// clients may not create devices this way: an unknown device is 404.
    pub async fn rename_device(
        &self,
        user_id: &UserId,
        device_id: &DeviceId,
        display_name: Option<String>,
    ) -> Result<()> {
        let Some(name) = display_name else {
            self.get_device(user_id, device_id).await?;
            return Ok(());
        };
        if name.chars().count() > MAX_DEVICE_NAME_CHARS {
            return Err(Error::new(
                StatusCode::BAD_REQUEST,
                ErrorKind::TooLarge,
                format!("Device display name is too long (max {MAX_DEVICE_NAME_CHARS})"),
            ));
        }
        let store = self.store.clone();
        let (uid, did) = (user_id.to_owned(), device_id.to_owned());
        let found =
            blocking(move || Ok(store.set_device_name(uid.as_str(), did.as_str(), Some(&name))?))
                .await?;
        if found {
            Ok(())
        } else {
            Err(Error::not_found("No device with that ID"))
        }
    }

    /// Deletes devices of the requester (and their access tokens) once the requester has
    /// re-entered their password through UIA. Unknown ids are ignored: the spec answers 200 for
    /// devices that "had been removed previously".
    pub async fn delete_devices(
        &self,
        session: &Session,
        device_ids: Vec<OwnedDeviceId>,
        auth: Option<&AuthData>,
    ) -> Result<()> {
        self.require_password_uia(&session.user_id, auth).await?;
        let store = self.store.clone();
        let uid = session.user_id.clone();
        let count = device_ids.len();
        let ids: Vec<String> = device_ids.iter().map(|d| d.to_string()).collect();
        let removed = device_ids.clone();
        blocking(move || Ok(store.delete_devices(uid.as_str(), Some(&device_ids))?)).await?;
        self.devices_removed(&session.user_id, removed).await;
        tracing::info!(user_id = %session.user_id, count, "devices deleted");
        let e = entry(
            session.user_id.as_str(),
            action::DEVICE_DELETE,
            Outcome::Success,
        );
        self.audit.record(e.detail("device_ids", ids)).await?;
        Ok(())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use ruma::api::client::uiaa::{AuthType, MatrixUserIdentifier, Password, UserIdentifier};

    use super::*;
    use crate::service::test_services;
    use crate::service::users::test_login;

    pub(crate) fn password_auth(user: &str, password: &str, session: Option<String>) -> AuthData {
        let id = UserIdentifier::Matrix(MatrixUserIdentifier::new(user.to_owned()));
        let mut p = Password::new(id, password.to_owned());
        p.session = session;
        AuthData::Password(p)
    }

    #[tokio::test]
    async fn delete_device_needs_the_right_password() {
        let (s, _d) = test_services();
        let (me, _) = test_login(&s.users, "alice", "correct horse").await;
        let (other, other_token) = test_login(&s.users, "alice", "correct horse").await;
        let target = vec![other.device_id.clone()];

        // No auth: 401 with the password flow and a session id.
        let Err(Error::Uiaa(info)) = s.users.delete_devices(&me, target.clone(), None).await else {
            panic!("expected UIA")
        };
        assert_eq!(info.flows[0].stages, vec![AuthType::Password]);
        let uia = info.session.clone();
        assert!(uia.is_some());

        // Wrong password: still 401, now with M_FORBIDDEN as auth_error; device kept.
        let wrong = password_auth("alice", "wrong horse", uia.clone());
        let Err(Error::Uiaa(info)) = s
            .users
            .delete_devices(&me, target.clone(), Some(&wrong))
            .await
        else {
            panic!("expected UIA")
        };
        assert_eq!(info.auth_error.unwrap().kind, ErrorKind::Forbidden);
        assert!(
            s.users
                .get_device(&me.user_id, &other.device_id)
                .await
                .is_ok()
        );

        // Right password (full user id as identifier): deleted, and its token is dead.
        let right = password_auth("@alice:localhost", "correct horse", uia);
        s.users
            .delete_devices(&me, target, Some(&right))
            .await
            .unwrap();
        let gone = s.users.get_device(&me.user_id, &other.device_id).await;
        assert!(matches!(
            gone.unwrap_err().kind(),
            Some(ErrorKind::NotFound)
        ));
        let err = s.users.authenticate(&other_token, None).await.unwrap_err();
        assert!(matches!(err.kind(), Some(ErrorKind::UnknownToken(_))));
        // The requesting device is untouched.
        assert_eq!(s.users.list_devices(&me.user_id).await.unwrap().len(), 1);
    }

    #[tokio::test]
    async fn uia_password_of_another_user_is_refused() {
        let (s, _d) = test_services();
        let (alice, _) = test_login(&s.users, "alice", "alice password").await;
        test_login(&s.users, "bob", "bob password").await;
        // Bob's correct password does not authorise Alice's token.
        let auth = password_auth("bob", "bob password", None);
        let res = s
            .users
            .delete_devices(&alice, vec![alice.device_id.clone()], Some(&auth))
            .await;
        let Err(Error::Uiaa(info)) = res else {
            panic!("expected UIA")
        };
        assert_eq!(info.auth_error.unwrap().kind, ErrorKind::Forbidden);
        assert!(
            s.users
                .get_device(&alice.user_id, &alice.device_id)
                .await
                .is_ok()
        );
    }

    #[tokio::test]
    async fn rename_device_and_unknown_device() {
        let (s, _d) = test_services();
        let (me, _) = test_login(&s.users, "alice", "correct horse").await;
        s.users
            .rename_device(&me.user_id, &me.device_id, Some("Ward PC".into()))
            .await
            .unwrap();
        let d = s
            .users
            .get_device(&me.user_id, &me.device_id)
            .await
            .unwrap();
        assert_eq!(d.display_name.as_deref(), Some("Ward PC"));
        // Absent name leaves it unchanged.
        s.users
            .rename_device(&me.user_id, &me.device_id, None)
            .await
            .unwrap();
        let d = s
            .users
            .get_device(&me.user_id, &me.device_id)
            .await
            .unwrap();
        assert_eq!(d.display_name.as_deref(), Some("Ward PC"));
        let unknown: OwnedDeviceId = "NOPE".into();
        let err = s
            .users
            .rename_device(&me.user_id, &unknown, Some("x".into()))
            .await
            .unwrap_err();
        assert!(matches!(err.kind(), Some(ErrorKind::NotFound)));
        let long = "x".repeat(MAX_DEVICE_NAME_CHARS + 1);
        let err = s
            .users
            .rename_device(&me.user_id, &me.device_id, Some(long))
            .await
            .unwrap_err();
        assert!(matches!(err.kind(), Some(ErrorKind::TooLarge)));
    }

    #[tokio::test]
    async fn authenticate_records_last_seen_once() {
        let (s, _d) = test_services();
        let (me, token) = test_login(&s.users, "alice", "correct horse").await;
        // Sign-in records a first use; test_login then authenticated once (without an
        // address), written in the background: let that write land.
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        let mut seen = None;
        for _ in 0..100 {
            seen = s
                .users
                .get_device(&me.user_id, &me.device_id)
                .await
                .unwrap()
                .last_seen_ts;
            if seen.is_some() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        assert!(seen.is_some(), "last-seen was never recorded");
        // Within the minute, a request from a new address does not write again.
        s.users
            .authenticate(&token, Some("10.1.2.3".parse().unwrap()))
            .await
            .unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        let d = s
            .users
            .get_device(&me.user_id, &me.device_id)
            .await
            .unwrap();
        assert_eq!(d.last_seen_ip, None);
        assert_eq!(d.last_seen_ts, seen);
    }
}
