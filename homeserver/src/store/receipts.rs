//! Storage seam for read receipts, and stream positions for in-memory ephemeral data (typing).

use ruma::{OwnedEventId, OwnedUserId};

use super::StoreResult;

#[derive(Debug, Clone)]
pub struct ReceiptRow {
    pub receipt_type: String,
    pub user_id: OwnedUserId,
    pub thread_id: String,
    pub event_id: OwnedEventId,
    pub ts: i64,
}

pub trait ReceiptStore: Send + Sync {
    /// Stores a receipt unless the user already has one at a later event for the same
    /// (type, thread). Returns the new stream position, or `None` if nothing changed.
    fn set_receipt(
        &self,
        room_id: &str,
        receipt_type: &str,
        user_id: &str,
        thread_id: &str,
        event_id: &str,
        ts: i64,
    ) -> StoreResult<Option<i64>>;
    /// Receipts in the room that changed in `(since, upto]`.
    fn receipts_since(&self, room_id: &str, since: i64, upto: i64) -> StoreResult<Vec<ReceiptRow>>;
    /// Position of the latest event the user has read (public or private receipt) in the room.
    fn read_up_to(&self, room_id: &str, user_id: &str) -> StoreResult<Option<i64>>;
    /// Allocates a stream position for data kept in memory, running `apply` before the commit
    /// so a sync can never see the position without the data.
    fn allocate_pos(&self, apply: Box<dyn FnOnce(i64) + Send>) -> StoreResult<i64>;
}
