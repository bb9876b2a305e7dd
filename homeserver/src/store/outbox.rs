//! Storage seam for the durable outbound federation queue: PDUs and EDUs waiting to be sent to
//! other servers, per destination, in the order they were queued.
//!
//! A batch is *claimed* under a transaction id before it is sent, and the claim is stored, so a
//! retry (even after a restart) resends exactly the same rows under the same id and the
//! receiver's per-transaction dedupe applies. The rows go only when the batch is deleted.

use super::StoreResult;

/// What a queued item is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutboxKind {
    Pdu,
    Edu,
}

impl OutboxKind {
    pub fn as_str(self) -> &'static str {
        match self {
            OutboxKind::Pdu => "pdu",
            OutboxKind::Edu => "edu",
        }
    }
}

/// One queued item: its row id (the queue order) and its JSON.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxItem {
    pub id: i64,
    pub kind: OutboxKind,
    pub json: String,
}

/// A claimed batch: the transaction id it is sent under and its items, oldest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxBatch {
    pub txn_id: String,
    pub items: Vec<OutboxItem>,
}

impl OutboxBatch {
    /// The bytes of the items' JSON.
    pub fn bytes(&self) -> usize {
        self.items.iter().map(|i| i.json.len()).sum()
    }

    /// (PDUs, EDUs) in the batch.
    pub fn counts(&self) -> (u64, u64) {
        let pdus = self
            .items
            .iter()
            .filter(|i| i.kind == OutboxKind::Pdu)
            .count() as u64;
        (pdus, self.items.len() as u64 - pdus)
    }
}

/// How much is queued for one destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueCounts {
    pub destination: String,
    pub pdus: u64,
    pub edus: u64,
}

pub trait OutboxStore: Send + Sync {
    /// Queues `json` once for each destination, after everything already queued for it, in one
    /// write: durable when this returns.
    fn enqueue(
        &self,
        destinations: &[String],
        kind: OutboxKind,
        json: &str,
        queued_ts: i64,
    ) -> StoreResult<()>;
    /// Every destination with queued items, and how many.
    fn queue_counts(&self) -> StoreResult<Vec<QueueCounts>>;
    /// The destination's claimed batch if there is one (a transaction that was not confirmed);
    /// otherwise claims the oldest items under `new_txn_id`: the longest run, in queue order,
    /// with at most `max_pdus` PDUs and `max_edus` EDUs whose JSON totals at most `max_bytes`
    /// (one item over it goes alone). `None` when nothing is queued.
    fn claim_batch(
        &self,
        destination: &str,
        max_pdus: usize,
        max_edus: usize,
        max_bytes: usize,
        new_txn_id: &str,
    ) -> StoreResult<Option<OutboxBatch>>;
    /// Unclaims a batch the receiver never processed (it refused its size or shape), so its
    /// items are claimed again, in order, in smaller batches under new transaction ids.
    fn release_batch(&self, destination: &str, txn_id: &str) -> StoreResult<()>;
    /// Deletes a batch (delivered, or refused for good). Returns how many items went.
    fn delete_batch(&self, destination: &str, txn_id: &str) -> StoreResult<u64>;
    /// Deletes everything queued for `destination`. Returns (PDUs, EDUs) deleted.
    fn drop_destination(&self, destination: &str) -> StoreResult<(u64, u64)>;
}
