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
use super::crypto::CryptoPart;
use super::registration::Appservice;
use crate::service::blocking;
use crate::store::appservice::OpenTxn;
use crate::store::appservice_crypto::CryptoAck;
use crate::store::deliveries::DeliveryQueue;

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
    /// The last queue position it covers, acknowledged once accepted; `None`: ephemeral only.
    upto: Option<i64>,
    events: Vec<Raw<ruma::events::AnyTimelineEvent>>,
    ephemeral: Vec<Raw<push_events::v1::EphemeralData>>,
    /// Encrypted appservices (MSC3202): to-device, device lists, key counts.
    crypto: Option<CryptoPart>,
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

    /// The next transaction: the one in flight (same id, same events: after a failure or a
    /// restart), else a new one over the queue's first events, with the buffered ephemeral
    /// events.
    async fn next_txn(&self, a: &Appservice) -> crate::error::Result<Option<Txn>> {
        let (store, deliveries, id, max) = (
            self.store.clone(),
            self.deliveries.clone(),
            a.id().to_owned(),
            self.settings.batch,
        );
        let crypto_store = self.crypto_store.clone();
        let (open, open_crypto, pending) = blocking(move || {
            let queue = DeliveryQueue::Appservice(id.clone());
            let open = store.open_txn(&id)?;
            let open_crypto = crypto_store.open_crypto(&id)?;
            let pending = deliveries.pending_deliveries(&queue, i64::MIN, max)?;
            Ok((open, open_crypto, pending))
        })
        .await?;
        if let Some(open) = open {
            let ids: Vec<_> = pending
                .into_iter()
                .filter(|d| d.pos <= open.upto_pos)
                .map(|d| d.event_id)
                .collect();
            // The same bounds as when it was first sent; every keyed device's counts.
            let crypto = match open_crypto.filter(|_| a.msc3202) {
                Some(upto) => {
                    let from = self.device_list_from(a).await?;
                    Some(
                        self.crypto_part(a, from, upto, true, Default::default())
                            .await?,
                    )
                }
                None => None,
            };
            if ids.is_empty() && crypto.as_ref().is_none_or(CryptoPart::is_empty) {
                // Acknowledged before a crash, or purged: nothing of it is left to send.
                self.finish(a, open.upto_pos, crypto.map(|c| c.ack)).await;
                return Box::pin(self.next_txn(a)).await;
            }
            return Ok(Some(Txn {
                id: open.txn_id.as_str().into(),
                upto: Some(open.upto_pos),
                events: self.client_events(ids).await?,
                ephemeral: vec![],
                crypto,
            }));
        }
        let ephemeral = self.ephemeral.take(a.id());
        let fresh = TransactionId::new();
        let crypto = match a.msc3202 {
            true => Some(self.new_crypto_part(a).await?),
            false => None,
        };
        let last = pending.last().map(|d| d.pos);
        if last.is_none() && crypto.as_ref().is_none_or(CryptoPart::is_empty) {
            return Ok((!ephemeral.is_empty()).then(|| Txn {
                id: fresh,
                upto: None,
                events: vec![],
                ephemeral,
                crypto: None,
            }));
        }
        // Without events (only to-device or device lists) no queue row is covered.
        let upto_pos = last.unwrap_or(i64::MIN);
        let record = OpenTxn {
            txn_id: fresh.to_string(),
            upto_pos,
        };
        let (store, crypto_store, id) = (
            self.store.clone(),
            self.crypto_store.clone(),
            a.id().to_owned(),
        );
        let bounds = crypto.as_ref().map(|c| c.upto);
        blocking(move || match bounds {
            Some(b) => Ok(crypto_store.begin_crypto_txn(&id, &record, b)?),
            None => Ok(store.begin_txn(&id, &record)?),
        })
        .await?;
        let ids = pending.into_iter().map(|d| d.event_id).collect();
        Ok(Some(Txn {
            id: fresh,
            upto: Some(upto_pos),
            events: self.client_events(ids).await?,
            ephemeral,
            crypto,
        }))
    }

    /// Drops acknowledged events from the queue, retrying until the write succeeds so the
    /// same events are never sent again under a new id.
    async fn finish(&self, a: &Appservice, upto: i64, crypto: Option<CryptoAck>) {
        loop {
            let (store, crypto_store, id) = (
                self.store.clone(),
                self.crypto_store.clone(),
                a.id().to_owned(),
            );
            let ack = crypto.clone();
            let done = blocking(move || match ack {
                Some(ack) => Ok(crypto_store.finish_crypto_txn(&id, upto, &ack)?),
                None => Ok(store.finish_txn(&id, upto)?),
            });
            match done.await {
                Ok(()) => return,
                Err(e) => {
                    tracing::warn!(appservice = a.id(), error = %e, "could not acknowledge an appservice transaction; retrying");
                    tokio::time::sleep(self.settings.first_backoff).await;
                }
            }
        }
    }

    /// Sends `txn` until the appservice accepts it, then acknowledges its queue rows.
    async fn deliver(&self, a: &Appservice, txn: Txn) {
        let mut backoff = self.settings.first_backoff;
        loop {
            let mut req = push_events::v1::Request::new(txn.id.clone(), txn.events.clone());
            req.ephemeral = txn.ephemeral.clone();
            if let Some(c) = &txn.crypto {
                c.apply(&mut req);
            }
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
        if let Some(upto) = txn.upto {
            self.finish(a, upto, txn.crypto.map(|c| c.ack)).await;
        }
    }
}
