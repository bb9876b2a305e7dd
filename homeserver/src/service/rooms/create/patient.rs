//! Patient-context rooms (docs/GOVERNANCE.md, rule `patient_context_room`): the room service's
//! side. The pure rules (marker, conflicting state, the denial) are
//! `handover_policy::patient_rooms`; this file reads the room's create event and applies them.

use handover_policy::{
    PATIENT_CONTEXT_KEY, is_patient_creation_content, patient_creation_conflict,
    patient_room_denial,
};
use ruma::UserId;
use ruma::events::StateEventType;
use serde_json::{Value, json};

use super::super::RoomService;
use super::super::state::RoomState;
use super::{CreateRoomParams, Preset};
use crate::error::Result;

/// Whether the request creates a patient-context room.
pub fn is_patient_context(p: &CreateRoomParams) -> bool {
    p.creation_content
        .as_ref()
        .is_some_and(is_patient_creation_content)
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
        let public_chat = p.preset == Some(Preset::PublicChat);
        if let Some(what) = patient_creation_conflict(public_chat, &p.initial_state) {
            (self.audit)
                .enforce(
                    Err(patient_room_denial(what)),
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
                json!({ "algorithm": handover_policy::patient_rooms::MEGOLM }),
            ));
        }
        Ok(())
    }
}
