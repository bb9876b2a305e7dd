//! Retention on import (docs/GOVERNANCE.md, "Retention and purge"): an event another server
//! gives us that is older than the room's effective `max_lifetime` is what our purge would have
//! removed, so it is never stored in full. Without this, a server that keeps history longer
//! would hand purged messages back to us through backfill, `get_missing_events`, `/event` or a
//! `send_join` answer.
//!
//! What the purge deletes (messages) is not stored, or stored in its redacted form where the
//! DAG needs the row; what the purge minimises (superseded state) is stored minimised. Current
//! state is kept whole, as the purge keeps it.

use handover_policy::RetentionRequest;
use ruma::canonical_json::redact;
use ruma::room_version_rules::RoomVersionRules;
use ruma::{CanonicalJsonValue, RoomId};

use super::super::RoomService;
use crate::error::{Error, Result};
use crate::service::federation::pdu::CheckedPdu;
use handover_policy::parse_room_retention;

impl RoomService {
    /// The `origin_server_ts` before which the room's events have expired (`None`: kept
    /// forever). `retention_content` is the room's `m.room.retention` content, if any.
    pub(crate) fn expiry_cutoff_for(
        &self,
        room_id: &RoomId,
        retention_content: Option<&str>,
    ) -> Option<i64> {
        let r = self.policy.retention_for_room(&RetentionRequest {
            room_id: room_id.as_str(),
            server: self.retention,
            room: retention_content.map(parse_room_retention),
        });
        r.max_lifetime
            .map(|m| crate::store::now_ms().saturating_sub(i64::try_from(m).unwrap_or(i64::MAX)))
    }

    /// As [`Self::expiry_cutoff_for`], from the room's current state.
    pub(crate) async fn expiry_cutoff(&self, room_id: &RoomId) -> Result<Option<i64>> {
        let state = self.current_state(room_id).await?;
        let content = state
            .get(&"m.room.retention".into(), "")
            .map(|p| p.content.get().to_owned());
        Ok(self.expiry_cutoff_for(room_id, content.as_deref()))
    }
}

/// Whether the event was sent before `cutoff`.
pub(crate) fn expired(c: &CheckedPdu, cutoff: Option<i64>) -> bool {
    let ts = match c.object.get("origin_server_ts") {
        Some(CanonicalJsonValue::Integer(t)) => i64::from(*t),
        // Unreadable: treated as old, as the purge does.
        _ => 0,
    };
    cutoff.is_some_and(|cut| ts < cut)
}

/// Whether the event is a state event.
pub(crate) fn is_state(c: &CheckedPdu) -> bool {
    c.object.contains_key("state_key")
}

/// The event in its redacted form (the room version's rules): what the purge leaves of a row
/// it has to keep. Signatures still verify; the content hash no longer matches.
pub(crate) fn minimise(c: CheckedPdu, rules: &RoomVersionRules) -> Result<CheckedPdu> {
    let object = redact(c.object, &rules.redaction, None).map_err(Error::internal)?;
    let json = serde_json::to_string(&object).map_err(Error::internal)?;
    Ok(CheckedPdu {
        event_id: c.event_id,
        object,
        json,
        redacted: true,
    })
}

/// An expired event minimised; anything else unchanged.
pub(crate) fn age_out(
    c: CheckedPdu,
    cutoff: Option<i64>,
    rules: &RoomVersionRules,
) -> Result<CheckedPdu> {
    if expired(&c, cutoff) {
        minimise(c, rules)
    } else {
        Ok(c)
    }
}
