//! MSC3814 dehydrated devices: a device the user's client parks on the server (its Olm account
//! encrypted in the opaque `device_data`) so it can receive to-device messages while no client
//! is running. It is a real device without an access token: its keys are uploaded through
//! `KeyService`, other users see it in /keys/query, and to-device messages queue for it as for
//! any device. A rehydrating client collects them with `events`, paginated by `next_batch`;
//! presenting a token deletes what was returned before it.

use std::sync::Arc;

use ruma::api::client::dehydrated_device::{
    DehydratedDeviceData, get_events, put_dehydrated_device,
};
use ruma::api::client::keys::upload_keys;
use ruma::encryption::DeviceKeys;
use ruma::serde::Raw;
use ruma::{DeviceId, OwnedDeviceId, UserId};

use super::KeyService;
use super::to_device::ToDeviceService;
use crate::error::{Error, Result};
use crate::service::blocking;
use crate::service::users::Session;
use crate::store::StoreError;
use crate::store::dehydrated::DehydratedDeviceStore;

pub struct DehydratedDeviceService {
    store: Arc<dyn DehydratedDeviceStore>,
    keys: Arc<KeyService>,
    to_device: Arc<ToDeviceService>,
}

/// A `next_batch` token: the stream position of the last message handed out.
fn parse_batch(token: &str) -> Result<i64> {
    token
        .strip_prefix('d')
        .and_then(|p| p.parse().ok())
        .ok_or_else(|| Error::invalid_param("Invalid next_batch token"))
}

impl DehydratedDeviceService {
    pub fn new(
        store: Arc<dyn DehydratedDeviceStore>,
        keys: Arc<KeyService>,
        to_device: Arc<ToDeviceService>,
    ) -> Self {
        Self {
            store,
            keys,
            to_device,
        }
    }

    /// PUT: replaces the user's dehydrated device (the old one and its keys and messages are
    /// deleted) and uploads the new device's keys.
    pub async fn put(
        &self,
        user_id: &UserId,
        req: put_dehydrated_device::unstable::Request,
    ) -> Result<OwnedDeviceId> {
        let parsed: DeviceKeys = req
            .device_keys
            .deserialize()
            .map_err(|e| Error::bad_json(format!("Invalid device_keys: {e}")))?;
        if parsed.user_id != user_id || parsed.device_id != req.device_id {
            return Err(Error::invalid_param(
                "device_keys must be for the requesting user and the dehydrated device",
            ));
        }
        let store = self.store.clone();
        let (u, d) = (user_id.to_string(), req.device_id.to_string());
        let name = req.initial_device_display_name.clone();
        let data = req.device_data.json().get().to_owned();
        blocking(
            move || match store.put_dehydrated_device(&u, &d, name.as_deref(), &data) {
                Err(StoreError::Conflict(_)) => Err(Error::invalid_param(
                    "device_id is already in use by another device",
                )),
                other => Ok(other?),
            },
        )
        .await?;
        // The device has no access token: upload its keys as if it had signed in.
        let session = Session {
            user_id: user_id.to_owned(),
            device_id: req.device_id.clone(),
            is_admin: false,
            token_hash: String::new(),
            appservice: None,
        };
        let mut upload = upload_keys::v3::Request::new();
        upload.device_keys = Some(req.device_keys);
        upload.one_time_keys = req.one_time_keys;
        upload.fallback_keys = req.fallback_keys;
        if let Err(e) = self.keys.upload_keys(&session, upload).await {
            // Never leave a dehydrated device nobody can encrypt to.
            self.delete(user_id).await.ok();
            return Err(e);
        }
        tracing::info!(%user_id, device_id = %req.device_id, "dehydrated device stored");
        Ok(req.device_id)
    }

    /// GET: the dehydrated device's id and data, or 404.
    pub async fn get(
        &self,
        user_id: &UserId,
    ) -> Result<(OwnedDeviceId, Raw<DehydratedDeviceData>)> {
        let store = self.store.clone();
        let u = user_id.to_string();
        let found = blocking(move || Ok(store.dehydrated_device(&u)?))
            .await?
            .ok_or_else(|| Error::not_found("No dehydrated device available"))?;
        Ok((
            found.device_id.into(),
            super::upload::raw(&found.device_data)?,
        ))
    }

    /// DELETE: removes the dehydrated device (its keys and queued messages go with it), or 404.
    pub async fn delete(&self, user_id: &UserId) -> Result<OwnedDeviceId> {
        let store = self.store.clone();
        let u = user_id.to_string();
        let deleted = blocking(move || Ok(store.delete_dehydrated_device(&u)?))
            .await?
            .ok_or_else(|| Error::not_found("No dehydrated device available"))?;
        let deleted: OwnedDeviceId = deleted.into();
        self.keys
            .device_list_changed(user_id, std::slice::from_ref(&deleted))
            .await?;
        Ok(deleted)
    }

    /// POST .../{device_id}/events: the messages queued for the dehydrated device after
    /// `next_batch` (those up to it are deleted first).
    pub async fn events(
        &self,
        user_id: &UserId,
        device_id: &DeviceId,
        next_batch: Option<&str>,
    ) -> Result<get_events::unstable::Response> {
        let since = next_batch.map(parse_batch).transpose()?;
        let store = self.store.clone();
        let u = user_id.to_string();
        let current = blocking(move || Ok(store.dehydrated_device(&u)?)).await?;
        if current.is_none_or(|c| c.device_id != device_id.as_str()) {
            return Err(Error::forbidden(
                "You may only fetch events for your own dehydrated device",
            ));
        }
        let delivery = self
            .to_device
            .deliver(user_id, device_id, since, i64::MAX)
            .await?;
        let mut res = get_events::unstable::Response::new(delivery.events);
        res.next_batch = delivery.last_pos.or(since).map(|pos| format!("d{pos}"));
        Ok(res)
    }
}
