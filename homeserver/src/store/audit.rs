//! Storage seam for the audit trail: append one entry to the chain, read entries back in order.

use handover_compliance::{AuditRecord, Checkpoint, NewEntry};

use super::StoreResult;

/// A search of the trail (the console, subject-access requests): newest first.
#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    /// Entries whose actor or target is exactly this (a user id, room id, server name...).
    pub subject: Option<String>,
    /// Entries naming this rule id.
    pub rule: Option<String>,
    /// Entries with this action (`login`, `policy.denial`, ...).
    pub action: Option<String>,
    /// `since <= ts < until`, Unix ms.
    pub since: Option<i64>,
    pub until: Option<i64>,
    /// Only entries with a lower seq (the next page of a newest-first listing).
    pub before_seq: Option<i64>,
    /// Only entries with a higher seq, and the listing oldest first (the next page of an
    /// export that must not hold every entry at once: `Some(0)` starts it).
    pub after_seq: Option<i64>,
    pub limit: usize,
}

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

    /// Entries matching `q`, newest first, at most `q.limit`.
    fn search(&self, q: &AuditQuery) -> StoreResult<Vec<AuditRecord>>;

    // Signed checkpoints of the chain (`handover_compliance::checkpoint`).
    /// The last entry's (seq, hash), if any.
    fn head(&self) -> StoreResult<Option<(i64, String)>>;
    /// Stores a checkpoint; one already stored for the same seq is kept (returns false).
    fn append_checkpoint(&self, c: &Checkpoint) -> StoreResult<bool>;
    /// Every checkpoint in seq order (a few per day: small).
    fn checkpoints(&self) -> StoreResult<Vec<Checkpoint>>;
}
