//! Sliding-sync extensions. Served: account_data (global, and per room for the rooms the lists
//! and subscriptions cover), receipts and typing (same rooms). A room sent for the first time on
//! this connection gets its full account data and receipts; other rooms what changed since.
//!
//! to_device: the device's queued messages after the client's `since` (which acknowledges,
//! i.e. deletes, everything up to it). e2ee: device-list changes, one-time-key counts and unused
//! fallback key types, as in /sync v3.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use ruma::api::client::sync::sync_events::v5::request;
use ruma::api::client::sync::sync_events::v5::response::{self, Extensions};
use ruma::{DeviceId, OwnedRoomId, UserId};
use serde_json::json;

use super::SlidingSyncService;
use super::lists::Selection;
use crate::error::Result;
use crate::service::rooms::format::to_raw;

/// What the extensions need to know about this response.
pub(super) struct ExtensionScope<'a> {
    pub user: &'a UserId,
    pub device: &'a DeviceId,
    /// The connection's previous position (0 on a new connection).
    pub since: i64,
    pub upto: i64,
    pub selection: &'a Selection,
    /// Rooms the user is joined to (receipts and typing are for members only).
    pub joined: HashSet<&'a OwnedRoomId>,
    /// Rooms sent as `initial` in this response: their data is sent whole.
    pub initial: &'a HashSet<OwnedRoomId>,
}

impl ExtensionScope<'_> {
    fn since_for(&self, room: &OwnedRoomId) -> i64 {
        if self.initial.contains(room) {
            0
        } else {
            self.since
        }
    }

    fn rooms(
        &self,
        lists: Option<&[String]>,
        rooms: Option<&[request::ExtensionRoomConfig]>,
    ) -> BTreeSet<OwnedRoomId> {
        self.selection.rooms_for(lists, rooms, &self.joined)
    }
}

impl SlidingSyncService {
    pub(super) async fn extensions(
        &self,
        req: &request::Extensions,
        scope: &ExtensionScope<'_>,
    ) -> Result<Extensions> {
        let mut out = Extensions::default();
        if req.account_data.enabled == Some(true) {
            let a = &req.account_data;
            let rooms = scope.rooms(a.lists.as_deref(), a.rooms.as_deref());
            out.account_data = self.account_data_ext(scope, &rooms).await?;
        }
        if req.receipts.enabled == Some(true) {
            let r = &req.receipts;
            for room in scope.rooms(r.lists.as_deref(), r.rooms.as_deref()) {
                if !scope.joined.contains(&room) {
                    continue;
                }
                let since = scope.since_for(&room);
                if let Some(ev) = self
                    .receipts
                    .receipt_event(&room, scope.user, since, scope.upto)
                    .await?
                {
                    out.receipts.rooms.insert(room, to_raw(&ev));
                }
            }
        }
        if req.typing.enabled == Some(true) {
            let t = &req.typing;
            for room in scope.rooms(t.lists.as_deref(), t.rooms.as_deref()) {
                if !scope.joined.contains(&room) {
                    continue;
                }
                if let Some(users) = self.typing.typing_since(&room, scope.since_for(&room)) {
                    let ev = json!({ "type": "m.typing", "content": { "user_ids": users } });
                    out.typing.rooms.insert(room, to_raw(&ev));
                }
            }
        }
        if req.to_device.enabled == Some(true) {
            out.to_device = Some(
                self.to_device_ext(scope, req.to_device.since.as_deref())
                    .await?,
            );
        }
        if req.e2ee.enabled == Some(true) {
            out.e2ee = self.e2ee_ext(scope).await?;
        }
        Ok(out)
    }

    async fn account_data_ext(
        &self,
        scope: &ExtensionScope<'_>,
        rooms: &BTreeSet<OwnedRoomId>,
    ) -> Result<response::AccountData> {
        let mut changes = self
            .account_data
            .changes_since(scope.user, scope.since, scope.upto)
            .await?;
        // Rooms new to the client get all their account data (tags), not just recent changes.
        let mut whole = if rooms.iter().any(|r| scope.initial.contains(r)) && scope.since > 0 {
            self.account_data
                .changes_since(scope.user, 0, scope.upto)
                .await?
                .rooms
        } else {
            BTreeMap::new()
        };
        let mut out = response::AccountData::default();
        out.global = changes.global;
        for room in rooms {
            let events = if scope.initial.contains(room) {
                whole.remove(room).or_else(|| changes.rooms.remove(room))
            } else {
                changes.rooms.remove(room)
            };
            if let Some(events) = events.filter(|e| !e.is_empty()) {
                out.rooms.insert(room.clone(), events);
            }
        }
        Ok(out)
    }
}

// ---------------------------------------------------------------------------------------------
// E2EE: to-device messages and key counts / device-list changes, from the E2EE services.
// ---------------------------------------------------------------------------------------------

impl SlidingSyncService {
    /// Queued to-device messages after the client's token; the token acknowledges (deletes)
    /// what it covers. `next_batch` never passes a message not yet delivered.
    async fn to_device_ext(
        &self,
        scope: &ExtensionScope<'_>,
        since: Option<&str>,
    ) -> Result<response::ToDevice> {
        let since = since.and_then(crate::service::filter::parse_token);
        let d = self
            .to_device
            .deliver(scope.user, scope.device, since, scope.upto)
            .await?;
        let mut t = response::ToDevice::default();
        let next = match d.last_pos {
            Some(last) if d.more => last,
            _ => scope.upto,
        };
        t.next_batch = next.to_string();
        t.events = d.events;
        Ok(t)
    }

    /// Key counts are always present; device-list changes only after the first request.
    async fn e2ee_ext(&self, scope: &ExtensionScope<'_>) -> Result<response::E2EE> {
        let mut e = response::E2EE::default();
        e.device_one_time_keys_count = self
            .keys
            .one_time_key_counts(scope.user, scope.device)
            .await?;
        e.device_unused_fallback_key_types = Some(
            self.keys
                .unused_fallback_key_types(scope.user, scope.device)
                .await?,
        );
        if scope.since > 0 {
            let changes = self
                .keys
                .device_list_changes(scope.user, scope.since, scope.upto)
                .await?;
            e.device_lists.changed = changes.changed;
            e.device_lists.left = changes.left;
        }
        Ok(e)
    }
}
