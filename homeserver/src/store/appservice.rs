//! The durable per-appservice event queue (`appservice_queue`). Rows are added in the same
//! write as their event (see `rooms::NewEvent::appservices`); a worker claims them into a
//! transaction and deletes them once the appservice acknowledged it.

use ruma::OwnedEventId;

use super::StoreResult;

/// A batch of queued events under one transaction id, oldest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppserviceBatch {
    pub txn_id: String,
    pub event_ids: Vec<OwnedEventId>,
}

pub trait AppserviceStore: Send + Sync {
    /// The batch to send next: the one already claimed (sent before, not acknowledged: same id
    /// and events again), else up to `max` unclaimed events claimed under `new_txn_id`.
    fn claim_appservice_batch(
        &self,
        appservice_id: &str,
        max: usize,
        new_txn_id: &str,
    ) -> StoreResult<Option<AppserviceBatch>>;
    /// The appservice acknowledged `txn_id`: its events leave the queue.
    fn ack_appservice_batch(&self, appservice_id: &str, txn_id: &str) -> StoreResult<()>;
    /// How many events wait for `appservice_id` (metrics, tests).
    fn appservice_queue_len(&self, appservice_id: &str) -> StoreResult<u64>;
}
