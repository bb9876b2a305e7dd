//! Storage seam for the audit trail: append one entry to the chain, read entries back in order.

use handover_compliance::{AuditRecord, Checkpoint, NewEntry};

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

    // Signed checkpoints of the chain (`handover_compliance::checkpoint`).
    /// The last entry's (seq, hash), if any.
    fn head(&self) -> StoreResult<Option<(i64, String)>>;
    /// Stores a checkpoint; one already stored for the same seq is kept (returns false).
    fn append_checkpoint(&self, c: &Checkpoint) -> StoreResult<bool>;
    /// Every checkpoint in seq order (a few per day: small).
    fn checkpoints(&self) -> StoreResult<Vec<Checkpoint>>;
}
