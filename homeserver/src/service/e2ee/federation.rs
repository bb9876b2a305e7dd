//! Answers to other servers about local users' keys: `/user/devices/{userId}`,
//! `/user/keys/query` and `/user/keys/claim`, and what an inbound `m.device_list_update` /
//! `m.signing_key_update` does. The origin is already authenticated and on the federation list.
//!
//! Other servers see device keys and the master and self-signing keys, with only the owner's
//! own signatures and no device display names (`View::Federation`). The user-signing key never
//! leaves the server.

use std::collections::BTreeMap;

use ruma::api::federation::device::get_devices;
use ruma::api::federation::keys::{claim_keys, get_keys};
use ruma::{OwnedDeviceId, OwnedUserId, ServerName, UserId};

use super::KeyService;
use super::upload::View;
use crate::error::{Error, Result};
use crate::service::blocking;

/// Most users one `/user/keys/query` or `/user/keys/claim` may ask about.
const MAX_USERS_PER_REQUEST: usize = 1000;

impl KeyService {
    /// `GET /_matrix/federation/v1/user/devices/{userId}`: a local user's devices with keys,
    /// the list's stream id, and their master and self-signing keys.
    pub async fn federation_devices(
        &self,
        origin: &ServerName,
        user: &UserId,
    ) -> Result<get_devices::v1::Response> {
        if !self.is_local(user) {
            return Err(Error::invalid_param(format!(
                "{user} is not a user of this server"
            )));
        }
        tracing::debug!(target: "handover::federation", %origin, %user, "device list requested");
        let stream_id = self.device_list_stream_id(user).await?;
        let mut res = get_devices::v1::Response::new(user.to_owned(), stream_id);
        res.devices = self
            .device_keys_of(user, &[], View::Federation)
            .await?
            .into_iter()
            .map(|(device, keys)| get_devices::v1::UserDevice::new(device, keys))
            .collect();
        for (ty, key) in self.cross_signing_view(user, View::Federation).await? {
            match ty.as_str() {
                "master" => res.master_key = Some(key),
                "self_signing" => res.self_signing_key = Some(key),
                _ => {}
            }
        }
        Ok(res)
    }

    /// `POST /_matrix/federation/v1/user/keys/query`: keys of the local users asked about
    /// (users of other servers are not answered for).
    pub async fn federation_query(
        &self,
        origin: &ServerName,
        device_keys: BTreeMap<OwnedUserId, Vec<OwnedDeviceId>>,
    ) -> Result<get_keys::v1::Response> {
        check_size(device_keys.len())?;
        tracing::debug!(target: "handover::federation", %origin, users = device_keys.len(), "key query");
        let mut res = get_keys::v1::Response::default();
        for (user, wanted) in device_keys.into_iter().filter(|(u, _)| self.is_local(u)) {
            let devices = self
                .device_keys_of(&user, &wanted, View::Federation)
                .await?;
            if !devices.is_empty() || self.users.get_user(&user).await?.is_some() {
                res.device_keys.insert(user.clone(), devices);
            }
            for (ty, key) in self.cross_signing_view(&user, View::Federation).await? {
                match ty.as_str() {
                    "master" => res.master_keys.insert(user.clone(), key),
                    "self_signing" => res.self_signing_keys.insert(user.clone(), key),
                    _ => None,
                };
            }
        }
        Ok(res)
    }

    /// `POST /_matrix/federation/v1/user/keys/claim`: one key per wanted device of local users.
    pub async fn federation_claim(
        &self,
        origin: &ServerName,
        wanted: claim_keys::v1::OneTimeKeyClaims,
    ) -> Result<claim_keys::v1::Response> {
        check_size(wanted.len())?;
        tracing::debug!(target: "handover::federation", %origin, users = wanted.len(), "key claim");
        let local = wanted.into_iter().filter(|(u, _)| self.is_local(u));
        Ok(claim_keys::v1::Response::new(
            self.claim_local(local).await?,
        ))
    }

    /// A remote user's devices or cross-signing keys changed (an `m.device_list_update` or
    /// `m.signing_key_update` from their server). Only for users in a room with us: their
    /// cached list is dropped and local room-mates see them in `device_lists.changed`.
    pub async fn remote_keys_changed(&self, user: &UserId) -> Result<()> {
        if self.is_local(user) || self.rooms.joined_rooms(user).await?.is_empty() {
            return Ok(());
        }
        let (store, keys) = (self.fed.store.clone(), self.store.clone());
        let u = user.to_string();
        blocking(move || {
            store.drop_device_list(&u)?;
            Ok(keys.mark_device_list_changed(&u)?)
        })
        .await?;
        self.notify_key_change(user).await
    }
}

fn check_size(users: usize) -> Result<()> {
    if users > MAX_USERS_PER_REQUEST {
        return Err(Error::invalid_param(format!(
            "at most {MAX_USERS_PER_REQUEST} users per request"
        )));
    }
    Ok(())
}
