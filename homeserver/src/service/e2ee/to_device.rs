//! Send-to-device messaging: queued per recipient device at a stream position, delivered in
//! /sync `to_device.events`, deleted once the device syncs with a `since` past them.

use std::sync::Arc;

use ruma::api::client::to_device::send_event_to_device::v3::Messages;
use ruma::events::AnyToDeviceEvent;
use ruma::serde::Raw;
use ruma::to_device::DeviceIdOrAllDevices;
use ruma::{DeviceId, OwnedServerName, OwnedUserId, UserId};
use serde_json::json;

use crate::error::{Error, Result};
use crate::service::blocking;
use crate::service::notifier::Notifier;
use crate::service::users::Session;
use crate::store::to_device::{Outgoing, ToDeviceStore};

/// Most messages handed to one sync. The ack deletes only what was delivered (by position),
/// so the rest waits for the next sync.
const MAX_PER_SYNC: usize = 100;

pub struct ToDeviceService {
    server_name: OwnedServerName,
    store: Arc<dyn ToDeviceStore>,
    notifier: Arc<Notifier>,
}

/// What a sync delivers: the events, and the highest position among them (the ack bound).
pub struct Delivery {
    pub events: Vec<Raw<AnyToDeviceEvent>>,
    pub last_pos: Option<i64>,
    /// More messages are queued than one sync carries.
    pub more: bool,
}

impl ToDeviceService {
    pub fn new(
        server_name: OwnedServerName,
        store: Arc<dyn ToDeviceStore>,
        notifier: Arc<Notifier>,
    ) -> Self {
        Self {
            server_name,
            store,
            notifier,
        }
    }

    /// PUT /sendToDevice: idempotent per sending device and txn id.
    pub async fn send(
        &self,
        session: &Session,
        event_type: &str,
        txn_id: &str,
        messages: &Messages,
    ) -> Result<()> {
        let mut outgoing: Vec<Outgoing> = Vec::new();
        let mut recipients: Vec<OwnedUserId> = Vec::new();
        for (user, devices) in messages {
            if user.server_name() != self.server_name {
                // Federation seam: EDUs to other servers are not sent yet.
                tracing::warn!(%user, "to-device message for a remote user dropped");
                continue;
            }
            recipients.push(user.clone());
            for (device, content) in devices {
                let device = match device {
                    DeviceIdOrAllDevices::DeviceId(d) => Some(d.to_string()),
                    DeviceIdOrAllDevices::AllDevices => None,
                };
                outgoing.push((user.to_string(), device, content.json().get().to_owned()));
            }
        }
        let store = self.store.clone();
        let (s, d, t, ty) = (
            session.user_id.to_string(),
            session.device_id.to_string(),
            txn_id.to_owned(),
            event_type.to_owned(),
        );
        let queued =
            blocking(move || Ok(store.queue_to_device(&s, &d, &t, &ty, outgoing)?)).await?;
        if queued.is_some() {
            self.notifier.notify(recipients.iter().map(|u| &**u));
        }
        Ok(())
    }

    /// Acknowledges what the device received before `since` (deletes it), then returns what
    /// is pending up to `upto`. For /sync and a Sliding Sync `to_device` extension.
    pub async fn deliver(
        &self,
        user_id: &UserId,
        device_id: &DeviceId,
        since: Option<i64>,
        upto: i64,
    ) -> Result<Delivery> {
        let store = self.store.clone();
        let (u, d) = (user_id.to_string(), device_id.to_string());
        let rows = blocking(move || {
            if let Some(since) = since {
                store.ack_to_device(&u, &d, since)?;
            }
            Ok(store.to_device_for(&u, &d, upto, MAX_PER_SYNC + 1)?)
        })
        .await?;
        let more = rows.len() > MAX_PER_SYNC;
        let rows = &rows[..rows.len().min(MAX_PER_SYNC)];
        let events = rows
            .iter()
            .map(|r| {
                let content: serde_json::Value =
                    serde_json::from_str(&r.content).map_err(Error::internal)?;
                let ev = json!({ "sender": r.sender, "type": r.event_type, "content": content });
                Raw::new(&ev)
                    .map(Raw::cast_unchecked)
                    .map_err(Error::internal)
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Delivery {
            events,
            last_pos: rows.last().map(|r| r.pos),
            more,
        })
    }
}
