//! `Pdu`: a room event as stored and as ruma's auth rules see it (the `state_res::Event` trait).

use ruma::events::TimelineEventType;
use ruma::serde::Raw;
use ruma::{
    CanonicalJsonObject, EventId, MilliSecondsSinceUnixEpoch, OwnedEventId, OwnedRoomId,
    OwnedUserId, RoomId, UInt, UserId,
};
use serde::Deserialize;
use serde_json::value::RawValue as RawJsonValue;

use crate::error::{Error, Result};

#[derive(Debug, Clone)]
pub struct Pdu {
    pub event_id: OwnedEventId,
    /// The room the event belongs to (for a v12 create event, derived from its own hash).
    pub room_id: OwnedRoomId,
    /// Whether `room_id` is a field of the event (not for v12 create events).
    room_id_in_event: bool,
    pub sender: OwnedUserId,
    pub origin_server_ts: MilliSecondsSinceUnixEpoch,
    pub kind: TimelineEventType,
    pub content: Box<RawJsonValue>,
    pub state_key: Option<String>,
    pub prev_events: Vec<OwnedEventId>,
    pub auth_events: Vec<OwnedEventId>,
    /// The redacted event: top-level `redacts` (up to v10) or `content.redacts` (v11+).
    pub redacts: Option<OwnedEventId>,
    pub depth: UInt,
}

#[derive(Deserialize)]
struct Fields {
    room_id: Option<OwnedRoomId>,
    sender: OwnedUserId,
    origin_server_ts: MilliSecondsSinceUnixEpoch,
    #[serde(rename = "type")]
    kind: TimelineEventType,
    content: Box<RawJsonValue>,
    state_key: Option<String>,
    #[serde(default)]
    prev_events: Vec<OwnedEventId>,
    #[serde(default)]
    auth_events: Vec<OwnedEventId>,
    redacts: Option<OwnedEventId>,
    depth: UInt,
}

#[derive(Deserialize)]
struct RedactsInContent {
    redacts: Option<OwnedEventId>,
}

impl Pdu {
    /// Parses a PDU's JSON. `room_id` is the known room (needed for v12 create events).
    pub fn from_json(event_id: OwnedEventId, room_id: &RoomId, json: &str) -> Result<Self> {
        let f: Fields = serde_json::from_str(json)
            .map_err(|e| Error::bad_json(format!("malformed PDU: {e}")))?;
        let redacts = f.redacts.or_else(|| {
            if f.kind == TimelineEventType::RoomRedaction {
                serde_json::from_str::<RedactsInContent>(f.content.get())
                    .ok()
                    .and_then(|c| c.redacts)
            } else {
                None
            }
        });
        Ok(Self {
            event_id,
            room_id_in_event: f.room_id.is_some(),
            room_id: f.room_id.unwrap_or_else(|| room_id.to_owned()),
            sender: f.sender,
            origin_server_ts: f.origin_server_ts,
            kind: f.kind,
            content: f.content,
            state_key: f.state_key,
            prev_events: f.prev_events,
            auth_events: f.auth_events,
            redacts,
            depth: f.depth,
        })
    }

    pub fn from_canonical(
        event_id: OwnedEventId,
        room_id: &RoomId,
        obj: &CanonicalJsonObject,
    ) -> Result<Self> {
        let json = serde_json::to_string(obj).map_err(Error::internal)?;
        Self::from_json(event_id, room_id, &json)
    }

    pub fn is_state(&self) -> bool {
        self.state_key.is_some()
    }

    /// Deserialises the content into a ruma type.
    pub fn content_as<T: serde::de::DeserializeOwned>(&self) -> Option<T> {
        serde_json::from_str(self.content.get()).ok()
    }

    pub fn content_raw<T>(&self) -> Raw<T> {
        Raw::from_json(self.content.clone())
    }
}

impl ruma::state_res::Event for Pdu {
    type Id = OwnedEventId;

    fn event_id(&self) -> &Self::Id {
        &self.event_id
    }
    fn room_id(&self) -> Option<&RoomId> {
        self.room_id_in_event.then_some(&*self.room_id)
    }
    fn sender(&self) -> &UserId {
        &self.sender
    }
    fn origin_server_ts(&self) -> MilliSecondsSinceUnixEpoch {
        self.origin_server_ts
    }
    fn event_type(&self) -> &TimelineEventType {
        &self.kind
    }
    fn content(&self) -> &RawJsonValue {
        &self.content
    }
    fn state_key(&self) -> Option<&str> {
        self.state_key.as_deref()
    }
    fn prev_events(&self) -> Box<dyn DoubleEndedIterator<Item = &Self::Id> + '_> {
        Box::new(self.prev_events.iter())
    }
    fn auth_events(&self) -> Box<dyn DoubleEndedIterator<Item = &Self::Id> + '_> {
        Box::new(self.auth_events.iter())
    }
    fn redacts(&self) -> Option<&Self::Id> {
        self.redacts.as_ref()
    }
    fn rejected(&self) -> bool {
        false
    }
}

/// Lets auth code look up an event by id without caring whether it is `&EventId` or owned.
pub fn borrow_id(id: &OwnedEventId) -> &EventId {
    id
}
