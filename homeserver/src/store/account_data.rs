//! Storage seam for per-user account data (global: `room_id` = "", or per room), including the
//! `m.tag` room tags. Every write takes a position in the global stream so /sync can ask for
//! "what changed since P".

use super::StoreResult;

/// Rewrites one entry's content: gets the current JSON text (if any), returns the new JSON text,
/// or `None` to leave the entry untouched (no stream position is then taken).
pub type ContentUpdate = Box<dyn FnOnce(Option<&str>) -> Option<String> + Send>;

/// One changed entry: `(room_id or "" for global, type, content JSON text)`.
pub type AccountDataRow = (String, String, String);

pub trait AccountDataStore: Send + Sync {
    /// Replaces the entry and returns the stream position it was written at.
    fn set_account_data(
        &self,
        user_id: &str,
        room_id: &str,
        data_type: &str,
        content: &str,
    ) -> StoreResult<i64>;
    fn get_account_data(
        &self,
        user_id: &str,
        room_id: &str,
        data_type: &str,
    ) -> StoreResult<Option<String>>;
    /// Read-modify-write inside one write job, so two concurrent updates (two tag PUTs on the
    /// same room) cannot lose each other. Returns the new position, or `None` if unchanged.
    fn update_account_data(
        &self,
        user_id: &str,
        room_id: &str,
        data_type: &str,
        update: ContentUpdate,
    ) -> StoreResult<Option<i64>>;
    /// Entries written at a position in `(since_pos, upto_pos]`, oldest first. `since_pos = 0`
    /// returns everything up to `upto_pos`.
    fn account_data_since(
        &self,
        user_id: &str,
        since_pos: i64,
        upto_pos: i64,
    ) -> StoreResult<Vec<AccountDataRow>>;
}
