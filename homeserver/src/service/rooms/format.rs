//! Turns stored PDUs into the client-server event format: drops federation fields, applies
//! redaction, adds `unsigned` (age, transaction_id for the sending device, prev_content,
//! redacted_because).

use ruma::canonical_json::{RedactedBecause, redact};
use ruma::room_version_rules::RoomVersionRules;
use ruma::serde::Raw;
use ruma::{CanonicalJsonObject, DeviceId, MilliSecondsSinceUnixEpoch, UserId};
use serde_json::{Map, Value};

use crate::store::rooms::StoredEvent;

/// Who is looking: their own transaction ids are echoed back.
#[derive(Clone, Copy)]
pub struct Viewer<'a> {
    pub user_id: &'a UserId,
    pub device_id: Option<&'a DeviceId>,
}

pub fn client_event(
    ev: &StoredEvent,
    rules: &RoomVersionRules,
    viewer: Option<Viewer<'_>>,
    with_room_id: bool,
) -> Value {
    let mut obj: CanonicalJsonObject = match serde_json::from_str(&ev.json) {
        Ok(o) => o,
        Err(_) => return Value::Null,
    };
    let redaction = ev.redacted_because.as_ref().map(|(id, json)| {
        let mut r: Map<String, Value> = serde_json::from_str(json).unwrap_or_default();
        r.insert("event_id".into(), id.to_string().into());
        r
    });
    if let Some(r) = &redaction {
        let because = serde_json::from_value::<CanonicalJsonObject>(Value::Object(r.clone()))
            .ok()
            .map(RedactedBecause::from_json);
        if let Ok(redacted) = redact(obj.clone(), &rules.redaction, because) {
            obj = redacted;
        }
    }
    let mut full: Map<String, Value> = serde_json::to_value(&obj)
        .ok()
        .and_then(|v| v.as_object().cloned())
        .unwrap_or_default();
    let mut out = Map::new();
    for k in [
        "type",
        "content",
        "sender",
        "origin_server_ts",
        "state_key",
        "redacts",
    ] {
        if let Some(v) = full.remove(k) {
            out.insert(k.into(), v);
        }
    }
    out.insert("event_id".into(), ev.event_id.to_string().into());
    if with_room_id {
        out.insert("room_id".into(), ev.room_id.to_string().into());
    }
    let mut unsigned: Map<String, Value> = ev
        .unsigned
        .as_deref()
        .and_then(|u| serde_json::from_str(u).ok())
        .unwrap_or_default();
    let now: u64 = MilliSecondsSinceUnixEpoch::now().get().into();
    unsigned.insert(
        "age".into(),
        (now as i64 - ev.origin_server_ts).max(0).into(),
    );
    if let (Some(v), Some((device, txn))) = (viewer, &ev.txn)
        && v.user_id == ev.sender
        && v.device_id.is_some_and(|d| d.as_str() == device)
    {
        unsigned.insert("transaction_id".into(), txn.clone().into());
    }
    if let Some(r) = redaction {
        unsigned.remove("prev_content");
        unsigned.insert("redacted_because".into(), client_redaction(r));
    }
    if let Some(Value::Object(ru)) = full.get("unsigned")
        && let Some(Value::Object(rb)) = ru.get("redacted_because")
    {
        unsigned
            .entry("redacted_because")
            .or_insert_with(|| Value::Object(rb.clone()));
    }
    out.insert("unsigned".into(), Value::Object(unsigned));
    Value::Object(out)
}

fn client_redaction(mut r: Map<String, Value>) -> Value {
    let mut out = Map::new();
    for k in [
        "type",
        "content",
        "sender",
        "origin_server_ts",
        "event_id",
        "redacts",
        "room_id",
    ] {
        if let Some(v) = r.remove(k) {
            out.insert(k.into(), v);
        }
    }
    Value::Object(out)
}

/// Wraps JSON as a ruma `Raw<T>` for a typed response.
pub fn to_raw<T>(v: &Value) -> Raw<T> {
    Raw::from_json(serde_json::value::to_raw_value(v).expect("a JSON value serialises"))
}
