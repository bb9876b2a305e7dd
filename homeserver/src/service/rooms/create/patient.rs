//! Patient-context rooms (docs/GOVERNANCE.md, rule `patient_context_room`): created private,
//! invite-only, `joined` history, no guests, encrypted; no later state may open them up.

use handover_policy::{Denial, RULE_PATIENT_CONTEXT_ROOM};
use ruma::UserId;
use ruma::events::StateEventType;
use serde_json::{Value, json};

use super::super::RoomService;
use super::super::state::RoomState;
use super::{CreateRoomParams, Preset};
use crate::error::Result;

/// The creation content key that makes a room a patient-context room (docs/GOVERNANCE.md):
/// `"org.handover.context": "patient"`.
pub const PATIENT_CONTEXT_KEY: &str = "org.handover.context";

/// Whether the request creates a patient-context room.
pub fn is_patient_context(p: &CreateRoomParams) -> bool {
    p.creation_content
        .as_ref()
        .and_then(|c| c.get(PATIENT_CONTEXT_KEY))
        .and_then(Value::as_str)
        == Some("patient")
}

/// Whether a state event would expose a patient-context room: a join rule other than invite,
/// history visible beyond joined members, guest access, or encryption other than megolm.
pub(in crate::service::rooms) fn patient_conflict(
    kind: &str,
    key: &str,
    c: &Value,
) -> Option<&'static str> {
    if !key.is_empty() {
        return None;
    }
    match kind {
        "m.room.join_rules" if c["join_rule"] != "invite" => Some("a join rule other than invite"),
        "m.room.history_visibility" if c["history_visibility"] != "joined" => {
            Some("history visibility other than joined")
        }
        "m.room.guest_access" if c["guest_access"] != "forbidden" => Some("guest access"),
        "m.room.encryption" if c["algorithm"] != "m.megolm.v1.aes-sha2" => {
            Some("an encryption algorithm other than megolm")
        }
        _ => None,
    }
}

/// The refusal of a request that would expose a patient-context room.
pub(in crate::service::rooms) fn patient_denial(what: &str) -> Denial {
    Denial::new(
        RULE_PATIENT_CONTEXT_ROOM,
        format!(
            "a patient-context room stays private, invite-only and encrypted; the request asked \
             for {what}"
        ),
    )
}

/// Whether an existing room is a patient-context room (its create event carries the key).
pub(in crate::service::rooms) fn is_patient_room(state: &RoomState) -> bool {
    state
        .get(&StateEventType::RoomCreate, "")
        .and_then(|c| serde_json::from_str::<Value>(c.content.get()).ok())
        .is_some_and(|c| c[PATIENT_CONTEXT_KEY] == "patient")
}

impl RoomService {
    /// Whether the room is a patient-context room (services outside `rooms` apply their own
    /// membership rules to it, e.g. search).
    pub async fn is_patient_context_room(&self, room_id: &ruma::RoomId) -> Result<bool> {
        Ok(is_patient_room(&self.current_state(room_id).await?))
    }

    /// A patient-context room (see [`is_patient_context`]): refuses a request asking for state
    /// that would expose it (rule `patient_context_room`, audited), then forces it private:
    /// never in the directory, encrypted (megolm) whatever `rooms.encrypt_by_default` says.
    /// The invite-only join rule, `joined` history and forbidden guest access come from
    /// `initial_events`.
    pub(super) async fn patient_context(
        &self,
        creator: &UserId,
        p: &mut CreateRoomParams,
    ) -> Result<()> {
        let conflict = if p.preset == Some(Preset::PublicChat) {
            Some("the public_chat preset")
        } else {
            p.initial_state
                .iter()
                .find_map(|(kind, key, c)| patient_conflict(kind, key, c))
        };
        if let Some(what) = conflict {
            (self.audit)
                .enforce(
                    Err(patient_denial(what)),
                    "patient_context_room",
                    creator.as_str(),
                    None,
                )
                .await?;
        }
        p.is_public = false;
        if !p
            .initial_state
            .iter()
            .any(|(k, key, _)| k == "m.room.encryption" && key.is_empty())
        {
            p.initial_state.push((
                "m.room.encryption".into(),
                String::new(),
                json!({ "algorithm": "m.megolm.v1.aes-sha2" }),
            ));
        }
        Ok(())
    }
}
