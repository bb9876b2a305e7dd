//! End-to-end encryption support: device and one-time keys (upload, query, claim), device-list
//! tracking for /sync and /keys/changes, cross-signing and signatures. To-device messages and
//! key backup have their own services (`to_device.rs`, `backup.rs`).
//!
//! Over federation (`federation.rs`, `remote.rs`, `announce.rs`): other servers query and claim
//! local users' keys; /keys/query and /keys/claim ask the servers of remote users (device lists
//! of users sharing a room are cached until their server says they changed); local device and
//! cross-signing changes are announced to the servers sharing a room with the user.

mod announce;
mod appservice_feed;
pub mod backup;
mod cross_signing;
pub mod dehydrated;
mod device_lists;
mod federation;
mod remote;
pub mod to_device;
mod upload;

#[cfg(test)]
mod backup_policy_tests;
#[cfg(test)]
mod dehydrated_tests;
#[cfg(test)]
mod federation_tests;
#[cfg(test)]
mod tests;

use std::sync::Arc;

use ruma::{OwnedDeviceId, OwnedServerName, UserId};

use super::federation::client::FederationClient;
use super::notifier::Notifier;
use super::peer::fanout::EduFanout;
use super::rooms::RoomService;
use super::users::UserService;
use crate::error::Result;
use crate::service::blocking;
use crate::store::keys::KeyStore;
use crate::store::remote_e2ee::RemoteE2eeStore;

pub use device_lists::DeviceListChanges;

pub struct KeyService {
    server_name: OwnedServerName,
    store: Arc<dyn KeyStore>,
    users: Arc<UserService>,
    rooms: Arc<RoomService>,
    notifier: Arc<Notifier>,
    fed: KeyFederation,
}

/// What the key service needs to work across servers.
pub struct KeyFederation {
    /// Queries and claims keys of remote users (gated by the federation list).
    pub client: Arc<FederationClient>,
    /// Remote device lists, inbound to-device dedupe, device-list stream ids.
    pub store: Arc<dyn RemoteE2eeStore>,
    /// Announces local device and cross-signing key changes.
    pub fanout: Arc<EduFanout>,
}

impl KeyService {
    pub fn new(
        server_name: OwnedServerName,
        store: Arc<dyn KeyStore>,
        users: Arc<UserService>,
        rooms: Arc<RoomService>,
        notifier: Arc<Notifier>,
        fed: KeyFederation,
    ) -> Self {
        Self {
            server_name,
            store,
            users,
            rooms,
            notifier,
            fed,
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

    /// Records that devices of a local user were removed outside this service (a dehydrated
    /// device replaced or deleted), wakes room-mates and tells the other servers.
    pub async fn device_list_changed(
        &self,
        user_id: &UserId,
        removed: &[OwnedDeviceId],
    ) -> Result<()> {
        let store = self.store.clone();
        let u = user_id.to_string();
        blocking(move || Ok(store.mark_device_list_changed(&u)?)).await?;
        self.notify_key_change(user_id).await?;
        self.announce_devices(user_id, removed).await;
        Ok(())
    }
}
