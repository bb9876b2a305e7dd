//! Send-to-device messaging: queued per recipient device at a stream position, delivered in
//! /sync `to_device.events`, deleted once the device syncs with a `since` past them.
//! Messages for users of other servers leave as one `m.direct_to_device` EDU per server;
//! messages from other servers arrive the same way (`receive_remote`) and are queued once per
//! `(origin, message_id)`.

use std::collections::BTreeMap;
use std::sync::Arc;

use ruma::api::client::to_device::send_event_to_device::v3::Messages;
use ruma::api::federation::transactions::edu::DirectDeviceMessages;
use ruma::events::AnyToDeviceEvent;
use ruma::serde::Raw;
use ruma::to_device::DeviceIdOrAllDevices;
use ruma::{DeviceId, OwnedServerName, OwnedUserId, ServerName, UserId};
use serde_json::json;

use crate::error::{Error, Result};
use crate::service::blocking;
use crate::service::notifier::Notifier;
use crate::service::peer::fanout::EduFanout;
use crate::service::users::Session;
use crate::store::now_ms;
use crate::store::remote_e2ee::RemoteE2eeStore;
use crate::store::to_device::{Outgoing, ToDeviceStore};

/// The rows to queue for local recipients, and who they are.
fn outgoing_of(messages: &Messages) -> (Vec<Outgoing>, Vec<OwnedUserId>) {
    let mut outgoing = Vec::new();
    for (user, devices) in messages {
        for (device, content) in devices {
            let device = match device {
                DeviceIdOrAllDevices::DeviceId(d) => Some(d.to_string()),
                DeviceIdOrAllDevices::AllDevices => None,
            };
            outgoing.push((user.to_string(), device, content.json().get().to_owned()));
        }
    }
    (outgoing, messages.keys().cloned().collect())
}

/// Most messages handed to one sync. The ack deletes only what was delivered (by position),
/// so the rest waits for the next sync.
const MAX_PER_SYNC: usize = 100;

/// How long an inbound `message_id` is remembered (a transaction is retried for far less).
const REMOTE_ID_MEMORY_MS: i64 = 7 * 24 * 3600 * 1000;

pub struct ToDeviceService {
    server_name: OwnedServerName,
    store: Arc<dyn ToDeviceStore>,
    notifier: Arc<Notifier>,
    /// Inbound dedupe by message id.
    remote: Arc<dyn RemoteE2eeStore>,
    /// Messages for remote users.
    fanout: Arc<EduFanout>,
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
        remote: Arc<dyn RemoteE2eeStore>,
        fanout: Arc<EduFanout>,
    ) -> Self {
        Self {
            server_name,
            store,
            notifier,
            remote,
            fanout,
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
        // Local recipients are queued here; the others' messages go to their servers.
        let mut local = Messages::new();
        let mut remote: BTreeMap<OwnedServerName, DirectDeviceMessages> = BTreeMap::new();
        for (user, devices) in messages {
            let to = if user.server_name() == self.server_name {
                &mut local
            } else {
                remote.entry(user.server_name().to_owned()).or_default()
            };
            to.insert(user.clone(), devices.clone());
        }
        let (outgoing, recipients) = outgoing_of(&local);
        let store = self.store.clone();
        let (s, d, t, ty) = (
            session.user_id.to_string(),
            session.device_id.to_string(),
            txn_id.to_owned(),
            event_type.to_owned(),
        );
        // The transaction is recorded even with no local recipient: a retry sends nothing twice.
        let queued =
            blocking(move || Ok(store.queue_to_device(&s, &d, &t, &ty, outgoing)?)).await?;
        if queued.is_some() {
            self.notifier.notify(recipients.iter().map(|u| &**u));
            for (server, msgs) in remote {
                (self.fanout)
                    .to_device(&server, &session.user_id, event_type, msgs)
                    .await;
            }
        }
        Ok(())
    }

    /// An `m.direct_to_device` from `origin`: queued for the local recipients' devices, once per
    /// `(origin, message_id)`. The caller has checked that the sender belongs to `origin`.
    pub async fn receive_remote(
        &self,
        origin: &ServerName,
        sender: &UserId,
        event_type: &str,
        message_id: &str,
        messages: &Messages,
    ) -> Result<()> {
        let local: Messages = messages
            .iter()
            .filter(|(u, _)| u.server_name() == self.server_name)
            .map(|(u, d)| (u.clone(), d.clone()))
            .collect();
        if local.is_empty() {
            return Ok(());
        }
        let (outgoing, recipients) = outgoing_of(&local);
        let store = self.remote.clone();
        let (o, m, s, ty) = (
            origin.to_string(),
            message_id.to_owned(),
            sender.to_string(),
            event_type.to_owned(),
        );
        let now = now_ms();
        let queued = blocking(move || {
            Ok(store.queue_remote_to_device(
                &o,
                &m,
                &s,
                &ty,
                outgoing,
                now,
                now - REMOTE_ID_MEMORY_MS,
            )?)
        })
        .await?;
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
