//! Patient-context rooms (docs/GOVERNANCE.md, rule `patient_context_room`): created private,
//! invite-only, `joined` history, no guests, encrypted; no later state may open them up. The
//! pure rules live here; the room service reads the room's state and applies them (it holds the
//! create event and the request, which no `Policy` hook sees).

use serde_json::{Map, Value};

use crate::{Denial, RULE_PATIENT_CONTEXT_ROOM};

/// The creation content key that makes a room a patient-context room (docs/GOVERNANCE.md):
/// `"org.handover.context": "patient"`.
pub const PATIENT_CONTEXT_KEY: &str = "org.handover.context";

/// The encryption a patient-context room always has (whatever `rooms.encrypt_by_default` says).
pub const MEGOLM: &str = "m.megolm.v1.aes-sha2";

/// Whether create-event content (or createRoom's `creation_content`) marks a patient-context
/// room.
pub fn is_patient_creation_content(content: &Map<String, Value>) -> bool {
    content.get(PATIENT_CONTEXT_KEY).and_then(Value::as_str) == Some("patient")
}

/// Whether a state event would expose a patient-context room: a join rule other than invite,
/// history visible beyond joined members, guest access, or encryption other than megolm.
/// `Some(what)` names it for the denial.
pub fn patient_room_conflict(kind: &str, state_key: &str, content: &Value) -> Option<&'static str> {
    if !state_key.is_empty() {
        return None;
    }
    let c = content;
    match kind {
        "m.room.join_rules" if c["join_rule"] != "invite" => Some("a join rule other than invite"),
        "m.room.history_visibility" if c["history_visibility"] != "joined" => {
            Some("history visibility other than joined")
        }
        "m.room.guest_access" if c["guest_access"] != "forbidden" => Some("guest access"),
        "m.room.encryption" if c["algorithm"] != MEGOLM => {
            Some("an encryption algorithm other than megolm")
        }
        _ => None,
    }
}

/// What in a createRoom request would expose the patient-context room it creates: the
/// `public_chat` preset, or an initial state event (`patient_room_conflict`).
pub fn patient_creation_conflict(
    public_chat_preset: bool,
    initial_state: &[(String, String, Value)],
) -> Option<&'static str> {
    if public_chat_preset {
        return Some("the public_chat preset");
    }
    initial_state
        .iter()
        .find_map(|(kind, key, c)| patient_room_conflict(kind, key, c))
}

/// The refusal of a request that would expose a patient-context room.
pub fn patient_room_denial(what: &str) -> Denial {
    Denial::new(
        RULE_PATIENT_CONTEXT_ROOM,
        format!(
            "a patient-context room stays private, invite-only and encrypted; the request asked \
             for {what}"
        ),
    )
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn the_marker_is_the_patient_context_key() {
        let marked = json!({ PATIENT_CONTEXT_KEY: "patient" });
        assert!(is_patient_creation_content(marked.as_object().unwrap()));
        for other in [
            json!({ PATIENT_CONTEXT_KEY: "staff" }),
            json!({ PATIENT_CONTEXT_KEY: true }),
            json!({ "patient": PATIENT_CONTEXT_KEY }),
            json!({}),
        ] {
            assert!(!is_patient_creation_content(other.as_object().unwrap()));
        }
    }

    #[test]
    fn state_that_would_expose_the_room_conflicts() {
        let conflict = |kind, c: Value| patient_room_conflict(kind, "", &c);
        assert!(conflict("m.room.join_rules", json!({"join_rule": "invite"})).is_none());
        assert!(conflict("m.room.join_rules", json!({"join_rule": "public"})).is_some());
        assert!(conflict("m.room.join_rules", json!({"join_rule": "knock"})).is_some());
        assert!(conflict("m.room.join_rules", json!({})).is_some());
        let hv = |v| json!({ "history_visibility": v });
        assert!(conflict("m.room.history_visibility", hv("joined")).is_none());
        for v in ["shared", "invited", "world_readable"] {
            assert!(
                conflict("m.room.history_visibility", hv(v)).is_some(),
                "{v}"
            );
        }
        let guests = |v| json!({ "guest_access": v });
        assert!(conflict("m.room.guest_access", guests("forbidden")).is_none());
        assert!(conflict("m.room.guest_access", guests("can_join")).is_some());
        assert!(conflict("m.room.encryption", json!({"algorithm": MEGOLM})).is_none());
        assert!(conflict("m.room.encryption", json!({"algorithm": "none"})).is_some());
        assert!(conflict("m.room.topic", json!({"topic": "x"})).is_none());
        // Only the room-wide state (empty state key) sets these.
        let keyed =
            patient_room_conflict("m.room.join_rules", "x", &json!({"join_rule": "public"}));
        assert!(keyed.is_none());
    }

    #[test]
    fn creation_conflicts_name_what_was_asked() {
        let public = (
            "m.room.join_rules".into(),
            String::new(),
            json!({"join_rule": "public"}),
        );
        assert_eq!(
            patient_creation_conflict(true, &[]),
            Some("the public_chat preset")
        );
        assert_eq!(
            patient_creation_conflict(false, &[public]),
            Some("a join rule other than invite")
        );
        assert_eq!(patient_creation_conflict(false, &[]), None);
        let denial = patient_room_denial("guest access");
        assert_eq!(denial.rule, RULE_PATIENT_CONTEXT_ROOM);
        assert!(denial.reason.ends_with("asked for guest access"));
    }
}
