//! Storage seam for content reports (events, rooms, users), kept for the IG audit trail.

use ruma::{OwnedEventId, OwnedRoomId, OwnedUserId};

use super::StoreResult;

/// One report. Exactly what was reported decides which ids are set: an event report has room
/// and event, a room report the room, a user report the target user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub reporter: OwnedUserId,
    pub room_id: Option<OwnedRoomId>,
    pub event_id: Option<OwnedEventId>,
    pub target_user: Option<OwnedUserId>,
    pub reason: Option<String>,
    pub score: Option<i64>,
    pub ts: i64,
}

pub trait ReportStore: Send + Sync {
    /// Stores a report; returns its id.
    fn add_report(&self, report: &Report) -> StoreResult<i64>;
    /// Reports with id greater than `after_id`, oldest first (for reviewers and exports).
    fn reports_after(&self, after_id: i64, limit: usize) -> StoreResult<Vec<(i64, Report)>>;
}
