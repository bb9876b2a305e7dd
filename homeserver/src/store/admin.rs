//! Storage seam for the admin API: the account list with Synapse's filters and orderings, and
//! the admin, locked and suspended flags.

use ruma::OwnedUserId;

use super::StoreResult;

/// One account as the admin API shows it.
#[derive(Debug, Clone)]
pub struct AdminUserRow {
    pub user_id: OwnedUserId,
    pub is_admin: bool,
    pub deactivated: bool,
    pub erased: bool,
    pub locked: bool,
    pub suspended: bool,
    pub displayname: Option<String>,
    pub avatar_url: Option<String>,
    pub created_ts: i64,
    /// The most recent activity of any of the account's devices.
    pub last_seen_ts: Option<i64>,
}

/// Synapse's `order_by` values that we can answer (the rest have no meaning here).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum UserOrder {
    #[default]
    Name,
    Admin,
    Deactivated,
    Displayname,
    AvatarUrl,
    CreationTs,
    LastSeenTs,
    /// Guests, user types and shadow bans do not exist here: every row compares equal.
    Constant,
}

#[derive(Debug, Clone, Default)]
pub struct UserListQuery {
    pub from: u64,
    pub limit: u64,
    /// Substring of the user id or display name (case-insensitive).
    pub name: Option<String>,
    /// Substring of the user id only.
    pub user_id: Option<String>,
    pub include_deactivated: bool,
    pub include_locked: bool,
    pub admins: Option<bool>,
    pub order: UserOrder,
    pub backwards: bool,
}

/// Which accounts are restricted, loaded at start-up into the in-memory check.
#[derive(Debug, Clone)]
pub struct Restriction {
    pub user_id: OwnedUserId,
    pub locked: bool,
    pub suspended: bool,
}

pub trait AdminStore: Send + Sync {
    /// One page of accounts and the number matching the filters.
    fn list_users(&self, q: &UserListQuery) -> StoreResult<(Vec<AdminUserRow>, u64)>;
    fn admin_user(&self, user_id: &str) -> StoreResult<Option<AdminUserRow>>;
    /// Returns false when there is no such account.
    fn set_admin(&self, user_id: &str, admin: bool) -> StoreResult<bool>;
    fn set_locked(&self, user_id: &str, locked: bool) -> StoreResult<bool>;
    fn set_suspended(&self, user_id: &str, suspended: bool) -> StoreResult<bool>;
    fn set_erased(&self, user_id: &str) -> StoreResult<()>;
    /// Re-enables a deactivated account (Synapse's `deactivated: false`).
    fn reactivate(&self, user_id: &str) -> StoreResult<()>;
    fn restricted_users(&self) -> StoreResult<Vec<Restriction>>;
}

/// A room row as stored (names, aliases and members come from its current state).
#[derive(Debug, Clone)]
pub struct AdminRoomRow {
    pub room_id: ruma::OwnedRoomId,
    pub version: String,
    pub creator: String,
    pub is_public: bool,
    pub created_ts: i64,
}

/// An event report (the reports table's rows that name an event).
#[derive(Debug, Clone)]
pub struct EventReportRow {
    pub id: i64,
    pub received_ts: i64,
    pub room_id: String,
    pub event_id: String,
    pub reporter: String,
    pub reason: Option<String>,
    pub score: Option<i64>,
    /// The reported event's sender, when we still hold the event.
    pub sender: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct ReportListQuery {
    pub from: u64,
    pub limit: u64,
    /// Newest first (Synapse's default `dir=b`).
    pub backwards: bool,
    pub room_id: Option<String>,
    pub reporter: Option<String>,
}

pub trait AdminRoomStore: Send + Sync {
    fn all_rooms(&self) -> StoreResult<Vec<AdminRoomRow>>;
    fn event_reports(&self, q: &ReportListQuery) -> StoreResult<(Vec<EventReportRow>, u64)>;
    fn event_report(&self, id: i64) -> StoreResult<Option<EventReportRow>>;
    /// Returns false when there is no such event report.
    fn delete_event_report(&self, id: i64) -> StoreResult<bool>;
    /// The stored JSON of an event.
    fn event_json(&self, event_id: &str) -> StoreResult<Option<String>>;
}
