//! Storage seam for rooms shared with other servers: events held only for authorisation
//! (outliers), rooms joined over federation (their state imported at the join), and invites
//! from other servers to rooms we are not yet in.

use ruma::{OwnedEventId, OwnedRoomId};

use super::StoreResult;
use super::rooms::{NewEvent, NewRoom};

/// A PDU kept for authorisation or as imported state: no stream position, never in a timeline.
#[derive(Debug, Clone)]
pub struct Outlier {
    pub event_id: OwnedEventId,
    pub room_id: OwnedRoomId,
    pub sender: String,
    pub kind: String,
    pub state_key: Option<String>,
    pub depth: i64,
    pub origin_server_ts: i64,
    pub json: String,
}

/// One entry of a room's state at a join: `(type, state_key) -> event`, with the membership for
/// member events.
#[derive(Debug, Clone)]
pub struct StateEntry {
    pub kind: String,
    pub state_key: String,
    pub event_id: OwnedEventId,
    pub membership: Option<String>,
}

/// A room joined through another server: the room, the events we were given (auth chain and
/// state, as outliers), the state before our join, and the join event itself.
#[derive(Debug, Clone)]
pub struct ImportedRoom {
    pub room: NewRoom,
    pub outliers: Vec<Outlier>,
    pub state: Vec<StateEntry>,
    pub join: NewEvent,
}

pub trait FederatedRoomStore: Send + Sync {
    /// Stores events as outliers (existing events are left alone).
    fn add_outliers(&self, events: Vec<Outlier>) -> StoreResult<()>;
    /// Which of `ids` we hold (timeline events or outliers).
    fn known_events(&self, ids: &[OwnedEventId]) -> StoreResult<Vec<OwnedEventId>>;
    /// Records a room joined over federation in one transaction: the room row (kept if it
    /// exists, e.g. after an invite), outliers, the state at one new position, memberships,
    /// then the join event as the room's only forward extremity. Returns the join's position.
    fn import_room(&self, import: ImportedRoom) -> StoreResult<i64>;
    /// An invite from another server to a room we are not in: the room row, the invite event
    /// (in the timeline, so the invitee's sync sees it) and the stripped state shown with it.
    fn store_remote_invite(
        &self,
        room: NewRoom,
        invite: NewEvent,
        invite_state_json: String,
    ) -> StoreResult<i64>;
    /// The room's earliest timeline event, and whether its create event is in the timeline
    /// (false for a room joined over federation whose history has not been backfilled).
    fn timeline_start(&self, room_id: &str) -> StoreResult<(Option<OwnedEventId>, bool)>;
    /// Stores older history fetched from another server (newest first) before the room's
    /// earliest event: positions below every position in use, so it sorts before the rest
    /// of the timeline and never shows up as new in a sync. State and memberships are left
    /// alone (the current state is already known). Events already held are skipped.
    fn insert_backfilled(&self, events: Vec<NewEvent>) -> StoreResult<usize>;
    /// The stripped state of an invite from another server, if the user has one for the room.
    fn remote_invite_state(&self, room_id: &str, user_id: &str) -> StoreResult<Option<String>>;
}
