//! The transaction in flight to each appservice (`appservice_txns`). The events themselves
//! wait in the commit pipeline's durable queue (`deliveries.rs`, `DeliveryQueue::Appservice`).

use super::StoreResult;

/// A transaction sent (or about to be) and not yet acknowledged: it covers the appservice's
/// queued events up to `upto_pos`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenTxn {
    pub txn_id: String,
    pub upto_pos: i64,
}

pub trait AppserviceStore: Send + Sync {
    fn open_txn(&self, appservice_id: &str) -> StoreResult<Option<OpenTxn>>;
    /// Records the transaction before it is first sent.
    fn begin_txn(&self, appservice_id: &str, txn: &OpenTxn) -> StoreResult<()>;
    /// The appservice accepted it: its events leave the queue and the record goes, in one write.
    fn finish_txn(&self, appservice_id: &str, upto_pos: i64) -> StoreResult<()>;
}
