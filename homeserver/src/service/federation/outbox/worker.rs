//! One destination's worker: claims the oldest batch, sends it as a `/send` transaction, and
//! deletes it once the receiver answered 2xx; retries with backoff otherwise. Runs while the
//! destination has queued items, then exits (the next `send_pdu`/`send_edu` starts a new one).

use std::sync::Arc;
use std::sync::atomic::Ordering;

use ruma::api::federation::transactions::send_transaction_message::v1 as send_txn;
use ruma::serde::Raw;
use ruma::{MilliSecondsSinceUnixEpoch, OwnedServerName, OwnedTransactionId, TransactionId};
use serde_json::value::RawValue as RawJsonValue;
use tokio::sync::watch;

use super::{Backoff, Shared};
use crate::service::blocking;
use crate::service::federation::client::{FederationError, Sign};
use crate::store::outbox::{OutboxBatch, OutboxKind};

/// What became of one attempt.
enum Outcome {
    /// 2xx: the batch is the receiver's now.
    Delivered { rejected_pdus: usize },
    /// The federation list refuses the destination (already audited by the gate).
    Denied,
    /// The receiver refused the transaction itself as malformed (400) or too large (413):
    /// resending the same bytes cannot succeed. A batch of several items is split; a single
    /// item is dropped rather than blocking everything queued behind it.
    Refused(u16, FederationError),
    /// Anything else (unreachable, TLS, timeout, 5xx, 401, 403, 404, 429...): try again later.
    Retry(FederationError),
}

type Answer = Result<(u16, Result<send_txn::Response, FederationError>), FederationError>;

fn classify(answer: Answer) -> Outcome {
    match answer {
        Err(FederationError::Denied { .. }) => Outcome::Denied,
        Err(e) => Outcome::Retry(e),
        Ok((_, Ok(res))) => Outcome::Delivered {
            rejected_pdus: res.pdus.values().filter(|r| r.is_err()).count(),
        },
        // A 2xx whose body does not parse: the receiver has still accepted the transaction.
        Ok((status, Err(_))) if (200..300).contains(&status) => {
            Outcome::Delivered { rejected_pdus: 0 }
        }
        Ok((status @ (400 | 413), Err(e))) => Outcome::Refused(status, e),
        Ok((_, Err(e))) => Outcome::Retry(e),
    }
}

/// The `/send` request for a batch. Rows whose JSON no longer parses (corruption) are left
/// out and counted.
fn request(origin: &OwnedServerName, batch: &OutboxBatch) -> (send_txn::Request, u64) {
    let mut req = send_txn::Request::new(
        OwnedTransactionId::from(batch.txn_id.as_str()),
        origin.clone(),
        MilliSecondsSinceUnixEpoch::now(),
    );
    let mut bad = 0;
    for item in &batch.items {
        match RawJsonValue::from_string(item.json.clone()) {
            Ok(raw) => match item.kind {
                OutboxKind::Pdu => req.pdus.push(raw),
                OutboxKind::Edu => req.edus.push(Raw::from_json(raw)),
            },
            Err(_) => bad += 1,
        }
    }
    (req, bad)
}

/// Sleeps for `d` unless stopped first. Returns false when stopped.
async fn pause(d: std::time::Duration, stop: &mut watch::Receiver<bool>) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(d) => true,
        _ = stop.wait_for(|s| *s) => false,
    }
}

pub(super) async fn run(shared: Arc<Shared>, dest: OwnedServerName) {
    let mut stop = shared.stop.subscribe();
    let s = &shared.settings;
    let mut backoff = Backoff::new(s.retry_initial, s.retry_max);
    let mut failures: u64 = 0;
    // The byte limit this receiver takes (lowered by a 413), and while a 400 is being narrowed
    // down to its item, the smaller limit for that search.
    let mut limit = s.max_txn_bytes;
    let mut probe: Option<usize> = None;
    loop {
        if *stop.borrow() {
            return;
        }
        shared.clear_dirty(&dest);
        let (store, d, new_txn) = (
            shared.store.clone(),
            dest.to_string(),
            TransactionId::new().to_string(),
        );
        let (max_pdus, max_edus) = (s.max_pdus_per_txn, s.max_edus_per_txn);
        let max_bytes = probe.unwrap_or(limit);
        let claimed =
            blocking(move || Ok(store.claim_batch(&d, max_pdus, max_edus, max_bytes, &new_txn)?))
                .await;
        let batch = match claimed {
            Ok(Some(b)) => b,
            Ok(None) => {
                if shared.retire(&dest) {
                    return;
                }
                continue;
            }
            Err(e) => {
                tracing::error!(target: "handover::federation", destination = %dest, error = ?e, "cannot read the outbound queue");
                if !pause(backoff.next_delay(), &mut stop).await {
                    return;
                }
                continue;
            }
        };
        let (req, bad) = request(&shared.origin, &batch);
        if bad > 0 {
            tracing::error!(target: "handover::federation", destination = %dest, items = bad, "queued items with unreadable JSON skipped");
            shared.counters.dropped.fetch_add(bad, Ordering::Relaxed);
        }
        let answer = tokio::select! {
            a = shared.client.send_status(&dest, req, "transaction", Sign::AsRequired) => a,
            _ = stop.wait_for(|s| *s) => return,
        };
        let (pdus, edus) = batch.counts();
        let n = pdus + edus;
        match classify(answer) {
            Outcome::Delivered { rejected_pdus } => {
                delete(&shared, &dest, &batch).await;
                let c = &shared.counters;
                let sent = c.sent.fetch_add(n - bad, Ordering::Relaxed) + n - bad;
                if failures > 0 {
                    tracing::info!(target: "handover::federation", destination = %dest, after_failures = failures, "destination reachable again");
                }
                tracing::debug!(target: "handover::federation", destination = %dest, txn = %batch.txn_id, pdus, edus, rejected_pdus, sent_total = sent, "transaction delivered");
                if rejected_pdus > 0 {
                    tracing::info!(target: "handover::federation", destination = %dest, txn = %batch.txn_id, rejected_pdus, "receiver rejected some PDUs");
                }
                failures = 0;
                probe = None;
                backoff.reset();
            }
            Outcome::Denied => {
                let (store, d) = (shared.store.clone(), dest.to_string());
                match blocking(move || Ok(store.drop_destination(&d)?)).await {
                    Ok((p, e)) => {
                        shared.clear(&dest);
                        shared.counters.dropped.fetch_add(p + e, Ordering::Relaxed);
                        tracing::warn!(target: "handover::federation", destination = %dest, pdus = p, edus = e, "destination refused by the federation list; its outbound queue was dropped");
                    }
                    Err(err) => {
                        tracing::error!(target: "handover::federation", destination = %dest, error = ?err, "cannot drop the outbound queue");
                        if !pause(backoff.next_delay(), &mut stop).await {
                            return;
                        }
                    }
                }
            }
            Outcome::Refused(status, e) if batch.items.len() > 1 => {
                let e = e.to_string();
                // Halve and send again: the receiver processed nothing of it.
                let half = (batch.bytes() / 2).max(1);
                if status == 413 {
                    limit = limit.min(half);
                } else {
                    probe = Some(half);
                }
                tracing::info!(target: "handover::federation", destination = %dest, txn = %batch.txn_id, status, pdus, edus, retry_bytes = half, error = %e, "receiver refused the transaction; splitting it");
                let (store, d, t) = (shared.store.clone(), dest.to_string(), batch.txn_id.clone());
                if let Err(err) = blocking(move || Ok(store.release_batch(&d, &t)?)).await {
                    tracing::error!(target: "handover::federation", destination = %dest, error = ?err, "cannot split a refused batch; it will be sent again");
                    if !pause(backoff.next_delay(), &mut stop).await {
                        return;
                    }
                }
            }
            Outcome::Refused(status, e) => {
                delete(&shared, &dest, &batch).await;
                shared.counters.dropped.fetch_add(n, Ordering::Relaxed);
                let what = batch.items.first().map(describe).unwrap_or_default();
                // An error, not a warning: a lost to-device message may be a lost room key.
                tracing::error!(target: "handover::federation", destination = %dest, txn = %batch.txn_id, status, item = %what, error = %e, "receiver refused a single item; dropped");
                probe = None;
                failures = 0;
                backoff.reset();
            }
            Outcome::Retry(e) => {
                failures += 1;
                let failed = shared.counters.failed.fetch_add(1, Ordering::Relaxed) + 1;
                let wait = backoff.next_delay();
                tracing::warn!(target: "handover::federation", destination = %dest, txn = %batch.txn_id, attempt = failures, retry_in_ms = wait.as_millis() as u64, failed_total = failed, error = %e, "transaction not delivered; will retry");
                if !pause(wait, &mut stop).await {
                    return;
                }
            }
        }
    }
}

/// What a dropped item was, for the log: its kind, and for an EDU its type and any
/// `message_id` (never its content).
fn describe(item: &crate::store::outbox::OutboxItem) -> String {
    let v: serde_json::Value = serde_json::from_str(&item.json).unwrap_or_default();
    match item.kind {
        OutboxKind::Pdu => format!("pdu {}", v["type"].as_str().unwrap_or("?")),
        OutboxKind::Edu => format!(
            "edu {} {}",
            v["edu_type"].as_str().unwrap_or("?"),
            v["content"]["message_id"].as_str().unwrap_or_default()
        ),
    }
}

/// Deletes a finished batch. If that fails, the next claim returns the same batch and it is
/// sent again under the same transaction id, which the receiver recognises.
async fn delete(shared: &Shared, dest: &OwnedServerName, batch: &OutboxBatch) {
    let (store, d, t) = (shared.store.clone(), dest.to_string(), batch.txn_id.clone());
    match blocking(move || Ok(store.delete_batch(&d, &t)?)).await {
        Ok(_) => {
            let (pdus, edus) = batch.counts();
            shared.forget(dest, pdus, edus);
        }
        Err(e) => {
            tracing::error!(target: "handover::federation", destination = %dest, error = ?e, "cannot delete a finished batch; it will be sent again");
        }
    }
}
