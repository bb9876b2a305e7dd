//! Redactions: an `m.room.redaction` event whose target is hidden from clients from then on.
//! The authorisation rules decide who may redact (own events, or redact power level).

use ruma::events::TimelineEventType;
use ruma::{DeviceId, EventId, OwnedEventId, RoomId, UserId};

use super::super::RoomService;
use super::build::EventSpec;
use crate::error::{Error, Result};
use crate::service::blocking;

impl RoomService {
    pub async fn redact(
        &self,
        room_id: &RoomId,
        sender: &UserId,
        target: &EventId,
        reason: Option<String>,
        txn: (&DeviceId, &str),
    ) -> Result<OwnedEventId> {
        let store = self.store.clone();
        let t = target.to_owned();
        let target_ev = blocking(move || Ok(store.get_event(t.as_str())?)).await?;
        let target_ev = target_ev
            .filter(|e| e.room_id == room_id)
            .ok_or_else(|| Error::not_found("Event not found"))?;
        // Only someone who can see the room may redact in it.
        self.require_joined(room_id, sender).await?;
        // Since room v3 the auth rules accept any redaction; whether it takes effect is the
        // server's check: the original sender, or someone with the redact power level.
        if target_ev.sender != sender {
            let state = self.current_state(room_id).await?;
            if !state.power_levels().user_can_redact_event_of_other(sender) {
                return Err(Error::forbidden(
                    "You may only redact your own events in this room",
                ));
            }
        }
        let rules = state_rules(self, room_id).await?;
        let mut content = serde_json::Map::new();
        if let Some(r) = reason {
            content.insert("reason".into(), r.into());
        }
        if rules.redaction.content_field_redacts {
            content.insert("redacts".into(), target_ev.event_id.to_string().into());
        }
        let mut spec = EventSpec::new(TimelineEventType::RoomRedaction, content.into(), None);
        spec.redacts = Some(target_ev.event_id);
        self.send(room_id, sender, spec, Some(txn)).await
    }
}

async fn state_rules(
    s: &RoomService,
    room_id: &RoomId,
) -> Result<ruma::room_version_rules::RoomVersionRules> {
    super::super::state::rules_for(&s.room_version(room_id).await?)
}
