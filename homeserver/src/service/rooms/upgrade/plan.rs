//! The pure part of a room upgrade: what the new room's create content and power levels are,
//! which state is copied, and how the old room's power levels are restricted (as Synapse does).

use ruma::events::StateEventType;
use ruma::{OwnedUserId, RoomId, UserId};
use serde_json::{Map, Value, json};

use super::super::state::RoomState;
use crate::error::Result;

/// State copied into the new room (`state_key` ""), as Synapse copies it. Power levels are
/// handled apart ([`new_power_levels`]); the canonical alias moves with the aliases.
pub const COPIED_STATE: &[&str] = &[
    "m.room.join_rules",
    "m.room.name",
    "m.room.topic",
    "m.room.avatar",
    "m.room.encryption",
    "m.room.history_visibility",
    "m.room.guest_access",
    "m.room.server_acl",
];

/// The state events the new room starts with, `(type, state_key, content)`: [`COPIED_STATE`],
/// and a space's children (every `m.space.child`, whatever its key).
pub fn copied_state(old: &RoomState) -> Vec<(String, String, Value)> {
    let is_space = old
        .content_json(&StateEventType::RoomCreate, "")
        .is_some_and(|c| c["type"] == "m.space");
    let mut out: Vec<(String, String, Value)> = COPIED_STATE
        .iter()
        .filter_map(|kind| {
            let c = old.content_json(&(*kind).into(), "")?;
            Some(((*kind).to_owned(), String::new(), c))
        })
        .collect();
    if is_space {
        let mut children: Vec<_> = old
            .state
            .iter()
            .filter(|((kind, _), _)| kind.to_string() == "m.space.child")
            .filter_map(|((_, key), pdu)| {
                let c: Value = serde_json::from_str(pdu.content.get()).ok()?;
                // An empty content is a removed child: nothing to carry over.
                (c.as_object().is_some_and(|o| !o.is_empty()))
                    .then(|| ("m.space.child".to_owned(), key.clone(), c))
            })
            .collect();
        children.sort_by(|a, b| a.1.cmp(&b.1));
        out.extend(children);
    }
    out
}

/// The new room's create content: the old one's (room type, `m.federate`, the patient-context
/// marker, ...) without what names the old room's creators and version, plus `predecessor`.
/// `predecessor.event_id` (deprecated in spec v1.16) is the old room's last event, and is left
/// out from v12, whose room id is the create event's hash (Synapse's shape).
pub fn create_content(
    old: &RoomState,
    old_room: &RoomId,
    last_event: Option<&str>,
    with_event_id: bool,
    additional_creators: &[OwnedUserId],
    upgrader: &UserId,
) -> Map<String, Value> {
    let mut c = match old.content_json(&StateEventType::RoomCreate, "") {
        Some(Value::Object(m)) => m,
        _ => Map::new(),
    };
    for k in [
        "room_version",
        "creator",
        "predecessor",
        "additional_creators",
    ] {
        c.remove(k);
    }
    let mut pred = json!({ "room_id": old_room });
    if with_event_id && let Some(e) = last_event {
        pred["event_id"] = e.into();
    }
    c.insert("predecessor".into(), pred);
    let mut extra: Vec<Value> = Vec::new();
    for u in additional_creators {
        let v = Value::from(u.as_str());
        if u != upgrader && !extra.contains(&v) {
            extra.push(v);
        }
    }
    if !extra.is_empty() {
        c.insert("additional_creators".into(), Value::Array(extra));
    }
    c
}

fn level(v: &Value, default: i64) -> i64 {
    v.as_i64()
        .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
        .unwrap_or(default)
}

/// The new room's power levels: the old room's content, with the new room's creators left out
/// of `users` where the version privileges creators (v12 rejects them listed), and otherwise
/// the upgrader raised to what copying the state and re-inviting and re-banning needs
/// (`upgrader_level` `None`: they were an infinitely powerful creator of the old room).
pub fn new_power_levels(
    old: Option<Value>,
    upgrader: &UserId,
    upgrader_level: Option<i64>,
    new_creators: &[OwnedUserId],
    privileges_creators: bool,
) -> Result<Map<String, Value>> {
    let mut pl = match old {
        Some(Value::Object(m)) => m,
        _ => Map::new(),
    };
    let mut users = match pl.remove("users") {
        Some(Value::Object(u)) => u,
        _ => Map::new(),
    };
    if privileges_creators {
        users
            .retain(|u, _| !new_creators.iter().any(|c| c.as_str() == u) && u != upgrader.as_str());
    } else {
        let mut needed = level(&pl.get("state_default").cloned().unwrap_or(json!(50)), 50)
            .max(level(&pl.get("ban").cloned().unwrap_or(json!(50)), 50))
            .max(level(&pl.get("invite").cloned().unwrap_or(json!(0)), 0));
        if let Some(Value::Object(events)) = pl.get("events") {
            for v in events.values() {
                needed = needed.max(level(v, 0));
            }
        }
        let mine = upgrader_level.unwrap_or(needed.max(100));
        users.insert(upgrader.to_string(), mine.max(needed).into());
    }
    pl.insert("users".into(), Value::Object(users));
    Ok(pl)
}

/// The old room's power levels after its upgrade: `events_default` and `invite` raised to
/// `max(users_default + 1, 50)` so ordinary members stop talking and inviting there (Synapse's
/// rule). `None` when nothing changes.
pub fn restricted_power_levels(old: Value) -> Option<Value> {
    let mut pl = match old {
        Value::Object(m) => m,
        _ => Map::new(),
    };
    let users_default = pl.get("users_default").map_or(0, |v| level(v, 0));
    let restricted = (users_default + 1).max(50);
    let mut changed = false;
    for key in ["events_default", "invite"] {
        let cur = pl.get(key).map_or(0, |v| level(v, 0));
        if cur < restricted {
            pl.insert(key.into(), restricted.into());
            changed = true;
        }
    }
    changed.then_some(Value::Object(pl))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(s: &str) -> OwnedUserId {
        s.parse().unwrap()
    }

    #[test]
    fn v12_power_levels_drop_the_new_creators() {
        let old = json!({ "users": { "@a:hs": 100, "@b:hs": 100, "@c:hs": 50 }, "ban": 50 });
        let pl =
            new_power_levels(Some(old), &user("@a:hs"), Some(100), &[user("@b:hs")], true).unwrap();
        assert_eq!(pl["users"], json!({ "@c:hs": 50 }));
        assert_eq!(pl["ban"], 50);
    }

    #[test]
    fn v11_power_levels_raise_the_upgrader_to_what_copying_needs() {
        let old = json!({
            "users": { "@a:hs": 60 }, "state_default": 50,
            "events": { "m.room.encryption": 100, "m.room.tombstone": 60 }
        });
        let pl = new_power_levels(Some(old.clone()), &user("@a:hs"), Some(60), &[], false).unwrap();
        assert_eq!(pl["users"]["@a:hs"], 100);
        // A user already above what is needed keeps their level.
        let old = json!({ "users": { "@a:hs": 150 } });
        let pl = new_power_levels(Some(old), &user("@a:hs"), Some(150), &[], false).unwrap();
        assert_eq!(pl["users"]["@a:hs"], 150);
        // An old v12 creator (infinite) going to a version without creators' privilege.
        let pl = new_power_levels(None, &user("@a:hs"), None, &[], false).unwrap();
        assert_eq!(pl["users"]["@a:hs"], 100);
    }

    #[test]
    fn old_room_power_levels_are_restricted_as_synapse_does() {
        let pl = restricted_power_levels(json!({ "events_default": 0, "invite": 0 })).unwrap();
        assert_eq!(
            (pl["events_default"].clone(), pl["invite"].clone()),
            (json!(50), json!(50))
        );
        let pl = restricted_power_levels(json!({ "users_default": 60, "invite": 100 })).unwrap();
        assert_eq!(
            (pl["events_default"].clone(), pl["invite"].clone()),
            (json!(61), json!(100))
        );
        assert!(restricted_power_levels(json!({ "events_default": 50, "invite": 50 })).is_none());
    }
}
