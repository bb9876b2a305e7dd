//! Who gets which outbound EDU. Local changes that other servers must hear about are built into
//! EDUs here and handed to the outbox (`EduSink`), one per destination:
//! - typing and public read receipts: the room's other joined servers;
//! - presence, device list and cross-signing key changes: every other server sharing a room with
//!   the user;
//! - to-device messages: the recipient's server.
//!
//! Nothing here fails the local operation that triggered it: an EDU that cannot be built or
//! addressed is logged and dropped (the outbox owns delivery and retries).

use std::collections::BTreeSet;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, RwLock};

use ruma::api::federation::transactions::edu::{
    DeviceListUpdateContent, DirectDeviceContent, DirectDeviceMessages, Edu, PresenceContent,
    PresenceUpdate, ReceiptContent, ReceiptData, ReceiptMap, SigningKeyUpdateContent,
    TypingContent,
};
use ruma::events::ToDeviceEventType;
use ruma::events::receipt::{Receipt, ReceiptThread};
use ruma::serde::Raw;
use ruma::{
    EventId, MilliSecondsSinceUnixEpoch, OwnedServerName, RoomId, ServerName, TransactionId, UInt,
    UserId,
};

use crate::error::Result;
use crate::service::ephemeral::presence::PresenceView;
use crate::service::federation::outbox::Outbox;
use crate::service::rooms::RoomService;

/// Where outbound EDUs go: the outbox in the server, a recorder in tests.
pub trait EduSink: Send + Sync {
    fn send_edu(
        &self,
        destination: OwnedServerName,
        edu: Raw<Edu>,
    ) -> Pin<Box<dyn Future<Output = ()> + Send + '_>>;
}

impl EduSink for Outbox {
    fn send_edu(
        &self,
        destination: OwnedServerName,
        edu: Raw<Edu>,
    ) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        Box::pin(Outbox::send_edu(self, destination, edu))
    }
}

pub struct EduFanout {
    server_name: OwnedServerName,
    /// Swappable only so tests can record what is sent.
    sink: RwLock<Arc<dyn EduSink>>,
    rooms: Arc<RoomService>,
}

impl EduFanout {
    pub fn new(
        server_name: OwnedServerName,
        sink: Arc<dyn EduSink>,
        rooms: Arc<RoomService>,
    ) -> Self {
        Self {
            server_name,
            sink: RwLock::new(sink),
            rooms,
        }
    }

    /// Replaces the outbox with a recorder (tests of who gets what).
    #[cfg(test)]
    pub fn set_sink(&self, sink: Arc<dyn EduSink>) {
        *self.sink.write().unwrap() = sink;
    }

    /// The other servers with a member joined to the room, if on the federation list.
    async fn room_servers(&self, room_id: &RoomId) -> Result<Vec<OwnedServerName>> {
        let state = self.rooms.current_state(room_id).await?;
        let others = state
            .joined_servers()
            .into_iter()
            .filter(|s| *s != self.server_name)
            .collect();
        Ok(self.rooms.listed_servers(room_id, others).await)
    }

    /// The other servers sharing at least one joined room with `user`.
    pub async fn servers_sharing_rooms(&self, user: &UserId) -> Result<Vec<OwnedServerName>> {
        let mut out = BTreeSet::new();
        for room in self.rooms.joined_rooms(user).await? {
            out.extend(self.room_servers(&room).await?);
        }
        Ok(out.into_iter().collect())
    }

    async fn send(&self, what: &str, destinations: Vec<OwnedServerName>, edu: &Edu) {
        let raw = match Raw::new(edu) {
            Ok(raw) => raw,
            Err(e) => {
                tracing::warn!(target: "handover::federation", edu = what, error = %e, "EDU not serialisable; dropped");
                return;
            }
        };
        let sink = self
            .sink
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        for dest in destinations {
            sink.send_edu(dest, raw.clone()).await;
        }
    }

    /// Sends `edu` to the servers `destinations` resolves to; a lookup failure is logged.
    async fn send_to(
        &self,
        what: &str,
        destinations: Result<Vec<OwnedServerName>>,
        edu: impl FnOnce() -> Edu,
    ) {
        match destinations {
            Ok(d) if d.is_empty() => {}
            Ok(d) => self.send(what, d, &edu()).await,
            Err(e) => {
                tracing::warn!(target: "handover::federation", edu = what, error = ?e, "EDU destinations unknown; dropped")
            }
        }
    }

    /// `m.typing` for a local user, to the room's other servers.
    pub async fn typing(&self, room_id: &RoomId, user: &UserId, typing: bool) {
        let dest = self.room_servers(room_id).await;
        self.send_to("m.typing", dest, || {
            Edu::Typing(TypingContent::new(
                room_id.to_owned(),
                user.to_owned(),
                typing,
            ))
        })
        .await;
    }

    /// `m.receipt` (public `m.read` only) for a local user, to the room's other servers.
    /// `thread_id` is as stored: empty for an unthreaded receipt.
    pub async fn read_receipt(
        &self,
        room_id: &RoomId,
        user: &UserId,
        event_id: &EventId,
        thread_id: &str,
        ts: MilliSecondsSinceUnixEpoch,
    ) {
        let dest = self.room_servers(room_id).await;
        self.send_to("m.receipt", dest, || {
            let mut receipt = Receipt::new(ts);
            receipt.thread = ReceiptThread::try_from((!thread_id.is_empty()).then_some(thread_id))
                .unwrap_or_default();
            let data = ReceiptData::new(receipt, vec![event_id.to_owned()]);
            let map = ReceiptMap::new([(user.to_owned(), data)].into());
            Edu::Receipt(ReceiptContent::new([(room_id.to_owned(), map)].into()))
        })
        .await;
    }

    /// `m.presence` for a local user, to every other server sharing a room with them.
    pub async fn presence(&self, user: &UserId, view: &PresenceView) {
        let dest = self.servers_sharing_rooms(user).await;
        self.send_to("m.presence", dest, || {
            let ago = UInt::new_saturating(view.last_active_ago_ms.unwrap_or(0));
            let mut update = PresenceUpdate::new(user.to_owned(), view.state.clone(), ago);
            update.status_msg = view.status_msg.clone();
            update.currently_active = view.currently_active;
            Edu::Presence(PresenceContent::new(vec![update]))
        })
        .await;
    }

    /// One `m.device_list_update` per changed device of a local user, to every other server
    /// sharing a room with them.
    pub async fn device_list_updates(&self, user: &UserId, updates: Vec<DeviceListUpdateContent>) {
        if updates.is_empty() {
            return;
        }
        match self.servers_sharing_rooms(user).await {
            Ok(dest) if dest.is_empty() => {}
            Ok(dest) => {
                for u in updates {
                    self.send(
                        "m.device_list_update",
                        dest.clone(),
                        &Edu::DeviceListUpdate(u),
                    )
                    .await;
                }
            }
            Err(e) => {
                tracing::warn!(target: "handover::federation", error = ?e, "device list update destinations unknown; dropped")
            }
        }
    }

    /// `m.signing_key_update` for a local user, to every other server sharing a room with them.
    pub async fn signing_key_update(&self, content: SigningKeyUpdateContent) {
        let dest = self.servers_sharing_rooms(&content.user_id).await;
        self.send_to("m.signing_key_update", dest, || {
            Edu::SigningKeyUpdate(content)
        })
        .await;
    }

    /// `m.direct_to_device` from a local sender to the users of one other server.
    pub async fn to_device(
        &self,
        destination: &ServerName,
        sender: &UserId,
        event_type: &str,
        messages: DirectDeviceMessages,
    ) {
        if destination == self.server_name || messages.is_empty() {
            return;
        }
        let mut content = DirectDeviceContent::new(
            sender.to_owned(),
            ToDeviceEventType::from(event_type),
            TransactionId::new(),
        );
        content.messages = messages;
        self.send(
            "m.direct_to_device",
            vec![destination.to_owned()],
            &Edu::DirectToDevice(content),
        )
        .await;
    }
}

/// A sink that records what would be sent, for tests of who gets what.
#[cfg(test)]
#[derive(Default)]
pub struct RecordingSink(pub std::sync::Mutex<Vec<(OwnedServerName, serde_json::Value)>>);

#[cfg(test)]
impl RecordingSink {
    /// `(destination, edu_type, content)` of everything sent so far, in order.
    pub fn sent(&self) -> Vec<(String, String, serde_json::Value)> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .map(|(d, v)| {
                (
                    d.to_string(),
                    v["edu_type"].as_str().unwrap_or_default().to_owned(),
                    v["content"].clone(),
                )
            })
            .collect()
    }

    pub fn clear(&self) {
        self.0.lock().unwrap().clear();
    }
}

#[cfg(test)]
impl EduSink for RecordingSink {
    fn send_edu(
        &self,
        destination: OwnedServerName,
        edu: Raw<Edu>,
    ) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        let v: serde_json::Value = serde_json::from_str(edu.json().get()).unwrap();
        self.0.lock().unwrap().push((destination, v));
        Box::pin(async {})
    }
}

#[cfg(test)]
#[path = "fanout_tests.rs"]
mod tests;
