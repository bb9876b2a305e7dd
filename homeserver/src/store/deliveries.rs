//! Storage seam for durable per-queue deliveries of committed events (the commit pipeline's
//! `stage` phase, `service/commit/`). A subscriber names the queues an event must reach before
//! it is written; the store inserts one row per queue in the event's own transaction, so an
//! event is never durable without its deliveries, nor a delivery without its event. A consumer
//! (an appservice transaction sender, later the federation outbox) reads its queue in stream
//! order and acknowledges what it has handled.

use std::fmt;
use std::str::FromStr;

use ruma::{OwnedEventId, OwnedRoomId, OwnedServerName};

use super::StoreResult;

/// A durable queue of committed events.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DeliveryQueue {
    /// An application service, by its registration `id`.
    Appservice(String),
    /// Another homeserver (for a federation outbox fed by the pipeline).
    Server(OwnedServerName),
}

impl fmt::Display for DeliveryQueue {
    /// The stored form: `appservice:<id>` or `server:<name>`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeliveryQueue::Appservice(id) => write!(f, "appservice:{id}"),
            DeliveryQueue::Server(name) => write!(f, "server:{name}"),
        }
    }
}

impl FromStr for DeliveryQueue {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.split_once(':') {
            Some(("appservice", id)) if !id.is_empty() => Ok(DeliveryQueue::Appservice(id.into())),
            Some(("server", name)) => OwnedServerName::try_from(name)
                .map(DeliveryQueue::Server)
                .map_err(|e| format!("delivery queue {s:?}: {e}")),
            _ => Err(format!("unknown delivery queue {s:?}")),
        }
    }
}

/// One event waiting in a queue: its stream position (the queue's order) and ids.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingDelivery {
    pub pos: i64,
    pub event_id: OwnedEventId,
    pub room_id: OwnedRoomId,
}

pub trait DeliveryStore: Send + Sync {
    /// Up to `limit` events of `queue` after stream position `after`, oldest first.
    fn pending_deliveries(
        &self,
        queue: &DeliveryQueue,
        after: i64,
        limit: usize,
    ) -> StoreResult<Vec<PendingDelivery>>;
    /// Removes `queue`'s deliveries at or before `upto` (handled); returns how many went.
    fn ack_deliveries(&self, queue: &DeliveryQueue, upto: i64) -> StoreResult<usize>;
    /// The queues holding deliveries (a consumer resumes them at start-up).
    fn delivery_queues(&self) -> StoreResult<Vec<DeliveryQueue>>;
}
