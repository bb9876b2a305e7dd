//! Builds a new local PDU on top of a room's current state: auth_events, prev_events, depth,
//! content hash, signature, event id (and, for a v12 create event, the room id), then checks it
//! with ruma's authorisation rules against the auth events and the current state.

use std::sync::Arc;

use ruma::events::{StateEventType, TimelineEventType};
use ruma::room_version_rules::RoomIdFormatVersion;
use ruma::signatures::{hash_and_sign_event, reference_hash};
use ruma::state_res::{
    auth_types_for_event, check_state_dependent_auth_rules, check_state_independent_auth_rules,
};
use ruma::{
    CanonicalJsonObject, CanonicalJsonValue, EventId, MilliSecondsSinceUnixEpoch, OwnedEventId,
    OwnedRoomId, RoomId, UserId,
};
use serde_json::value::RawValue as RawJsonValue;

use super::super::pdu::Pdu;
use super::super::state::RoomState;
use crate::error::{Error, Result};
use crate::service::signing_key::ServerKeys;

/// What a caller wants to send.
#[derive(Debug, Clone)]
pub struct EventSpec {
    pub kind: TimelineEventType,
    pub content: Box<RawJsonValue>,
    pub state_key: Option<String>,
    pub redacts: Option<OwnedEventId>,
    /// The event's `origin_server_ts`; `None` is now. Set for create events, whose hash is the
    /// room id (v12): see `rooms/create/` on collisions.
    pub origin_server_ts: Option<MilliSecondsSinceUnixEpoch>,
}

impl EventSpec {
    pub fn new(
        kind: TimelineEventType,
        content: serde_json::Value,
        state_key: Option<String>,
    ) -> Self {
        let content = serde_json::value::to_raw_value(&content).expect("a JSON value serialises");
        Self {
            kind,
            content,
            state_key,
            redacts: None,
            origin_server_ts: None,
        }
    }
    pub fn state(
        kind: StateEventType,
        state_key: impl Into<String>,
        content: serde_json::Value,
    ) -> Self {
        Self::new(kind.to_string().into(), content, Some(state_key.into()))
    }
}

/// A signed PDU ready to be stored.
pub struct BuiltEvent {
    pub pdu: Arc<Pdu>,
    pub json: String,
}

fn canonical(raw: &RawJsonValue) -> Result<CanonicalJsonValue> {
    serde_json::from_str(raw.get())
        .map_err(|e| Error::bad_json(format!("content is not canonical JSON: {e}")))
}

/// The unsigned event a sender would create on top of `state`: auth_events, prev_events, depth,
/// timestamps and fields, without hashes or signatures. `room_id` may be `None` only for the
/// create event. Also the template `make_join`/`make_leave` hand to a remote server.
pub fn event_template(
    state: &RoomState,
    room_id: Option<&RoomId>,
    sender: &UserId,
    spec: &EventSpec,
) -> Result<CanonicalJsonObject> {
    let rules = &state.rules;
    let is_create = spec.kind == TimelineEventType::RoomCreate;
    let auth_types = auth_types_for_event(
        &spec.kind,
        sender,
        spec.state_key.as_deref(),
        &spec.content,
        &rules.authorization,
    )
    .map_err(|e| Error::bad_json(format!("invalid event content: {e}")))?;
    let mut auth_events: Vec<OwnedEventId> = Vec::new();
    for (kind, key) in &auth_types {
        if *kind == StateEventType::RoomCreate
            && !rules.event_format.allow_room_create_in_auth_events
        {
            continue;
        }
        if let Some(p) = state.get(kind, key)
            && !auth_events.contains(&p.event_id)
        {
            auth_events.push(p.event_id.clone());
        }
    }
    let prev_events: Vec<OwnedEventId> = state.extremities.iter().take(20).cloned().collect();

    let mut obj = CanonicalJsonObject::new();
    let ids = |v: &[OwnedEventId]| {
        CanonicalJsonValue::Array(
            v.iter()
                .map(|e| CanonicalJsonValue::String(e.to_string()))
                .collect(),
        )
    };
    obj.insert("auth_events".into(), ids(&auth_events));
    obj.insert("prev_events".into(), ids(&prev_events));
    obj.insert("content".into(), canonical(&spec.content)?);
    obj.insert(
        "depth".into(),
        CanonicalJsonValue::Integer(
            (state.depth as i64 + 1)
                .try_into()
                .map_err(Error::internal)?,
        ),
    );
    let ts = spec
        .origin_server_ts
        .unwrap_or_else(MilliSecondsSinceUnixEpoch::now);
    obj.insert(
        "origin_server_ts".into(),
        CanonicalJsonValue::Integer(ts.0.into()),
    );
    obj.insert(
        "sender".into(),
        CanonicalJsonValue::String(sender.to_string()),
    );
    obj.insert(
        "type".into(),
        CanonicalJsonValue::String(spec.kind.to_string()),
    );
    if let Some(k) = &spec.state_key {
        obj.insert("state_key".into(), CanonicalJsonValue::String(k.clone()));
    }
    let omit_room_id = is_create && rules.room_id_format == RoomIdFormatVersion::V2;
    if !omit_room_id {
        let room_id = room_id.ok_or_else(|| Error::internal("room id required"))?;
        obj.insert(
            "room_id".into(),
            CanonicalJsonValue::String(room_id.to_string()),
        );
    }
    if let Some(r) = &spec.redacts {
        // Up to v10 `redacts` is top-level; from v11 it lives in content (set by the caller).
        if !rules.redaction.content_field_redacts {
            obj.insert("redacts".into(), CanonicalJsonValue::String(r.to_string()));
        }
    }
    Ok(obj)
}

/// Builds, signs and authorises an event. `room_id` may be `None` only for the create event.
pub fn build_event(
    state: &RoomState,
    room_id: Option<&RoomId>,
    sender: &UserId,
    spec: &EventSpec,
    keys: &ServerKeys,
    server_name: &str,
) -> Result<BuiltEvent> {
    let mut obj = event_template(state, room_id, sender, spec)?;
    let (pdu, json) = sign_and_check(state, room_id, &mut obj, keys, server_name)?;
    Ok(BuiltEvent {
        pdu: Arc::new(pdu),
        json,
    })
}

/// Hashes and signs a complete event (ours, or a remote template we fill in for one of our
/// users), derives its id, and authorises it against `state`.
pub fn sign_and_check(
    state: &RoomState,
    room_id: Option<&RoomId>,
    obj: &mut CanonicalJsonObject,
    keys: &ServerKeys,
    server_name: &str,
) -> Result<(Pdu, String)> {
    let rules = &state.rules;
    hash_and_sign_event(server_name, &keys.keypair, obj, &rules.redaction)
        .map_err(signing_error)?;
    let hash = reference_hash(obj, rules).map_err(signing_error)?;
    let event_id = EventId::new_v2_or_v3(&hash).map_err(Error::internal)?;
    let omit_room_id = !obj.contains_key("room_id");
    let room_id: OwnedRoomId = if omit_room_id {
        RoomId::new_v2(&hash).map_err(Error::internal)?
    } else {
        room_id
            .map(ToOwned::to_owned)
            .ok_or_else(|| Error::internal("room id required"))?
    };
    let pdu = Pdu::from_canonical(event_id, &room_id, obj)?;
    authorize(state, &pdu)?;
    let json = serde_json::to_string(&obj).map_err(Error::internal)?;
    Ok((pdu, json))
}

/// Authorises `pdu` with ruma's rules: against its auth events (looked up in `state`, which
/// holds them for an event built on it), then against the state itself.
pub fn authorize(state: &RoomState, pdu: &Pdu) -> Result<()> {
    let rules = &state.rules;
    let fetch_event = |id: &EventId| {
        state
            .state
            .values()
            .find(|p| p.event_id == id)
            .map(|p| (**p).clone())
    };
    check_state_independent_auth_rules(&rules.authorization, pdu, fetch_event)
        .map_err(auth_error)?;
    if pdu.kind != TimelineEventType::RoomCreate {
        let fetch_state = |k: &StateEventType, sk: &str| state.get(k, sk).map(|p| (**p).clone());
        check_state_dependent_auth_rules(&rules.authorization, pdu, fetch_state)
            .map_err(auth_error)?;
    }
    Ok(())
}

/// The spec caps a PDU at 65535 bytes: an event that large is the client's error (413).
fn signing_error(e: ruma::signatures::JsonError) -> Error {
    match e {
        ruma::signatures::JsonError::PduTooLarge => {
            Error::too_large("Event is larger than the 65535-byte limit for room events")
        }
        other => Error::bad_json(format!("Event rejected: {other}")),
    }
}

pub(crate) fn auth_error(reason: String) -> Error {
    Error::forbidden(format!("Event not authorised: {reason}"))
}
