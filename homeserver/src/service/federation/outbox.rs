//! Outbound federation traffic: PDUs and EDUs for other servers, sent as `/send` transactions.
//!
//! The API is what the rest of the server uses (`send_pdu`, `send_edu`); how delivery happens
//! (queues, batching, retries) is this module's business. Every destination goes through the
//! gated `FederationClient`, so nothing outside the federation list is ever contacted.

use std::sync::Arc;

use ruma::api::federation::transactions::edu::Edu;
use ruma::api::federation::transactions::send_transaction_message;
use ruma::serde::Raw;
use ruma::{MilliSecondsSinceUnixEpoch, OwnedServerName, OwnedTransactionId, TransactionId};
use serde_json::value::RawValue as RawJsonValue;

use super::client::{FederationClient, Sign};

pub struct Outbox {
    origin: OwnedServerName,
    client: Arc<FederationClient>,
}

impl Outbox {
    pub fn new(origin: OwnedServerName, client: Arc<FederationClient>) -> Self {
        Self { origin, client }
    }

    /// Sends a PDU (its full signed JSON) to each destination. Our own name is skipped.
    pub async fn send_pdu(&self, destinations: Vec<OwnedServerName>, pdu: Box<RawJsonValue>) {
        for dest in destinations.into_iter().filter(|d| *d != self.origin) {
            self.spawn_txn(dest, vec![pdu.clone()], vec![]);
        }
    }

    /// Sends an EDU to one destination.
    pub async fn send_edu(&self, destination: OwnedServerName, edu: Raw<Edu>) {
        if destination != self.origin {
            self.spawn_txn(destination, vec![], vec![edu]);
        }
    }

    fn spawn_txn(&self, dest: OwnedServerName, pdus: Vec<Box<RawJsonValue>>, edus: Vec<Raw<Edu>>) {
        let client = self.client.clone();
        let origin = self.origin.clone();
        tokio::spawn(async move {
            let txn: OwnedTransactionId = TransactionId::new();
            let mut req = send_transaction_message::v1::Request::new(
                txn,
                origin,
                MilliSecondsSinceUnixEpoch::now(),
            );
            req.pdus = pdus;
            req.edus = edus;
            if let Err(e) = client
                .send(&dest, req, "transaction", Sign::AsRequired)
                .await
            {
                tracing::warn!(destination = %dest, error = %e, "transaction not delivered");
            }
        });
    }
}
