//! The appservices as a commit-pipeline subscriber (`service/commit/`): `stage` names the
//! queues of interested appservices (stored in the event's own write), `committed` wakes their
//! workers.
//!
//! The pipeline's `StagedEvent` carries the event but not the room's state, and interest by
//! room members and published aliases needs that state. Until the room service runs the
//! pipeline with state, it stages appservice deliveries itself with the same rules
//! (`rooms/timeline/append.rs` `appservice_queues`, which has the state under the room lock);
//! a queue staged twice is one delivery (the pipeline dedups, the store ignores repeats).

use std::sync::Arc;

use ruma::UserId;
use ruma::events::TimelineEventType;

use super::registry::{EventFacts, Registry};
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
        // Every appservice interested in this room may have a new delivery: waking one with
        // nothing queued costs one empty read.
        let ids: Vec<String> = self.registry.interested(&EventFacts {
            room_id: &ev.pdu.room_id,
            sender: &ev.pdu.sender,
            member_target: None,
            members: ev.wake.iter().map(|u| &**u).collect(),
            aliases: vec![],
        });
        for id in ids {
            self.registry.wake_id(&id);
        }
        Box::pin(std::future::ready(()))
    }
}
