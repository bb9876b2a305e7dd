//! Storage seam for retention and legal holds: finding what has expired and removing it.

use super::StoreResult;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HoldKind {
    Room,
    User,
}

impl HoldKind {
    pub fn as_str(self) -> &'static str {
        match self {
            HoldKind::Room => "room",
            HoldKind::User => "user",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hold {
    pub kind: HoldKind,
    pub target: String,
    pub reason: Option<String>,
    pub placed_by: String,
    pub placed_ts: i64,
}

/// An event retention may remove or minimise.
#[derive(Debug, Clone)]
pub struct Candidate {
    pub event_id: String,
    pub room_id: String,
    /// `None` for an outlier (an auth event fetched over federation); negative for history
    /// backfilled from another server.
    pub pos: Option<i64>,
    pub kind: String,
    pub state_key: Option<String>,
    pub json: String,
    pub unsigned: Option<String>,
    /// The row must stay (state, a forward extremity, or the redaction of a kept event): its
    /// JSON is reduced to the redacted form instead of being deleted.
    pub keep_row: bool,
}

/// Where a scan over stored events resumes. Every stored event is covered whatever its
/// position: positioned events in position order (backfilled history has negative positions),
/// then outliers (no position) by event id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cursor {
    /// After this position (`i64::MIN`: from the start).
    Pos(i64),
    /// Among the outliers, after this event id.
    Outlier(String),
}

impl Cursor {
    pub const START: Cursor = Cursor::Pos(i64::MIN);

    /// The cursor just after `c`.
    pub fn after(c: &Candidate) -> Cursor {
        match c.pos {
            Some(p) => Cursor::Pos(p),
            None => Cursor::Outlier(c.event_id.clone()),
        }
    }
}

/// A row whose stored JSON is replaced by its redacted form. For a state event, the event that
/// replaced it in the room's state carries its content as `unsigned.prev_content`: that copy is
/// replaced by `content` (the minimised content) too.
#[derive(Debug, Clone)]
pub struct Minimised {
    pub event_id: String,
    pub room_id: String,
    pub json: String,
    pub content: String,
    /// `(type, state_key)` for state events.
    pub state: Option<(String, String)>,
}

pub trait RetentionStore: Send + Sync {
    /// Every room with its room version.
    fn rooms_with_versions(&self) -> StoreResult<Vec<(String, String)>>;
    /// The content of the room's current `m.room.retention` event, if any.
    fn room_retention_content(&self, room_id: &str) -> StoreResult<Option<String>>;
    /// Events of the room sent before `before_ts`, after `after` (see [`Cursor`]: backfilled
    /// and outlier events included), that are neither sent by a held user, nor current state,
    /// nor already minimised.
    fn expired_events(
        &self,
        room_id: &str,
        before_ts: i64,
        after: &Cursor,
        limit: usize,
    ) -> StoreResult<Vec<Candidate>>;
    /// Redacted events (not held, not minimised) whose redaction was sent before `before_ts`,
    /// after `after` (whatever their position): `(candidate, room_version)`.
    fn redacted_originals(
        &self,
        before_ts: i64,
        after: &Cursor,
        limit: usize,
    ) -> StoreResult<Vec<(Candidate, String)>>;
    /// Deletes events and every row pointing at them (txn ids, relations, push actions,
    /// receipts, media references); minimises the others (dropping their media references). One write transaction. Returns (deleted, minimised).
    fn purge_events(
        &self,
        delete: Vec<String>,
        minimise: Vec<Minimised>,
        now: i64,
    ) -> StoreResult<(usize, usize)>;
    /// The `origin_server_ts` of the room's newest event (`min_lifetime` of forgotten rooms).
    fn newest_event_ts(&self, room_id: &str) -> StoreResult<Option<i64>>;
    /// Rooms whose local members have all forgotten them, not held, with no held sender.
    fn forgotten_rooms(&self, server_name: &str) -> StoreResult<Vec<String>>;
    /// Deletes everything about a room. Returns the number of event rows deleted.
    fn delete_room(&self, room_id: &str) -> StoreResult<usize>;
    /// The users under a legal hold who sent events in the room (its deletion must wait).
    fn held_senders_in_room(&self, room_id: &str) -> StoreResult<Vec<String>>;
    /// Undelivered to-device messages queued before `before_ts`: deleted unless `dry_run`.
    /// Returns how many (messages).
    fn expire_to_device(&self, before_ts: i64, dry_run: bool) -> StoreResult<usize>;
    /// Federation queue rows queued before `before_ts`, with the payloads no remaining row
    /// uses: deleted unless `dry_run`. Returns how many queue rows.
    fn expire_outbox(&self, before_ts: i64, dry_run: bool) -> StoreResult<usize>;
    /// The free-text reason of reports made before `before_ts`: erased unless `dry_run`.
    /// Returns how many reports.
    fn erase_report_reasons(&self, before_ts: i64, dry_run: bool) -> StoreResult<usize>;
    /// The stripped state kept with invites from other servers: deleted (unless `dry_run`)
    /// once the invite is answered, or when it was sent before `before_ts`. Returns how many.
    fn expire_remote_invites(&self, before_ts: i64, dry_run: bool) -> StoreResult<usize>;
    /// Returns free pages to the filesystem and checkpoints and truncates the WAL, without
    /// holding up writes for long (`Db::reclaim`).
    fn reclaim_space(&self) -> StoreResult<()>;

    fn holds(&self) -> StoreResult<Vec<Hold>>;
    /// Places a hold; false if it was already in place.
    fn place_hold(&self, hold: Hold) -> StoreResult<bool>;
    /// Releases a hold; false if there was none.
    fn release_hold(&self, kind: HoldKind, target: &str) -> StoreResult<bool>;
}
