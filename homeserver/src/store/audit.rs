//! Storage seam for the audit trail: append one entry to the chain, read entries back in order.

use handover_compliance::{AuditRecord, NewEntry};

use super::StoreResult;

pub trait AuditStore: Send + Sync {
    /// Seals `entry` onto the end of the chain and stores it in one write job (reading the last
    /// hash inside the writer, so concurrent appends never fork the chain). Returns the entry.
    fn append(&self, entry: NewEntry) -> StoreResult<AuditRecord>;
    /// Entries with seq greater than `after_seq`, in seq order, at most `limit`.
    fn read_after(&self, after_seq: i64, limit: usize) -> StoreResult<Vec<AuditRecord>>;
    /// Entries with `since <= ts < until` (Unix ms) and seq greater than `after_seq`, in seq
    /// order, at most `limit` (page with the last seq returned).
    fn read_between(
        &self,
        since: i64,
        until: i64,
        after_seq: i64,
        limit: usize,
    ) -> StoreResult<Vec<AuditRecord>>;
}
