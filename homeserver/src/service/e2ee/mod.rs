//! End-to-end encryption support: device and one-time keys (upload, query, claim), device-list
//! tracking for /sync and /keys/changes, cross-signing and signatures. To-device messages and
//! key backup have their own services (`to_device.rs`, `backup.rs`).
//!
//! Federation seam: remote users in /keys/query and /keys/claim go to the response's `failures`
//! map keyed by server name (`remote_failures`); a federation client replaces that one step.

pub mod backup;
mod cross_signing;
pub mod dehydrated;
mod device_lists;
pub mod to_device;
mod upload;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_backup_policy;
#[cfg(test)]
mod tests_dehydrated;

use std::collections::BTreeMap;
use std::sync::Arc;

use ruma::{OwnedServerName, UserId};

use super::notifier::Notifier;
use super::rooms::RoomService;
use super::users::UserService;
use crate::error::Result;
use crate::service::blocking;
use crate::store::keys::KeyStore;

pub use device_lists::DeviceListChanges;

pub struct KeyService {
    server_name: OwnedServerName,
    store: Arc<dyn KeyStore>,
    users: Arc<UserService>,
    rooms: Arc<RoomService>,
    notifier: Arc<Notifier>,
}

impl KeyService {
    pub fn new(
        server_name: OwnedServerName,
        store: Arc<dyn KeyStore>,
        users: Arc<UserService>,
        rooms: Arc<RoomService>,
        notifier: Arc<Notifier>,
    ) -> Self {
        Self {
            server_name,
            store,
            users,
            rooms,
            notifier,
        }
    }

    fn is_local(&self, user_id: &UserId) -> bool {
        user_id.server_name() == self.server_name
    }

    /// Wakes the syncs of everyone who shares a room with `user_id` (and the user): their
    /// `device_lists.changed` now names them.
    async fn notify_key_change(&self, user_id: &UserId) -> Result<()> {
        let users = self.rooms.users_sharing_rooms(user_id).await?;
        self.notifier.notify(users.iter().map(|u| &**u));
        Ok(())
    }

    /// Records a device-list change made outside this service (device deletion, logout) and
    /// wakes room-mates.
    pub async fn device_list_changed(&self, user_id: &UserId) -> Result<()> {
        let store = self.store.clone();
        let u = user_id.to_string();
        blocking(move || Ok(store.mark_device_list_changed(&u)?)).await?;
        self.notify_key_change(user_id).await
    }
}

/// The `failures` entry for users on other servers until federation exists.
fn remote_failures<'a>(
    users: impl IntoIterator<Item = &'a UserId>,
) -> BTreeMap<String, serde_json::Value> {
    users
        .into_iter()
        .map(|u| {
            (
                u.server_name().to_string(),
                serde_json::json!({ "error": "Federation is not enabled on this server" }),
            )
        })
        .collect()
}
