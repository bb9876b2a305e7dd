//! One worker per appservice: pushes its durable queue as `PUT /_matrix/app/v1/transactions/
//! {txnId}`, one transaction at a time, in queue order. A failed transaction is retried with
//! the same id and the same events (exponential backoff, capped) until the appservice accepts
//! it; only then do its events leave the queue. The queue and the claimed transaction id are in
//! the database, so a restart resends the same transaction. Ephemeral events (receipts,
//! typing, presence) ride along in memory only: best effort, lost on restart.

use std::sync::Arc;
use std::time::Duration;

use ruma::api::appservice::event::push_events;
use ruma::serde::Raw;
use ruma::{OwnedTransactionId, TransactionId};
use tokio::sync::Notify;

use super::AppserviceService;
use super::registration::Appservice;
use crate::service::blocking;
use crate::store::appservice::AppserviceBatch;

/// Timing of the workers (tests shorten it).
#[derive(Debug, Clone, Copy)]
pub struct SenderSettings {
    /// Events per transaction.
    pub batch: usize,
    pub first_backoff: Duration,
    pub max_backoff: Duration,
}

impl Default for SenderSettings {
    fn default() -> Self {
        Self {
            batch: 100,
            first_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(5 * 60),
        }
    }
}

/// One transaction ready to send (kept unchanged across retries).
struct Txn {
    id: OwnedTransactionId,
    /// Queue rows to acknowledge once accepted; `None`: ephemeral only.
    stored: Option<String>,
    events: Vec<Raw<ruma::events::AnyTimelineEvent>>,
    ephemeral: Vec<Raw<push_events::v1::EphemeralData>>,
}

impl AppserviceService {
    /// Starts the worker of every appservice with a URL (at start-up: what is queued from
    /// before a restart goes out first).
    pub fn start_workers(self: &Arc<Self>) {
        for a in self.registry.all() {
            if a.url().is_none() {
                continue;
            }
            let Some(waker) = self.registry.waker(a.id()) else {
                continue;
            };
            let (me, a) = (self.clone(), a.clone());
            tokio::spawn(async move { me.worker(a, waker).await });
        }
    }

    async fn worker(self: Arc<Self>, a: Arc<Appservice>, waker: Arc<Notify>) {
        loop {
            let txn = match self.next_txn(&a).await {
                Ok(Some(t)) => t,
                Ok(None) => {
                    waker.notified().await;
                    continue;
                }
                Err(e) => {
                    tracing::warn!(appservice = a.id(), error = %e, "appservice queue unreadable; retrying");
                    tokio::time::sleep(self.settings.first_backoff).await;
                    continue;
                }
            };
            self.deliver(&a, txn).await;
        }
    }

    /// The next transaction: the queue's front batch (already claimed, or newly claimed), with
    /// the buffered ephemeral events when the batch is new.
    async fn next_txn(&self, a: &Appservice) -> crate::error::Result<Option<Txn>> {
        let fresh = TransactionId::new();
        let (store, id, max, f) = (
            self.store.clone(),
            a.id().to_owned(),
            self.settings.batch,
            fresh.to_string(),
        );
        let batch = blocking(move || Ok(store.claim_appservice_batch(&id, max, &f)?)).await?;
        let is_fresh = batch.as_ref().is_none_or(|b| b.txn_id == fresh.as_str());
        let ephemeral = match is_fresh {
            true => self.ephemeral.take(a.id()),
            false => vec![],
        };
        let Some(AppserviceBatch { txn_id, event_ids }) = batch else {
            if ephemeral.is_empty() {
                return Ok(None);
            }
            return Ok(Some(Txn {
                id: fresh,
                stored: None,
                events: vec![],
                ephemeral,
            }));
        };
        let events = self.client_events(event_ids).await?;
        Ok(Some(Txn {
            id: txn_id.as_str().into(),
            stored: Some(txn_id),
            events,
            ephemeral,
        }))
    }

    /// Sends `txn` until the appservice accepts it, then acknowledges its queue rows.
    async fn deliver(&self, a: &Appservice, txn: Txn) {
        let mut backoff = self.settings.first_backoff;
        loop {
            let mut req = push_events::v1::Request::new(txn.id.clone(), txn.events.clone());
            req.ephemeral = txn.ephemeral.clone();
            match self.client.call(a, req).await {
                Ok(_) => break,
                Err(e) => {
                    tracing::warn!(
                        appservice = a.id(), txn_id = %txn.id, error = %e,
                        retry_in_ms = backoff.as_millis() as u64,
                        "appservice transaction not accepted; will retry"
                    );
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(self.settings.max_backoff);
                }
            }
        }
        tracing::debug!(appservice = a.id(), txn_id = %txn.id, events = txn.events.len(), "appservice transaction accepted");
        let Some(stored) = txn.stored else {
            return;
        };
        // Acknowledged to the appservice but not yet deleted here: retried until it is, so
        // the same transaction is never re-sent under a new id.
        loop {
            let (store, id, t) = (self.store.clone(), a.id().to_owned(), stored.clone());
            match blocking(move || Ok(store.ack_appservice_batch(&id, &t)?)).await {
                Ok(()) => return,
                Err(e) => {
                    tracing::warn!(appservice = a.id(), error = %e, "could not acknowledge an appservice transaction; retrying");
                    tokio::time::sleep(self.settings.first_backoff).await;
                }
            }
        }
    }
}
