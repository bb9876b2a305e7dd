//! Telling other servers that a local user's devices or cross-signing keys changed:
//! `m.device_list_update` (one per device: its current keys, or `deleted`) and
//! `m.signing_key_update` (master and self-signing keys), to every other server sharing a room
//! with the user (`EduFanout`).
//!
//! `stream_id` is the user's device-list position (`device_list_changes`, also the `stream_id`
//! of `/user/devices`). `prev_id` is always empty: a receiver that tracks prev ids (Synapse)
//! then re-fetches the whole list with `/user/devices`, so a change we failed to announce (a
//! crash, a replaced dehydrated device) is repaired by the next one instead of leaving a stale
//! device on the other server. The cost is one request per change per server.
//!
//! Announcing never fails the local operation: errors are logged.

use std::collections::HashSet;
use std::future::Future;
use std::pin::Pin;

use ruma::api::federation::transactions::edu::{DeviceListUpdateContent, SigningKeyUpdateContent};
use ruma::{OwnedDeviceId, UInt, UserId};

use super::KeyService;
use super::upload::View;
use crate::error::Result;
use crate::service::blocking;
use crate::service::users::DeviceObserver;

impl KeyService {
    /// Announces the current state of `devices` of a local user.
    pub(super) async fn announce_devices(&self, user: &UserId, devices: &[OwnedDeviceId]) {
        if let Err(e) = self.try_announce_devices(user, devices).await {
            tracing::warn!(target: "handover::federation", %user, error = ?e, "device list update not sent");
        }
    }

    async fn try_announce_devices(&self, user: &UserId, devices: &[OwnedDeviceId]) -> Result<()> {
        if devices.is_empty() || !self.is_local(user) {
            return Ok(());
        }
        // Most users share no room with another server: skip the key reads for them.
        if self
            .fed
            .fanout
            .servers_sharing_rooms(user)
            .await?
            .is_empty()
        {
            return Ok(());
        }
        let stream_id = self.device_list_stream_id(user).await?;
        let keys = self.device_keys_of(user, &[], View::Federation).await?;
        let existing: HashSet<OwnedDeviceId> = self
            .users
            .list_devices(user)
            .await?
            .into_iter()
            .map(|d| d.device_id)
            .collect();
        let updates = devices
            .iter()
            .map(|d| {
                let mut c = DeviceListUpdateContent::new(user.to_owned(), d.clone(), stream_id);
                if existing.contains(d) {
                    c.keys = keys.get(d).cloned();
                } else {
                    c.deleted = Some(true);
                }
                c
            })
            .collect();
        self.fed.fanout.device_list_updates(user, updates).await;
        Ok(())
    }

    /// Announces a local user's current master and self-signing keys.
    pub(super) async fn announce_signing_keys(&self, user: &UserId) {
        let keys = match self.cross_signing_view(user, View::Federation).await {
            Ok(k) => k,
            Err(e) => {
                tracing::warn!(target: "handover::federation", %user, error = ?e, "signing key update not sent");
                return;
            }
        };
        let mut content = SigningKeyUpdateContent::new(user.to_owned());
        for (ty, key) in keys {
            match ty.as_str() {
                "master" => content.master_key = Some(key),
                "self_signing" => content.self_signing_key = Some(key),
                _ => {}
            }
        }
        if content.master_key.is_some() || content.self_signing_key.is_some() {
            self.fed.fanout.signing_key_update(content).await;
        }
    }

    /// After the owner signed their own keys (`signed`: device ids or cross-signing public
    /// keys): the signed devices and, for a signed cross-signing key, the signing keys.
    pub(super) async fn announce_signed(&self, user: &UserId, signed: Vec<String>) {
        if signed.is_empty() {
            return;
        }
        let devices: HashSet<OwnedDeviceId> = match self.users.list_devices(user).await {
            Ok(d) => d.into_iter().map(|d| d.device_id).collect(),
            Err(e) => {
                tracing::warn!(target: "handover::federation", %user, error = ?e, "device list update not sent");
                return;
            }
        };
        let (on_devices, on_keys): (Vec<String>, Vec<String>) = signed
            .into_iter()
            .partition(|k| devices.contains(k.as_str()));
        let on_devices: Vec<OwnedDeviceId> = on_devices.into_iter().map(Into::into).collect();
        self.announce_devices(user, &on_devices).await;
        if !on_keys.is_empty() {
            self.announce_signing_keys(user).await;
        }
    }

    /// The `stream_id` other servers see for the user's device list.
    pub(super) async fn device_list_stream_id(&self, user: &UserId) -> Result<UInt> {
        let store = self.fed.store.clone();
        let u = user.to_string();
        let pos = blocking(move || Ok(store.device_list_pos(&u)?)).await?;
        Ok(UInt::new_saturating(pos.max(0) as u64))
    }
}

/// Devices removed by the user service (logout, deletion, deactivation): room-mates re-fetch
/// the list and other servers hear the devices are gone.
impl DeviceObserver for KeyService {
    fn devices_removed<'a>(
        &'a self,
        user: &'a UserId,
        devices: Vec<OwnedDeviceId>,
    ) -> Pin<Box<dyn Future<Output = ()> + Send + 'a>> {
        Box::pin(async move {
            if let Err(e) = self.notify_key_change(user).await {
                tracing::warn!(%user, error = ?e, "device removal: room-mates not woken");
            }
            self.announce_devices(user, &devices).await;
        })
    }
}
