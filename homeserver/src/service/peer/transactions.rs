//! `PUT /_matrix/federation/v1/send/{txnId}`: a transaction of PDUs and EDUs from another
//! server. PDUs are processed in order, each with its own outcome in the answer (one bad PDU
//! never fails the others); EDUs go to the EDU handlers. A retried transaction (same origin and
//! id) is answered from memory without processing it twice.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use ruma::api::federation::transactions::edu::Edu;
use ruma::serde::Raw;
use ruma::{OwnedEventId, OwnedServerName, OwnedTransactionId, ServerName, TransactionId};
use serde_json::value::RawValue as RawJsonValue;

use super::edu::EduService;
use crate::error::{Error, Result};
use crate::service::rooms::RoomService;

/// The spec's limits per transaction.
const MAX_PDUS: usize = 50;
const MAX_EDUS: usize = 100;
/// Answers kept for retried transactions.
const REMEMBERED: usize = 1024;

type Outcomes = BTreeMap<OwnedEventId, std::result::Result<(), String>>;
type TxnKey = (OwnedServerName, OwnedTransactionId);
/// Answers to recent transactions, and their keys oldest first.
type Remembered = (HashMap<TxnKey, Outcomes>, VecDeque<TxnKey>);

pub struct TransactionService {
    rooms: Arc<RoomService>,
    edus: Arc<EduService>,
    /// One transaction per origin at a time, so retries and PDUs arrive in order.
    busy: Mutex<HashMap<OwnedServerName, Arc<tokio::sync::Mutex<()>>>>,
    done: Mutex<Remembered>,
}

impl TransactionService {
    pub fn new(rooms: Arc<RoomService>, edus: Arc<EduService>) -> Self {
        Self {
            rooms,
            edus,
            busy: Mutex::new(HashMap::new()),
            done: Mutex::new((HashMap::new(), VecDeque::new())),
        }
    }

    pub async fn receive(
        &self,
        origin: &ServerName,
        txn_id: &TransactionId,
        pdus: &[Box<RawJsonValue>],
        edus: Vec<Raw<Edu>>,
    ) -> Result<Outcomes> {
        if pdus.len() > MAX_PDUS || edus.len() > MAX_EDUS {
            return Err(Error::bad_json(format!(
                "a transaction carries at most {MAX_PDUS} PDUs and {MAX_EDUS} EDUs"
            )));
        }
        let lock = self
            .busy
            .lock()
            .expect("busy lock")
            .entry(origin.to_owned())
            .or_default()
            .clone();
        let _one = lock.lock().await;
        let key = (origin.to_owned(), txn_id.to_owned());
        if let Some(prev) = self.done.lock().expect("done lock").0.get(&key) {
            return Ok(prev.clone());
        }
        let mut out = Outcomes::new();
        for raw in pdus {
            let (id, res) = self.rooms.receive_pdu(origin, raw).await;
            match (id, res) {
                (Some(id), res) => {
                    if let Err(e) = &res {
                        tracing::info!(target: "handover::federation", %origin, event_id = %id, error = %e.message(), "PDU refused");
                    }
                    out.insert(id, res.map_err(|e| e.message().to_owned()));
                }
                (None, Err(e)) => {
                    tracing::info!(target: "handover::federation", %origin, error = %e.message(), "unreadable PDU dropped");
                }
                (None, Ok(())) => {}
            }
        }
        if !edus.is_empty() {
            self.edus.handle(origin, edus).await;
        }
        let mut done = self.done.lock().expect("done lock");
        done.0.insert(key.clone(), out.clone());
        done.1.push_back(key);
        while done.1.len() > REMEMBERED {
            if let Some(old) = done.1.pop_front() {
                done.0.remove(&old);
            }
        }
        Ok(out)
    }
}
