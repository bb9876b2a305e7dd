//! Storage seam for push: per-user push actions of events (unread/highlight counts,
//! /notifications) and pushers.

use ruma::{OwnedEventId, OwnedRoomId};

use super::StoreResult;

/// What one user's push rules decided for one event (only notifying events are stored).
#[derive(Debug, Clone)]
pub struct PushActionRow {
    pub user_id: String,
    pub highlight: bool,
    /// The actions as JSON (an array), for GET /notifications.
    pub actions: String,
}

/// One row of GET /notifications.
#[derive(Debug, Clone)]
pub struct NotificationRow {
    pub room_id: OwnedRoomId,
    pub pos: i64,
    pub event_id: OwnedEventId,
    pub actions: String,
    pub ts: i64,
    /// At or before the user's read boundary in that room.
    pub read: bool,
}

/// A stored pusher: its owner and the client-API JSON.
#[derive(Debug, Clone)]
pub struct PusherRow {
    pub user_id: String,
    pub json: String,
}

pub trait PushStore: Send + Sync {
    /// Records every member's actions for the event at `pos` in ONE write job.
    fn add_push_actions(
        &self,
        room_id: &str,
        pos: i64,
        event_id: &str,
        ts: i64,
        rows: Vec<PushActionRow>,
    ) -> StoreResult<()>;
    /// `(notification_count, highlight_count)`: the user's rows in the room after their read
    /// boundary (latest read receipt or own latest event) and at or before `upto`.
    fn unread_counts(&self, room_id: &str, user_id: &str, upto: i64) -> StoreResult<(u64, u64)>;
    /// Unread notifications over every room the user is joined to (the badge a pusher shows).
    fn unread_total(&self, user_id: &str) -> StoreResult<u64>;
    /// The user's notifications with position below `before`, newest first.
    fn notifications(
        &self,
        user_id: &str,
        before: i64,
        limit: usize,
        only_highlight: bool,
    ) -> StoreResult<Vec<NotificationRow>>;

    /// Creates or replaces the user's pusher `(app_id, pushkey)`. Unless `append`, the same
    /// `(app_id, pushkey)` of other users is removed (a device now belongs to this user).
    fn set_pusher(
        &self,
        user_id: &str,
        app_id: &str,
        pushkey: &str,
        json: &str,
        append: bool,
    ) -> StoreResult<()>;
    /// Removes the user's pusher; `false` if there was none.
    fn delete_pusher(&self, user_id: &str, app_id: &str, pushkey: &str) -> StoreResult<bool>;
    /// The user's pushers, oldest first.
    fn pushers(&self, user_id: &str) -> StoreResult<Vec<PusherRow>>;
}
