//! Storage seam for serving a room's events to other servers: PDUs by id (outliers included),
//! state at a stream position, auth chains, and the history a server-visibility check needs.
//! Separate from `rooms.rs` so federation reads do not grow the client-facing room store.

use ruma::{OwnedEventId, OwnedRoomId, OwnedUserId};

use super::StoreResult;

/// A PDU as stored, with what serving it over federation needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FedEvent {
    pub event_id: OwnedEventId,
    pub room_id: OwnedRoomId,
    /// Stream position; `None` for an outlier (an event stored without its place in the
    /// timeline, e.g. an auth event fetched over federation).
    pub pos: Option<i64>,
    pub depth: i64,
    pub origin_server_ts: i64,
    /// The PDU JSON exactly as stored (signed federation format; minimised if retention
    /// reduced it).
    pub json: String,
    /// A redaction of this event has been accepted: it is only ever served redacted.
    pub redacted: bool,
}

/// One membership change of a user: `(user, pos, membership)`.
pub type MembershipChange = (OwnedUserId, i64, String);

pub trait FederationEventStore: Send + Sync {
    /// The events with these ids that exist (timeline events and outliers), in no order.
    fn events_by_id(&self, ids: &[OwnedEventId]) -> StoreResult<Vec<FedEvent>>;
    /// The room's state events in force at stream position `pos` (inclusive).
    fn state_events_at(&self, room_id: &str, pos: i64) -> StoreResult<Vec<FedEvent>>;
    /// Every stored event reachable from `ids` through `auth_events`, recursively (the given
    /// events themselves only if another of them reaches them). Missing links are skipped.
    fn auth_chain(&self, ids: &[OwnedEventId]) -> StoreResult<Vec<FedEvent>>;
    /// The values of one state key over time: `(pos, content JSON)`, oldest first.
    fn state_key_history(
        &self,
        room_id: &str,
        kind: &str,
        state_key: &str,
    ) -> StoreResult<Vec<(i64, String)>>;
    /// Membership changes in the room of every user on `server_name`, oldest first.
    fn server_membership_history(
        &self,
        room_id: &str,
        server_name: &str,
    ) -> StoreResult<Vec<MembershipChange>>;
}
