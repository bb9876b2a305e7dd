//! `CommitPipeline`: runs the registered subscribers' hooks around one event's write.

use std::sync::Arc;

use ruma::events::TimelineEventType;
use ruma::{OwnedServerName, OwnedUserId};

use super::{CommitSubscriber, CommittedEvent, DeliveryQueue, Hold, StagedEvent};
use crate::service::room_state::RoomState;

/// The subscribers, in the order their hooks run. Built once in the wiring.
pub struct CommitPipeline {
    subscribers: Vec<Arc<dyn CommitSubscriber>>,
}

/// An event staged for its write: the deliveries to store with it and the subscribers' holds.
/// Dropping it (the write failed) releases the holds.
pub struct Staged {
    event: StagedEvent,
    deliveries: Vec<DeliveryQueue>,
    holds: Vec<Option<Hold>>,
}

/// The post-lock part of one event's commit: run it (`finish`) before replying.
#[must_use = "the subscribers' `committed` hooks run only in `finish`"]
pub struct Tail {
    subscribers: Vec<Arc<dyn CommitSubscriber>>,
    event: Arc<CommittedEvent>,
}

impl CommitPipeline {
    pub fn new(subscribers: Vec<Arc<dyn CommitSubscriber>>) -> Self {
        Self { subscribers }
    }

    /// Phase 1, under the room lock before the write.
    pub fn stage(&self, event: StagedEvent) -> Staged {
        let mut deliveries: Vec<DeliveryQueue> = self
            .subscribers
            .iter()
            .flat_map(|s| s.stage(&event))
            .collect();
        deliveries.sort();
        deliveries.dedup();
        let holds = self
            .subscribers
            .iter()
            .map(|s| s.before_commit(&event))
            .collect();
        Staged {
            event,
            deliveries,
            holds,
        }
    }

    /// Phase 3, under the room lock right after COMMIT at `pos`: `state` is the room's state
    /// after the event, `servers_before` the servers with joined members before it. Runs the
    /// `in_order` hooks and returns the tail to run once the lock is released.
    pub fn committed(
        &self,
        staged: Staged,
        pos: i64,
        state: &RoomState,
        servers_before: Vec<OwnedServerName>,
    ) -> Tail {
        let Staged { event, holds, .. } = staged;
        let mut servers = servers_before;
        servers.extend(state.joined_servers());
        servers.sort();
        servers.dedup();
        let pdu = event.pdu;
        let mut wake = state.interested_users();
        // A member event also concerns its target (e.g. someone who just left or was kicked).
        if let Some(target) = pdu
            .state_key
            .as_deref()
            .filter(|_| pdu.kind == TimelineEventType::RoomMember)
            && let Ok(t) = OwnedUserId::try_from(target)
        {
            wake.push(t);
        }
        let committed = Arc::new(CommittedEvent {
            pos,
            pdu,
            json: event.json,
            state: state.clone(),
            servers,
            wake,
            origin: event.origin,
        });
        for (s, hold) in self.subscribers.iter().zip(holds) {
            s.in_order(&committed, hold);
        }
        Tail {
            subscribers: self.subscribers.clone(),
            event: committed,
        }
    }
}

impl Staged {
    /// The queues to store with the event (`NewEvent::deliveries`).
    pub fn deliveries(&self) -> Vec<DeliveryQueue> {
        self.deliveries.clone()
    }
}

impl Tail {
    /// Phase 4, after the room lock is released: each subscriber's `committed`, in order.
    pub async fn finish(self) {
        for s in &self.subscribers {
            s.committed(self.event.clone()).await;
        }
    }

    pub fn event(&self) -> &Arc<CommittedEvent> {
        &self.event
    }
}
