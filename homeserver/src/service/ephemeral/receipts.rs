//! Read receipts (m.read, m.read.private) and the fully-read marker.

use std::collections::BTreeMap;
use std::sync::Arc;

use ruma::{EventId, MilliSecondsSinceUnixEpoch, OwnedUserId, RoomId, UInt, UserId};
use serde_json::{Value, json};

use crate::error::{Error, Result};
use crate::service::appservice::ephemeral::EphemeralBuffer;
use crate::service::blocking;
use crate::service::notifier::Notifier;
use crate::service::peer::fanout::EduFanout;
use crate::service::rooms::RoomService;
use crate::store::StoreError;
use crate::store::now_ms;
use crate::store::receipts::ReceiptStore;

pub struct ReceiptService {
    store: Arc<dyn ReceiptStore>,
    rooms: Arc<RoomService>,
    notifier: Arc<Notifier>,
    /// Public receipts of local users go to the room's other servers.
    fanout: Arc<EduFanout>,
    /// Appservices that asked for ephemeral events.
    appservices: Arc<EphemeralBuffer>,
}

impl ReceiptService {
    pub fn new(
        store: Arc<dyn ReceiptStore>,
        rooms: Arc<RoomService>,
        notifier: Arc<Notifier>,
        fanout: Arc<EduFanout>,
        appservices: Arc<EphemeralBuffer>,
    ) -> Self {
        Self {
            store,
            rooms,
            notifier,
            fanout,
            appservices,
        }
    }

    /// Records a local user's receipt. `m.read.private` is shown only to its owner; a public
    /// `m.read` also goes to the room's other servers.
    pub async fn set(
        &self,
        room_id: &RoomId,
        user: &UserId,
        receipt_type: &str,
        event_id: &EventId,
        thread_id: Option<&str>,
    ) -> Result<()> {
        if !matches!(receipt_type, "m.read" | "m.read.private") {
            return Err(Error::invalid_param(format!(
                "Unknown receipt type {receipt_type}"
            )));
        }
        self.rooms.require_joined(room_id, user).await?;
        let thread = thread_id.unwrap_or("");
        let ts = now_ms();
        let changed = self
            .record(room_id, user, receipt_type, event_id, thread, ts)
            .await?;
        if changed && receipt_type == "m.read" {
            let ts = MilliSecondsSinceUnixEpoch(UInt::new_saturating(ts.max(0) as u64));
            self.fanout
                .read_receipt(room_id, user, event_id, thread, ts)
                .await;
        }
        Ok(())
    }

    /// A public read receipt from another server (`m.receipt`). The caller has checked that
    /// the user belongs to the sending server and is joined to the room. Not sent on to
    /// anyone. An event we do not have is `M_NOT_FOUND`.
    pub async fn set_remote(
        &self,
        room_id: &RoomId,
        user: &UserId,
        event_id: &EventId,
        thread_id: &str,
        ts: i64,
    ) -> Result<()> {
        self.record(room_id, user, "m.read", event_id, thread_id, ts)
            .await
            .map(|_| ())
    }

    /// Stores the receipt and wakes whoever may see it; whether anything changed.
    async fn record(
        &self,
        room_id: &RoomId,
        user: &UserId,
        receipt_type: &str,
        event_id: &EventId,
        thread: &str,
        ts: i64,
    ) -> Result<bool> {
        let store = self.store.clone();
        let (r, u, t, e) = (
            room_id.to_owned(),
            user.to_owned(),
            receipt_type.to_owned(),
            event_id.to_owned(),
        );
        let th = thread.to_owned();
        let changed = blocking(move || {
            match store.set_receipt(r.as_str(), &t, u.as_str(), &th, e.as_str(), ts) {
                Err(StoreError::Conflict(_)) => {
                    Err(Error::not_found("Event not found in this room"))
                }
                other => Ok(other?),
            }
        })
        .await?;
        if changed.is_some() {
            let targets: Vec<OwnedUserId> = if receipt_type == "m.read.private" {
                vec![user.to_owned()]
            } else {
                self.rooms.current_state(room_id).await?.interested_users()
            };
            self.notifier.notify(targets.iter().map(|u| &**u));
            if receipt_type == "m.read" {
                let mut receipt = json!({ "ts": ts });
                if !thread.is_empty() {
                    receipt["thread_id"] = json!(thread);
                }
                let event = json!({
                    "type": "m.receipt",
                    "room_id": room_id,
                    "content": { event_id.as_str(): { "m.read": { user.as_str(): receipt } } },
                });
                let targets = targets.iter().map(|u| &**u).collect();
                self.appservices.offer(room_id, user, targets, event);
            }
        }
        Ok(changed.is_some())
    }

    /// The `m.receipt` ephemeral event for receipts changed in `(since, upto]`, as `viewer` may
    /// see them; `None` if there are none.
    pub async fn receipt_event(
        &self,
        room_id: &RoomId,
        viewer: &UserId,
        since: i64,
        upto: i64,
    ) -> Result<Option<Value>> {
        let store = self.store.clone();
        let r = room_id.to_owned();
        let rows = blocking(move || Ok(store.receipts_since(r.as_str(), since, upto)?)).await?;
        let mut content: BTreeMap<String, BTreeMap<String, BTreeMap<String, Value>>> =
            BTreeMap::new();
        for row in rows {
            if row.receipt_type == "m.read.private" && row.user_id != viewer {
                continue;
            }
            let mut receipt = json!({ "ts": row.ts });
            if !row.thread_id.is_empty() {
                receipt["thread_id"] = row.thread_id.clone().into();
            }
            content
                .entry(row.event_id.to_string())
                .or_default()
                .entry(row.receipt_type)
                .or_default()
                .insert(row.user_id.to_string(), receipt);
        }
        Ok((!content.is_empty()).then(|| json!({ "type": "m.receipt", "content": content })))
    }

    /// Stream position up to which the user has read the room.
    pub async fn read_up_to(&self, room_id: &RoomId, user: &UserId) -> Result<Option<i64>> {
        let store = self.store.clone();
        let (r, u) = (room_id.to_owned(), user.to_owned());
        blocking(move || Ok(store.read_up_to(r.as_str(), u.as_str())?)).await
    }
}
