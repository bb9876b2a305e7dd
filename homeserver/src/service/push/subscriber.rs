//! Push evaluation as a commit pipeline subscriber: the tracker ticket is taken under the room
//! lock before the write (so a /sync never sees the event without its pending counts), and the
//! evaluation is spawned right after COMMIT; the sender's reply does not wait for it.

use std::sync::Arc;

use super::evaluate::PushEvaluator;
use super::tracker::Ticket;
use crate::service::commit::{CommitSubscriber, CommittedEvent, Hold, StagedEvent};

pub struct PushSubscriber(pub Arc<PushEvaluator>);

impl CommitSubscriber for PushSubscriber {
    fn name(&self) -> &'static str {
        "push"
    }

    fn before_commit(&self, ev: &StagedEvent) -> Option<Hold> {
        Some(Box::new(self.0.begin(&ev.pdu.room_id)))
    }

    fn in_order(&self, ev: &Arc<CommittedEvent>, hold: Option<Hold>) {
        match hold.map(|h| h.downcast::<Ticket>()) {
            Some(Ok(ticket)) => self.0.spawn(*ticket, ev.clone()),
            _ => tracing::error!(event_id = %ev.pdu.event_id, "push evaluation without its ticket"),
        }
    }
}
