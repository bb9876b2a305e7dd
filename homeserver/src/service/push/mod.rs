//! Push: rules (`/pushrules`), evaluation of each committed event against every recipient's
//! rules (unread/highlight counts, `/notifications`), pushers and delivery to push gateways.
//!
//! `PushEvaluator` is what the room timeline calls after a commit; `PushService` serves the
//! client endpoints and /sync's counts. The payload that leaves the trust is decided by the
//! policy module's `push_format` hook (default: event ids and counts only).

pub mod evaluate;
mod notifications;
mod payload;
mod pushers;
mod rules;
pub mod sender;
mod subscriber;
mod tracker;

use std::sync::Arc;

pub use self::evaluate::PushEvaluator;
pub use self::notifications::UnreadCounts;
pub use self::sender::{PushSender, RetryPolicy};
pub use self::subscriber::PushSubscriber;
pub use self::tracker::Ticket;
use super::rooms::RoomService;
use crate::store::push::PushStore;

pub struct PushService {
    evaluator: Arc<PushEvaluator>,
    rooms: Arc<RoomService>,
    store: Arc<dyn PushStore>,
    /// Serialises ruleset read-modify-writes (rare; a race would lose a user's change).
    rules_lock: tokio::sync::Mutex<()>,
}

impl PushService {
    pub fn new(
        evaluator: Arc<PushEvaluator>,
        rooms: Arc<RoomService>,
        store: Arc<dyn PushStore>,
    ) -> Self {
        Self {
            evaluator,
            rooms,
            store,
            rules_lock: tokio::sync::Mutex::new(()),
        }
    }
}

#[cfg(test)]
mod gateway_tests;
#[cfg(test)]
mod tests;
