//! Storage seam for rooms: events, state over time, membership, forward extremities, aliases.

use ruma::{OwnedEventId, OwnedRoomId, OwnedUserId};

use super::StoreResult;

/// An event as stored, with what is needed to show it to a client.
#[derive(Debug, Clone)]
pub struct StoredEvent {
    pub event_id: OwnedEventId,
    pub room_id: OwnedRoomId,
    pub pos: Option<i64>,
    pub sender: OwnedUserId,
    pub kind: String,
    pub state_key: Option<String>,
    pub origin_server_ts: i64,
    /// The PDU JSON (signed, as sent over federation).
    pub json: String,
    /// Server-computed unsigned fields as a JSON object (prev_content, replaces_state).
    pub unsigned: Option<String>,
    /// The redaction event (id, JSON) if this event has been redacted.
    pub redacted_because: Option<(OwnedEventId, String)>,
    /// The device and transaction id it was sent with, for `unsigned.transaction_id`.
    pub txn: Option<(String, String)>,
}

/// An event to append. The store allocates its stream position.
#[derive(Debug, Clone)]
pub struct NewEvent {
    pub event_id: OwnedEventId,
    pub room_id: OwnedRoomId,
    pub sender: OwnedUserId,
    pub kind: String,
    pub state_key: Option<String>,
    pub depth: i64,
    pub origin_server_ts: i64,
    pub json: String,
    pub unsigned: Option<String>,
    /// Removed from the forward extremities; this event becomes one.
    pub prev_events: Vec<OwnedEventId>,
    /// `(user, device, txn_id)` for idempotent sends.
    pub txn: Option<(OwnedUserId, String, String)>,
    /// For `m.room.member`: the new membership of the state_key user.
    pub membership: Option<String>,
    /// `(relates_to, rel_type)` from `m.relates_to`.
    pub relation: Option<(OwnedEventId, String)>,
    /// For redactions: the event being redacted.
    pub redacts: Option<OwnedEventId>,
    /// Other state changed at this event by state resolution (a fork merged):
    /// `(type, state_key, event, membership)`.
    pub resolved_state: Vec<(String, String, OwnedEventId, Option<String>)>,
    /// Durable deliveries staged by the commit pipeline: one row per queue, in this event's
    /// transaction and at its position (`store/deliveries.rs`).
    pub deliveries: Vec<crate::store::deliveries::DeliveryQueue>,
}

#[derive(Debug, Clone)]
pub struct NewRoom {
    pub room_id: OwnedRoomId,
    pub version: String,
    pub creator: OwnedUserId,
    pub is_public: bool,
}

/// The inputs of a user's history visibility in one room.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VisibilityHistory {
    /// The user's membership changes: `(pos, membership)`, oldest first.
    pub memberships: Vec<(i64, String)>,
    /// The room's `history_visibility` changes: `(pos, setting)`, oldest first; a setting that
    /// is not a string is read as "" (unknown, so the most restrictive).
    pub settings: Vec<(i64, String)>,
    /// The user forgot the room (after leaving it).
    pub forgotten: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MembershipRow {
    pub room_id: OwnedRoomId,
    pub user_id: OwnedUserId,
    pub membership: String,
    pub event_id: OwnedEventId,
    pub pos: i64,
    pub forgotten: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Backward,
    Forward,
}

/// Children of an event for /relations, paged by stream position like `RoomStore::timeline`.
#[derive(Debug, Clone)]
pub struct RelationQuery<'a> {
    pub room_id: &'a str,
    pub event_id: &'a str,
    pub rel_type: Option<&'a str>,
    pub event_type: Option<&'a str>,
    /// 1: direct children only; more follows relations of relations that many hops.
    pub max_depth: u32,
    pub from: i64,
    pub dir: Direction,
    pub limit: usize,
    pub upto: i64,
}

/// A thread root's aggregate (`m.thread` bundled aggregation).
#[derive(Debug, Clone)]
pub struct ThreadSummary {
    pub count: u64,
    pub latest: Option<StoredEvent>,
    /// Whether the user sent a reply in the thread (the root's sender is checked by the caller).
    pub user_replied: bool,
}

pub trait RoomStore: Send + Sync {
    /// The highest committed position of the global stream.
    fn current_pos(&self) -> i64;
    /// Creates the room and appends its initial events in one transaction; returns their positions.
    fn create_room(&self, room: NewRoom, events: Vec<NewEvent>) -> StoreResult<Vec<i64>>;
    fn append_event(&self, event: NewEvent) -> StoreResult<i64>;
    fn room_version(&self, room_id: &str) -> StoreResult<Option<String>>;
    /// Current state events (for loading a room into memory), with extremities and max depth.
    fn current_state(&self, room_id: &str) -> StoreResult<Vec<StoredEvent>>;
    fn forward_extremities(&self, room_id: &str) -> StoreResult<(Vec<OwnedEventId>, i64)>;

    fn get_event(&self, event_id: &str) -> StoreResult<Option<StoredEvent>>;
    fn txn_event(
        &self,
        user_id: &str,
        device_id: &str,
        txn_id: &str,
    ) -> StoreResult<Option<OwnedEventId>>;

    /// State events in force at stream position `pos` (inclusive).
    fn state_at(&self, room_id: &str, pos: i64) -> StoreResult<Vec<StoredEvent>>;
    /// State events whose (type, state_key) changed in `(after, upto]`, as of `upto`.
    fn state_changed_between(
        &self,
        room_id: &str,
        after: i64,
        upto: i64,
    ) -> StoreResult<Vec<StoredEvent>>;
    /// Timeline events. Backward: `pos <= from`, newest first. Forward: `pos > from`, oldest first.
    /// Never beyond `upto`.
    fn timeline(
        &self,
        room_id: &str,
        from: i64,
        dir: Direction,
        limit: usize,
        upto: i64,
    ) -> StoreResult<Vec<StoredEvent>>;
    /// Highest position of any event in the room.
    fn room_max_pos(&self, room_id: &str) -> StoreResult<Option<i64>>;

    fn memberships_of_user(&self, user_id: &str) -> StoreResult<Vec<MembershipRow>>;
    fn membership(&self, room_id: &str, user_id: &str) -> StoreResult<Option<MembershipRow>>;
    fn members(&self, room_id: &str) -> StoreResult<Vec<MembershipRow>>;
    /// For each `(user, pos)`, the user's member event in force at `pos` (if any), in one query.
    fn members_at(&self, room_id: &str, wants: &[(String, i64)]) -> StoreResult<Vec<StoredEvent>>;
    /// What the user may read of the room depends on (history visibility), in one read.
    fn visibility_history(&self, room_id: &str, user_id: &str) -> StoreResult<VisibilityHistory>;
    fn forget(&self, room_id: &str, user_id: &str) -> StoreResult<()>;

    fn event_pos(&self, event_id: &str) -> StoreResult<Option<i64>>;

    fn set_alias(&self, alias: &str, room_id: &str, creator: &str) -> StoreResult<()>;
    fn get_alias(&self, alias: &str) -> StoreResult<Option<(OwnedRoomId, OwnedUserId)>>;
    fn delete_alias(&self, alias: &str) -> StoreResult<bool>;
    fn aliases_for_room(&self, room_id: &str) -> StoreResult<Vec<String>>;
    /// Points every alias of `from` at `to` in one statement (a room upgrade); returns them.
    fn move_aliases(&self, from: &str, to: &str) -> StoreResult<Vec<String>>;
    fn set_room_public(&self, room_id: &str, public: bool) -> StoreResult<()>;
    fn is_room_public(&self, room_id: &str) -> StoreResult<bool>;
    fn public_rooms(&self) -> StoreResult<Vec<OwnedRoomId>>;

    /// Events relating to an event (table `event_relations`), see `RelationQuery`.
    fn relations(&self, q: &RelationQuery<'_>) -> StoreResult<Vec<StoredEvent>>;
    /// The latest same-sender, unredacted `m.replace` edit of each given event at or before
    /// `upto` (bundling; the caller checks the rest of what the viewer may see).
    fn latest_edits(
        &self,
        event_ids: &[OwnedEventId],
        upto: i64,
    ) -> StoreResult<Vec<(OwnedEventId, StoredEvent)>>;
    /// Thread roots of the room with the position of their latest reply, newest first, only
    /// those whose latest reply is before `before`. With `participant`, only threads that user
    /// started or replied in.
    fn thread_roots(
        &self,
        room_id: &str,
        before: i64,
        upto: i64,
        participant: Option<&str>,
        limit: usize,
    ) -> StoreResult<Vec<(OwnedEventId, i64)>>;
    fn thread_summary(&self, root_id: &str, user_id: &str, upto: i64)
    -> StoreResult<ThreadSummary>;
    /// Events ordered by `(origin_server_ts, pos)` strictly after (Forward) or before
    /// (Backward) the cursor `(ts, pos)`, nearest first.
    fn events_by_ts(
        &self,
        room_id: &str,
        cursor: (i64, i64),
        dir: Direction,
        limit: usize,
        upto: i64,
    ) -> StoreResult<Vec<StoredEvent>>;
}
