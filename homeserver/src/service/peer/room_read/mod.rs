//! Serving a room's events to other servers: /event, /state, /state_ids, /event_auth,
//! /backfill, /get_missing_events and /timestamp_to_event.
//!
//! Who may ask (every call): the room must be known here (else 404), the requesting server
//! must not be denied by the room's `m.room.server_acl`, and it must have a joined member in the
//! room's current state unless the room is `world_readable` (else 403). The origin itself was
//! already X-Matrix verified and checked against the federation list by the extractor.
//!
//! What it sees: each event is judged by the server's history visibility at that event
//! (`visibility.rs`); an event it may not see is served in its redacted form, as is any event
//! whose redaction was accepted. The state (and auth chain) at an event the server may see is
//! served whole: its users could see that state along with the event. At an event it may not
//! see, each state and auth-chain event is judged by itself. PDUs are served as stored (the
//! signed federation JSON), without any `unsigned` data. Events purged by retention are gone
//! from the store and so answer 404 or are left out; minimised ones are stored redacted.

mod visibility;
mod walk;

use std::collections::BTreeMap;
use std::sync::Arc;

use ruma::canonical_json::redact;
use ruma::events::StateEventType;
use ruma::events::room::server_acl::RoomServerAclEventContent;
use ruma::room_version_rules::RedactionRules;
use ruma::{CanonicalJsonObject, EventId, OwnedEventId, OwnedUserId, RoomId, ServerName};
use serde_json::value::RawValue as RawJsonValue;

pub use self::visibility::ServerView;
use crate::error::{Error, Result};
use crate::service::blocking;
use crate::service::rooms::RoomService;
use crate::service::rooms::state::{RoomState, rules_for};
use crate::store::federation_events::{FedEvent, FederationEventStore};
use crate::store::rooms::{Direction, RoomStore};

/// Most events one /backfill answers, whatever `limit` asks.
pub const BACKFILL_LIMIT: usize = 100;
/// Most events one /get_missing_events answers.
pub const MISSING_EVENTS_LIMIT: usize = 20;
/// Candidates read per store call while /timestamp_to_event skips events the server may not see.
const TS_BATCH: usize = 100;

/// A PDU ready for the wire.
pub type WirePdu = Box<RawJsonValue>;

pub struct RoomReadService {
    rooms: Arc<RoomService>,
    room_store: Arc<dyn RoomStore>,
    store: Arc<dyn FederationEventStore>,
}

/// What the access check found: how to redact in this room, and the server's view of it.
struct Access {
    rules: RedactionRules,
    view: ServerView,
}

impl Access {
    fn wire(&self, ev: &FedEvent, visible: bool) -> Result<WirePdu> {
        wire(ev, &self.rules, visible)
    }

    /// Events in order (depth, then position), each judged by itself unless `whole`.
    fn wire_all(&self, mut evs: Vec<FedEvent>, whole: bool) -> Result<Vec<WirePdu>> {
        evs.sort_by_key(|e| (e.depth, e.pos.unwrap_or(-1)));
        evs.iter()
            .map(|e| self.wire(e, whole || self.view.can_see(e.pos)))
            .collect()
    }
}

/// The stored PDU without `unsigned`, redacted if it was redacted or is not `visible`.
pub fn wire(ev: &FedEvent, rules: &RedactionRules, visible: bool) -> Result<WirePdu> {
    let mut obj: CanonicalJsonObject = serde_json::from_str(&ev.json).map_err(Error::internal)?;
    obj.remove("unsigned");
    if ev.redacted || !visible {
        obj = redact(obj, rules, None).map_err(Error::internal)?;
    }
    serde_json::value::to_raw_value(&obj).map_err(Error::internal)
}

/// The `history_visibility` of a state content; one that is not a string is unknown (and so
/// treated as the most restrictive).
fn setting_of(content: Option<serde_json::Value>) -> String {
    content
        .and_then(|c| c["history_visibility"].as_str().map(str::to_owned))
        .unwrap_or_default()
}

fn current_setting(state: &RoomState) -> String {
    match state.content_json(&StateEventType::RoomHistoryVisibility, "") {
        None => "shared".into(),
        some => setting_of(some),
    }
}

impl RoomReadService {
    pub fn new(
        rooms: Arc<RoomService>,
        room_store: Arc<dyn RoomStore>,
        store: Arc<dyn FederationEventStore>,
    ) -> Self {
        Self {
            rooms,
            room_store,
            store,
        }
    }

    /// The access check every endpoint makes (module docs), and the server's view of the room.
    async fn access(&self, room_id: &RoomId, origin: &ServerName) -> Result<Access> {
        // Known room first: a request for an unknown room id must not create any room state.
        let version = self.rooms.room_version(room_id).await?;
        let state = self.rooms.current_state(room_id).await?;
        if let Some(acl) = state
            .get(&StateEventType::RoomServerAcl, "")
            .and_then(|p| p.content_as::<RoomServerAclEventContent>())
            && !acl.is_allowed(origin)
        {
            return Err(Error::forbidden(format!(
                "Server {origin} is denied by the room's server ACL"
            )));
        }
        let current = current_setting(&state);
        if current != "world_readable" && !state.joined_servers().iter().any(|s| s == origin) {
            return Err(Error::forbidden(format!(
                "Server {origin} has no joined member in room {room_id}"
            )));
        }
        let store = self.store.clone();
        let (r, o) = (room_id.to_owned(), origin.to_owned());
        let (settings, members) = blocking(move || {
            let settings = store
                .state_key_history(r.as_str(), "m.room.history_visibility", "")?
                .into_iter()
                .map(|(pos, c)| (pos, setting_of(serde_json::from_str(&c).ok())))
                .collect();
            let mut by_user: BTreeMap<OwnedUserId, Vec<(i64, String)>> = BTreeMap::new();
            for (user, pos, m) in store.server_membership_history(r.as_str(), o.as_str())? {
                by_user.entry(user).or_default().push((pos, m));
            }
            Ok((settings, by_user.into_values().collect()))
        })
        .await?;
        Ok(Access {
            rules: rules_for(&version)?.redaction,
            view: ServerView {
                settings,
                members,
                current,
            },
        })
    }

    async fn fetch(&self, ids: Vec<OwnedEventId>) -> Result<Vec<FedEvent>> {
        let store = self.store.clone();
        blocking(move || Ok(store.events_by_id(&ids)?)).await
    }

    /// One event, which must belong to `room_id` when given; else `M_NOT_FOUND`.
    async fn fetch_one(&self, room_id: Option<&RoomId>, event_id: &EventId) -> Result<FedEvent> {
        self.fetch(vec![event_id.to_owned()])
            .await?
            .pop()
            .filter(|e| room_id.is_none_or(|r| e.room_id == r))
            .ok_or_else(|| Error::not_found(format!("Event {event_id} not found")))
    }

    /// GET /event/{eventId}.
    pub async fn event(&self, origin: &ServerName, event_id: &EventId) -> Result<WirePdu> {
        let ev = self.fetch_one(None, event_id).await?;
        let access = self.access(&ev.room_id, origin).await?;
        access.wire(&ev, access.view.can_see(ev.pos))
    }

    /// The state before `event_id` and its auth chain (what /state and /state_ids serve), and
    /// whether the server may see the event itself.
    async fn state_before(
        &self,
        room_id: &RoomId,
        event_id: &EventId,
        access: &Access,
    ) -> Result<(Vec<FedEvent>, Vec<FedEvent>, bool)> {
        let ev = self.fetch_one(Some(room_id), event_id).await?;
        let pos = ev.pos.ok_or_else(|| {
            Error::not_found(format!("The state at {event_id} is not known here"))
        })?;
        let store = self.store.clone();
        let r = room_id.to_owned();
        let (state, chain) = blocking(move || {
            let state = store.state_events_at(r.as_str(), pos - 1)?;
            let ids: Vec<OwnedEventId> = state.iter().map(|e| e.event_id.clone()).collect();
            let chain = store.auth_chain(&ids)?;
            Ok((state, chain))
        })
        .await?;
        let chain = chain.into_iter().filter(|e| e.room_id == room_id).collect();
        Ok((state, chain, access.view.can_see(Some(pos))))
    }

    /// GET /state/{roomId}?event_id=: `(pdus, auth_chain)`.
    pub async fn state(
        &self,
        origin: &ServerName,
        room_id: &RoomId,
        event_id: &EventId,
    ) -> Result<(Vec<WirePdu>, Vec<WirePdu>)> {
        let access = self.access(room_id, origin).await?;
        let (state, chain, whole) = self.state_before(room_id, event_id, &access).await?;
        Ok((
            access.wire_all(state, whole)?,
            access.wire_all(chain, whole)?,
        ))
    }

    /// GET /state_ids/{roomId}?event_id=: `(pdu_ids, auth_chain_ids)`.
    pub async fn state_ids(
        &self,
        origin: &ServerName,
        room_id: &RoomId,
        event_id: &EventId,
    ) -> Result<(Vec<OwnedEventId>, Vec<OwnedEventId>)> {
        let access = self.access(room_id, origin).await?;
        let (state, chain, _) = self.state_before(room_id, event_id, &access).await?;
        let ids = |v: Vec<FedEvent>| v.into_iter().map(|e| e.event_id).collect();
        Ok((ids(state), ids(chain)))
    }

    /// GET /event_auth/{roomId}/{eventId}: the event's auth chain.
    pub async fn event_auth(
        &self,
        origin: &ServerName,
        room_id: &RoomId,
        event_id: &EventId,
    ) -> Result<Vec<WirePdu>> {
        let access = self.access(room_id, origin).await?;
        let ev = self.fetch_one(Some(room_id), event_id).await?;
        let store = self.store.clone();
        let id = ev.event_id.clone();
        let chain = blocking(move || Ok(store.auth_chain(&[id])?)).await?;
        let chain = chain.into_iter().filter(|e| e.room_id == room_id).collect();
        access.wire_all(chain, access.view.can_see(ev.pos))
    }

    /// GET /backfill/{roomId}?v=&limit=: the `v` events and those before them, newest first.
    pub async fn backfill(
        &self,
        origin: &ServerName,
        room_id: &RoomId,
        from: Vec<OwnedEventId>,
        limit: u64,
    ) -> Result<Vec<WirePdu>> {
        let access = self.access(room_id, origin).await?;
        let limit = usize::try_from(limit)
            .unwrap_or(usize::MAX)
            .min(BACKFILL_LIMIT);
        let store = self.store.clone();
        let r = room_id.to_owned();
        let evs =
            blocking(move || walk::backfill(&r, &from, limit, |ids| Ok(store.events_by_id(ids)?)))
                .await?;
        evs.iter()
            .map(|e| access.wire(e, access.view.can_see(e.pos)))
            .collect()
    }

    /// POST /get_missing_events/{roomId}: what lies between `earliest` and `latest`, oldest
    /// first.
    pub async fn missing_events(
        &self,
        origin: &ServerName,
        room_id: &RoomId,
        earliest: Vec<OwnedEventId>,
        latest: Vec<OwnedEventId>,
        limit: u64,
        min_depth: u64,
    ) -> Result<Vec<WirePdu>> {
        let access = self.access(room_id, origin).await?;
        let limit = usize::try_from(limit)
            .unwrap_or(usize::MAX)
            .min(MISSING_EVENTS_LIMIT);
        let min_depth = i64::try_from(min_depth).unwrap_or(i64::MAX);
        let store = self.store.clone();
        let r = room_id.to_owned();
        let evs = blocking(move || {
            walk::missing_events(&r, &earliest, &latest, limit, min_depth, |ids| {
                Ok(store.events_by_id(ids)?)
            })
        })
        .await?;
        evs.iter()
            .map(|e| access.wire(e, access.view.can_see(e.pos)))
            .collect()
    }

    /// GET /timestamp_to_event/{roomId}: the event nearest `ts` in direction `dir` that the
    /// server may see: `(event_id, origin_server_ts)`.
    pub async fn timestamp_to_event(
        &self,
        origin: &ServerName,
        room_id: &RoomId,
        ts: i64,
        dir: Direction,
    ) -> Result<(OwnedEventId, i64)> {
        let access = self.access(room_id, origin).await?;
        let upto = self.room_store.current_pos();
        // Strictly after (ts, -1) is "at or after ts"; strictly before (ts, MAX) "at or before".
        let mut cursor = match dir {
            Direction::Forward => (ts, -1),
            Direction::Backward => (ts, i64::MAX),
        };
        loop {
            let store = self.room_store.clone();
            let r = room_id.to_owned();
            let evs = blocking(move || {
                Ok(store.events_by_ts(r.as_str(), cursor, dir, TS_BATCH, upto)?)
            })
            .await?;
            let exhausted = evs.len() < TS_BATCH;
            for ev in evs {
                if access.view.can_see(ev.pos) {
                    return Ok((ev.event_id, ev.origin_server_ts));
                }
                cursor = (ev.origin_server_ts, ev.pos.unwrap_or(0));
            }
            if exhausted {
                return Err(Error::not_found(format!(
                    "No event found from {ts} in that direction"
                )));
            }
        }
    }
}

#[cfg(test)]
pub(crate) mod test_fixture;
#[cfg(test)]
mod tests;
