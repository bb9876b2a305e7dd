//! Inbound EDUs: what another server's `/send` transaction tells us besides PDUs. The
//! transaction handler calls `EduService::handle` once per transaction, after the PDUs.
//!
//! Rules, for every EDU: the user it is about (or the sender) must belong to the origin server,
//! or the EDU is dropped (a server speaks only for its own users). A malformed EDU is ignored
//! with a debug log; nothing here fails the transaction.
//! - `m.typing`, `m.receipt`: only for rooms where the user is joined per the room's current
//!   state and whose `m.room.server_acl` admits the origin; receipts only for events we have.
//! - `m.presence`: kept for users in a room with us.
//! - `m.device_list_update`, `m.signing_key_update`: the user's cached device list is dropped
//!   and local room-mates see them in `device_lists.changed` (once per user per transaction).
//! - `m.direct_to_device`: queued for local recipients' devices, once per message id.

use std::collections::BTreeSet;
use std::sync::Arc;

use ruma::api::federation::transactions::edu::{
    DirectDeviceContent, Edu, PresenceContent, ReceiptContent, TypingContent,
};
use ruma::serde::Raw;
use ruma::{OwnedUserId, RoomId, ServerName, UserId};

use crate::service::e2ee::KeyService;
use crate::service::e2ee::to_device::ToDeviceService;
use crate::service::ephemeral::presence::PresenceService;
use crate::service::ephemeral::receipts::ReceiptService;
use crate::service::ephemeral::typing::TypingService;
use crate::service::rooms::RoomService;

const LOG: &str = "handover::federation";

pub struct EduService {
    rooms: Arc<RoomService>,
    typing: Arc<TypingService>,
    receipts: Arc<ReceiptService>,
    presence: Arc<PresenceService>,
    keys: Arc<KeyService>,
    to_device: Arc<ToDeviceService>,
}

/// What `EduService` is built with.
pub struct EduDeps {
    pub rooms: Arc<RoomService>,
    pub typing: Arc<TypingService>,
    pub receipts: Arc<ReceiptService>,
    pub presence: Arc<PresenceService>,
    pub keys: Arc<KeyService>,
    pub to_device: Arc<ToDeviceService>,
}

/// Whether `user` belongs to `origin`; logs the spoofing attempt if not.
fn from_origin(origin: &ServerName, user: &UserId, edu: &str) -> bool {
    let ok = user.server_name() == origin;
    if !ok {
        tracing::info!(target: LOG, %origin, %user, edu, "EDU about another server's user dropped");
    }
    ok
}

impl EduService {
    pub fn new(d: EduDeps) -> Self {
        Self {
            rooms: d.rooms,
            typing: d.typing,
            receipts: d.receipts,
            presence: d.presence,
            keys: d.keys,
            to_device: d.to_device,
        }
    }

    /// Handles a transaction's EDUs, in order. Never fails.
    pub async fn handle(&self, origin: &ServerName, edus: Vec<Raw<Edu>>) {
        let mut keys_changed: BTreeSet<OwnedUserId> = BTreeSet::new();
        for raw in edus {
            let edu = match raw.deserialize() {
                Ok(edu) => edu,
                Err(e) => {
                    // The content may be a message: log the error only.
                    tracing::debug!(target: LOG, %origin, error = %e, "malformed EDU ignored");
                    continue;
                }
            };
            match edu {
                Edu::Typing(t) => self.typing(origin, t).await,
                Edu::Receipt(r) => self.receipts(origin, r).await,
                Edu::Presence(p) => self.presence(origin, p).await,
                Edu::DeviceListUpdate(u) => {
                    if from_origin(origin, &u.user_id, "m.device_list_update") {
                        keys_changed.insert(u.user_id);
                    }
                }
                Edu::SigningKeyUpdate(u) => {
                    if from_origin(origin, &u.user_id, "m.signing_key_update") {
                        keys_changed.insert(u.user_id);
                    }
                }
                Edu::DirectToDevice(d) => self.to_device(origin, d).await,
                _ => tracing::debug!(target: LOG, %origin, "EDU of an unknown type ignored"),
            }
        }
        for user in keys_changed {
            if let Err(e) = self.keys.remote_keys_changed(&user).await {
                tracing::warn!(target: LOG, %origin, %user, error = ?e, "device list change not recorded");
            }
        }
    }

    /// Whether the user is joined to the room per its current state (`false` for a room we do
    /// not know) and the room's server ACL admits the origin: a server banned from a room
    /// must not reach its members through typing or receipts either.
    async fn joined(&self, origin: &ServerName, room_id: &RoomId, user: &UserId) -> bool {
        let joined = match self.rooms.current_state(room_id).await {
            Ok(state) => state.membership_of(user).as_deref() == Some("join"),
            Err(_) => false,
        };
        if joined && self.rooms.check_acl(room_id, origin).await.is_err() {
            tracing::info!(target: LOG, %origin, room = %room_id, "EDU from a server denied by the room's ACL dropped");
            return false;
        }
        joined
    }

    async fn typing(&self, origin: &ServerName, t: TypingContent) {
        if !from_origin(origin, &t.user_id, "m.typing") {
            return;
        }
        if !self.joined(origin, &t.room_id, &t.user_id).await {
            tracing::debug!(target: LOG, %origin, room = %t.room_id, "typing of a non-member ignored");
            return;
        }
        if let Err(e) = self
            .typing
            .set_remote(&t.room_id, &t.user_id, t.typing)
            .await
        {
            tracing::debug!(target: LOG, %origin, error = ?e, "typing not recorded");
        }
    }

    async fn receipts(&self, origin: &ServerName, r: ReceiptContent) {
        for (room_id, map) in r.receipts {
            for (user, data) in map.read {
                if !from_origin(origin, &user, "m.receipt")
                    || !self.joined(origin, &room_id, &user).await
                {
                    continue;
                }
                let ts = data.data.ts.map_or_else(crate::store::now_ms, |t| {
                    i64::try_from(u64::from(t.0)).unwrap_or(i64::MAX)
                });
                let thread = data.data.thread.as_str().unwrap_or_default().to_owned();
                for event_id in &data.event_ids {
                    if let Err(e) = self
                        .receipts
                        .set_remote(&room_id, &user, event_id, &thread, ts)
                        .await
                    {
                        tracing::debug!(target: LOG, %origin, room = %room_id, error = ?e, "receipt not recorded");
                    }
                }
            }
        }
    }

    async fn presence(&self, origin: &ServerName, p: PresenceContent) {
        for u in p.push {
            if !from_origin(origin, &u.user_id, "m.presence") {
                continue;
            }
            if let Err(e) = self
                .presence
                .set_remote(
                    &u.user_id,
                    u.presence,
                    u.status_msg,
                    u64::from(u.last_active_ago),
                )
                .await
            {
                tracing::debug!(target: LOG, %origin, error = ?e, "presence not recorded");
            }
        }
    }

    async fn to_device(&self, origin: &ServerName, d: DirectDeviceContent) {
        if !from_origin(origin, &d.sender, "m.direct_to_device") {
            return;
        }
        if let Err(e) = self
            .to_device
            .receive_remote(
                origin,
                &d.sender,
                &d.ev_type.to_string(),
                d.message_id.as_str(),
                &d.messages,
            )
            .await
        {
            tracing::warn!(target: LOG, %origin, error = ?e, "to-device messages not queued");
        }
    }
}

#[cfg(test)]
#[path = "edu_tests.rs"]
mod tests;
