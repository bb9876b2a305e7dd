//! The appservices as a commit-pipeline subscriber (`service/commit/`): `stage` names the
//! queues of interested appservices (stored in the event's own write), `committed` wakes their
//! workers.
//!
//! The pipeline's `StagedEvent` carries the event but not the room's state, and interest by
//! room members and published aliases needs that state: the room service adds those queues
//! itself under the room lock (`rooms/timeline/commit.rs` `with_appservices`, the same rules
//! through `facts_of`); a queue named twice is one delivery.

use std::sync::Arc;

use ruma::UserId;
use ruma::events::TimelineEventType;

use super::registry::{EventFacts, Registry, facts_of};
use crate::service::commit::{
    BoxFuture, CommitSubscriber, CommittedEvent, DeliveryQueue, StagedEvent,
};

pub struct AppserviceSubscriber {
    registry: Arc<Registry>,
}

impl AppserviceSubscriber {
    pub fn new(registry: Arc<Registry>) -> Self {
        Self { registry }
    }
}

impl CommitSubscriber for AppserviceSubscriber {
    fn name(&self) -> &'static str {
        "appservices"
    }

    fn stage(&self, ev: &StagedEvent) -> Vec<DeliveryQueue> {
        let pdu = &ev.pdu;
        let target = pdu
            .state_key
            .as_deref()
            .filter(|_| pdu.kind == TimelineEventType::RoomMember)
            .and_then(|k| <&UserId>::try_from(k).ok());
        self.registry
            .interested(&EventFacts {
                room_id: &pdu.room_id,
                sender: &pdu.sender,
                member_target: target,
                members: vec![],
                aliases: vec![],
            })
            .into_iter()
            .map(DeliveryQueue::Appservice)
            .collect()
    }

    fn committed(&self, ev: Arc<CommittedEvent>) -> BoxFuture<'_> {
        // Judged on the state after the event: a superset of who could have been staged for
        // it (waking a worker with nothing queued costs one empty read).
        for id in self.registry.interested(&facts_of(&ev.state, &ev.pdu)) {
            self.registry.wake_id(&id);
        }
        Box::pin(std::future::ready(()))
    }
}
