//! Sliding-sync extensions. Served: account_data (global, and per room for the rooms the lists
//! and subscriptions cover), receipts and typing (same rooms). A room sent for the first time on
//! this connection gets its full account data and receipts; other rooms what changed since.
//!
//! PENDING (E2EE work on another branch): `to_device` and `e2ee` go through the two seam
//! functions at the bottom, which answer empty until the E2EE service lands.

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
            out.to_device = Some(to_device(
                scope.user,
                scope.device,
                req.to_device.since.as_deref(),
                req.to_device.limit,
            ));
        }
        if req.e2ee.enabled == Some(true) {
            out.e2ee = e2ee(scope.user, scope.device, scope.since, scope.upto);
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
// E2EE seam. These two functions are the only places to change when the E2EE service lands.
// ---------------------------------------------------------------------------------------------

/// PENDING: to-device messages for this device. Today: no messages; `next_batch` echoes the
/// client's `since` (or "0") so its cursor never moves backwards.
///
/// Once the E2EE service exists this must: delete the device's messages up to `since` (the
/// client has them), then read up to `limit` (default 100) messages queued for
/// `(user, device)` after `since`, and return them with `next_batch` = the position of the last
/// one returned (or `since` if none).
fn to_device(
    _user: &UserId,
    _device: &DeviceId,
    since: Option<&str>,
    _limit: Option<ruma::UInt>,
) -> response::ToDevice {
    let mut t = response::ToDevice::default();
    t.next_batch = since.unwrap_or("0").to_owned();
    t
}

/// PENDING: the e2ee extension. Today: empty (no device-list changes, an empty one-time-key
/// count map, fallback key types left out).
///
/// Once the E2EE service exists this must return: `device_lists.changed` / `.left` (users
/// sharing a room with `user` whose device keys changed in `(since, upto]`, and users no longer
/// sharing any room), `device_one_time_keys_count` (unclaimed OTKs per algorithm for
/// `(user, device)`), and `device_unused_fallback_key_types` (Some, listing the algorithms of
/// the device's unused fallback keys).
fn e2ee(_user: &UserId, _device: &DeviceId, _since: i64, _upto: i64) -> response::E2EE {
    let mut e = response::E2EE::default();
    e.device_one_time_keys_count = BTreeMap::new();
    e
}
