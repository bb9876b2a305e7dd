//! Account changes a server admin makes for someone else, without that user's UIA. Callers (the
//! admin service) check the admin flag and write the admin audit entry; these do the work.

use ruma::{OwnedDeviceId, UserId};

use super::{UserService, hash_password};
use crate::error::{Error, Result};
use crate::service::blocking;

impl UserService {
    /// Sets a new password; with `logout_devices` every device and token of the user goes.
    pub async fn admin_set_password(
        &self,
        user_id: &UserId,
        new_password: &str,
        logout_devices: bool,
    ) -> Result<()> {
        self.check_password_strength(new_password)?;
        let removed = match logout_devices {
            true => self.device_ids(user_id).await?,
            false => Vec::new(),
        };
        let store = self.store.clone();
        let uid = user_id.to_owned();
        let new_password = new_password.to_owned();
        blocking(move || {
            if store.get_user(uid.as_str())?.is_none() {
                return Err(Error::not_found("User not found"));
            }
            let hash = hash_password(&new_password)?;
            store.set_password_hash(uid.as_str(), &hash)?;
            if logout_devices {
                store.delete_devices(uid.as_str(), None)?;
            }
            Ok(())
        })
        .await?;
        self.devices_removed(user_id, removed).await;
        Ok(())
    }

    /// Deletes the named devices (unknown ids are ignored) and their tokens.
    pub async fn admin_delete_devices(
        &self,
        user_id: &UserId,
        device_ids: Vec<OwnedDeviceId>,
    ) -> Result<()> {
        let store = self.store.clone();
        let uid = user_id.to_owned();
        let ids = device_ids.clone();
        blocking(move || Ok(store.delete_devices(uid.as_str(), Some(&ids))?)).await?;
        self.devices_removed(user_id, device_ids).await;
        Ok(())
    }
}

impl UserService {
    /// Sets (or with `None` removes) the avatar of a local account.
    pub async fn admin_set_avatar_url(
        &self,
        user_id: &UserId,
        url: Option<ruma::OwnedMxcUri>,
    ) -> Result<()> {
        let store = self.store.clone();
        let uid = user_id.to_owned();
        let url = url.map(|u| u.to_string());
        blocking(move || Ok(store.set_profile(uid.as_str(), None, Some(url.as_deref()))?)).await
    }
}
