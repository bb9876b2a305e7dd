//! Outbound federation traffic: PDUs and EDUs for other servers, sent as `/send` transactions.
//!
//! The API is what the rest of the server uses (`send_pdu`, `send_edu`). Each item is written to
//! a durable per-destination queue (SQLite, `store::outbox`) before the call returns; one worker
//! task per destination with queued items sends them in order, in transactions of at most 50
//! PDUs, 100 EDUs and `max_txn_bytes` of JSON, deletes them only once the receiver answered
//! 2xx, and retries failures with exponential backoff. A transaction refused as too large (413)
//! or malformed (400) is split in halves until the refused item stands alone: only that item
//! is dropped, with an error log, never the rest of the batch (to-device room keys included). `resume` restarts the workers for whatever a previous run left
//! queued. Every request goes through the gated `FederationClient`: a destination the
//! federation list refuses is never contacted, and its queue is dropped.

mod backoff;
mod subscriber;
#[cfg(test)]
mod tests;
mod worker;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use ruma::api::federation::transactions::edu::Edu;
use ruma::serde::Raw;
use ruma::{OwnedServerName, ServerName};
use serde_json::value::RawValue as RawJsonValue;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use self::backoff::Backoff;
pub use self::subscriber::OutboxSubscriber;
use super::client::FederationClient;
use crate::service::blocking;
use crate::store::now_ms;
use crate::store::outbox::{OutboxKind, OutboxStore};

/// Limits and retry timing of the queue.
#[derive(Debug, Clone)]
pub struct OutboxSettings {
    /// PDUs per transaction (the spec's maximum is 50).
    pub max_pdus_per_txn: usize,
    /// EDUs per transaction (the spec's maximum is 100).
    pub max_edus_per_txn: usize,
    /// Bytes of PDU and EDU JSON per transaction: receivers refuse bodies over 1 MiB (Synapse's
    /// limit), so this stays under it with room for the envelope. A 413 lowers it for the
    /// destination while its worker runs.
    pub max_txn_bytes: usize,
    /// Queued PDUs per destination beyond which new ones are dropped (with a warning): a
    /// server that stays away catches up through backfill rather than an unbounded queue.
    pub max_queued_pdus: u64,
    /// The same for EDUs (typing, receipts, presence: worth little when stale).
    pub max_queued_edus: u64,
    /// First retry delay after a failure; it doubles up to `retry_max`.
    pub retry_initial: Duration,
    pub retry_max: Duration,
}

impl Default for OutboxSettings {
    fn default() -> Self {
        Self {
            max_pdus_per_txn: 50,
            max_edus_per_txn: 100,
            max_txn_bytes: 1_000_000,
            max_queued_pdus: 10_000,
            max_queued_edus: 1_000,
            retry_initial: Duration::from_secs(1),
            retry_max: Duration::from_secs(3600),
        }
    }
}

/// Counters since start-up, for logs (and `pending`, what is queued now).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OutboxStats {
    /// Items accepted into the queue.
    pub queued: u64,
    /// Items delivered (the receiver answered 2xx).
    pub sent: u64,
    /// Transaction attempts that failed and will be retried.
    pub failed: u64,
    /// Items discarded: over the cap, refused by the federation list, or refused by the
    /// receiver as malformed.
    pub dropped: u64,
    /// Items queued now, over all destinations.
    pub pending: u64,
}

#[derive(Default)]
struct Counters {
    queued: AtomicU64,
    sent: AtomicU64,
    failed: AtomicU64,
    dropped: AtomicU64,
}

/// One destination's in-memory bookkeeping (the items themselves are in the store).
#[derive(Default)]
struct Queue {
    pdus: u64,
    edus: u64,
    /// The destination's worker, while it runs.
    worker: Option<JoinHandle<()>>,
    /// Something was queued since the worker last looked: it must look again before exiting.
    dirty: bool,
    /// The cap was hit (warned once until the queue is below it again).
    capped: bool,
}

pub struct Outbox {
    shared: Arc<Shared>,
}

/// What the workers share with the API.
pub(super) struct Shared {
    origin: OwnedServerName,
    client: Arc<FederationClient>,
    store: Arc<dyn OutboxStore>,
    settings: OutboxSettings,
    queues: Mutex<HashMap<OwnedServerName, Queue>>,
    counters: Counters,
    /// Set to true to stop every worker (shutdown, or the `Outbox` dropped).
    stop: watch::Sender<bool>,
}

impl Outbox {
    pub fn new(
        origin: OwnedServerName,
        client: Arc<FederationClient>,
        store: Arc<dyn OutboxStore>,
        settings: OutboxSettings,
    ) -> Self {
        Self {
            shared: Arc::new(Shared {
                origin,
                client,
                store,
                settings,
                queues: Mutex::new(HashMap::new()),
                counters: Counters::default(),
                stop: watch::Sender::new(false),
            }),
        }
    }

    /// Queues a PDU (its full signed JSON) for each destination; durable when this returns.
    /// Our own name and repeated names are skipped.
    pub async fn send_pdu(&self, destinations: Vec<OwnedServerName>, pdu: Box<RawJsonValue>) {
        self.enqueue(destinations, OutboxKind::Pdu, pdu.get().to_owned())
            .await;
    }

    /// Queues an EDU for one destination; durable when this returns.
    pub async fn send_edu(&self, destination: OwnedServerName, edu: Raw<Edu>) {
        self.enqueue(
            vec![destination],
            OutboxKind::Edu,
            edu.json().get().to_owned(),
        )
        .await;
    }

    /// Starts a worker for every destination with queued items (left by a previous run).
    /// Returns how many destinations that is. Call once at start-up.
    pub async fn resume(&self) -> crate::error::Result<usize> {
        let store = self.shared.store.clone();
        let counts = blocking(move || Ok(store.queue_counts()?)).await?;
        let mut started = 0;
        for c in counts {
            let Ok(dest) = OwnedServerName::try_from(c.destination.as_str()) else {
                tracing::warn!(target: "handover::federation", destination = %c.destination, "queued items for an invalid server name are left alone");
                continue;
            };
            {
                let mut queues = self.shared.lock();
                let q = queues.entry(dest.clone()).or_default();
                q.pdus = c.pdus;
                q.edus = c.edus;
            }
            tracing::info!(target: "handover::federation", destination = %dest, pdus = c.pdus, edus = c.edus, "resuming outbound queue");
            self.shared.wake(&dest);
            started += 1;
        }
        Ok(started)
    }

    /// Stops every worker and waits for them. Queued items stay in the store for `resume`.
    /// Items queued afterwards are stored but not sent by this instance.
    pub async fn shutdown(&self) {
        self.shared.stop.send_replace(true);
        let handles: Vec<JoinHandle<()>> = self
            .shared
            .lock()
            .values_mut()
            .filter_map(|q| q.worker.take())
            .collect();
        for h in handles {
            let _ = h.await;
        }
    }

    pub fn stats(&self) -> OutboxStats {
        let c = &self.shared.counters;
        let pending = self.shared.lock().values().map(|q| q.pdus + q.edus).sum();
        OutboxStats {
            queued: c.queued.load(Ordering::Relaxed),
            sent: c.sent.load(Ordering::Relaxed),
            failed: c.failed.load(Ordering::Relaxed),
            dropped: c.dropped.load(Ordering::Relaxed),
            pending,
        }
    }

    async fn enqueue(&self, destinations: Vec<OwnedServerName>, kind: OutboxKind, json: String) {
        let mut dests = destinations;
        dests.sort();
        dests.dedup();
        dests.retain(|d| *d != self.shared.origin);
        let dests = self.shared.within_cap(dests, kind);
        if dests.is_empty() {
            return;
        }
        let store = self.shared.store.clone();
        let names: Vec<String> = dests.iter().map(|d| d.to_string()).collect();
        let n = names.len() as u64;
        let written = blocking(move || Ok(store.enqueue(&names, kind, &json, now_ms())?)).await;
        let (pdus, edus) = match kind {
            OutboxKind::Pdu => (1, 0),
            OutboxKind::Edu => (0, 1),
        };
        if let Err(e) = written {
            // Not silently lost: counted and logged. The receiver can still fetch the event
            // later (it is referenced by the next one).
            for d in &dests {
                self.shared.forget(d, pdus, edus);
            }
            self.shared.counters.dropped.fetch_add(n, Ordering::Relaxed);
            tracing::error!(target: "handover::federation", error = ?e, kind = kind.as_str(), destinations = n, "could not queue outbound federation item");
            return;
        }
        self.shared.counters.queued.fetch_add(n, Ordering::Relaxed);
        for d in &dests {
            self.shared.wake(d);
        }
    }
}

impl Drop for Outbox {
    fn drop(&mut self) {
        // Workers hold `Shared`, not the `Outbox`: dropping the last handle stops them.
        self.shared.stop.send_replace(true);
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, HashMap<OwnedServerName, Queue>> {
        self.queues
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The destinations whose queue is below the cap for `kind`, each counted as holding one
    /// more item (reserved before the write, so concurrent callers respect the cap too); the
    /// others lose this item.
    fn within_cap(&self, dests: Vec<OwnedServerName>, kind: OutboxKind) -> Vec<OwnedServerName> {
        let (max_pdus, max_edus) = (self.settings.max_queued_pdus, self.settings.max_queued_edus);
        let mut queues = self.lock();
        dests
            .into_iter()
            .filter(|d| {
                let q = queues.entry(d.clone()).or_default();
                let full = match kind {
                    OutboxKind::Pdu => q.pdus >= max_pdus,
                    OutboxKind::Edu => q.edus >= max_edus,
                };
                if full {
                    self.counters.dropped.fetch_add(1, Ordering::Relaxed);
                    if !q.capped {
                        q.capped = true;
                        tracing::warn!(target: "handover::federation", destination = %d, pdus = q.pdus, edus = q.edus, "outbound queue full; new items for this server are dropped until it catches up");
                    }
                } else {
                    if q.pdus < max_pdus && q.edus < max_edus {
                        q.capped = false;
                    }
                    match kind {
                        OutboxKind::Pdu => q.pdus += 1,
                        OutboxKind::Edu => q.edus += 1,
                    }
                }
                !full
            })
            .collect()
    }

    /// Makes sure `dest`'s worker will see what was just queued: starts one if none runs.
    fn wake(self: &Arc<Self>, dest: &ServerName) {
        if *self.stop.borrow() {
            return;
        }
        let mut queues = self.lock();
        let q = queues.entry(dest.to_owned()).or_default();
        q.dirty = true;
        if q.worker.is_none() {
            q.worker = Some(tokio::spawn(worker::run(self.clone(), dest.to_owned())));
        }
    }

    /// The worker is about to read the queue: later items will set `dirty` again.
    fn clear_dirty(&self, dest: &ServerName) {
        if let Some(q) = self.lock().get_mut(dest) {
            q.dirty = false;
        }
    }

    /// The worker found the queue empty. Returns true if it is to exit (nothing was queued
    /// since it looked). The entry goes unless an item is being written (counted, not yet
    /// stored: its `wake` will start a new worker).
    fn retire(&self, dest: &ServerName) -> bool {
        let mut queues = self.lock();
        let Some(q) = queues.get_mut(dest) else {
            return true;
        };
        if q.dirty {
            return false;
        }
        q.worker = None;
        if q.pdus == 0 && q.edus == 0 {
            queues.remove(dest);
        }
        true
    }

    /// The destination's queue was dropped as a whole.
    fn clear(&self, dest: &ServerName) {
        if let Some(q) = self.lock().get_mut(dest) {
            q.pdus = 0;
            q.edus = 0;
        }
    }

    /// Bookkeeping after a batch left the queue (delivered or dropped).
    fn forget(&self, dest: &ServerName, pdus: u64, edus: u64) {
        if let Some(q) = self.lock().get_mut(dest) {
            q.pdus = q.pdus.saturating_sub(pdus);
            q.edus = q.edus.saturating_sub(edus);
        }
    }
}
