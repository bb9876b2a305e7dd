//! An event into the room's timeline through the commit pipeline (`service/commit/`): staged
//! under the room lock, written with its deliveries, the in-memory state advanced, then the
//! subscribers (push, media binding, sync wake-ups, the federation outbox) told. Local sends,
//! PDUs received over federation and our remote leaves come through here; createRoom, remote
//! joins and remote invites write differently and call the pipeline's phases themselves.

use std::sync::Arc;

use super::super::RoomService;
use super::super::pdu::Pdu;
use super::super::state::{RoomState, StateKey};
use super::build::BuiltEvent;
use crate::error::Result;
use crate::service::blocking;
use crate::service::commit::{CommitOrigin, StagedEvent};
use crate::store::StoreError;
use crate::store::deliveries::DeliveryQueue;
use crate::store::rooms::NewEvent;

pub(in crate::service::rooms) type RoomGuard = tokio::sync::OwnedMutexGuard<Option<RoomState>>;

impl RoomService {
    /// Appends `new` (the record of `built`) under the room lock held by `guard`, with `resolved`
    /// the other state changed at the event by state resolution. The inner error is the store's
    /// (nothing written, no subscriber told); an event id the store holds already means our view
    /// of the room is behind the store's, so the room's state is reloaded on next use. Returns
    /// once every subscriber's `committed` hook has run (the outbox queue is durable).
    pub(in crate::service::rooms) async fn commit_event(
        &self,
        mut guard: RoomGuard,
        built: BuiltEvent,
        mut new: NewEvent,
        origin: CommitOrigin,
        resolved: Vec<(StateKey, Arc<Pdu>)>,
    ) -> Result<std::result::Result<i64, StoreError>> {
        let staged = self.pipeline.stage(StagedEvent {
            pdu: built.pdu.clone(),
            json: built.json,
            origin,
        });
        let before = guard.as_ref().expect("loaded by lock_room");
        new.deliveries = self.with_appservices(staged.deliveries(), before, &built.pdu);
        let store = self.store.clone();
        let pos = match blocking(move || Ok(store.append_event(new))).await? {
            Ok(pos) => pos,
            Err(e) => {
                if matches!(e, StoreError::Conflict("event")) {
                    *guard = None;
                }
                return Ok(Err(e));
            }
        };
        let state = guard.as_mut().expect("loaded by lock_room");
        let servers_before = state.joined_servers();
        state.advance(built.pdu);
        for (key, p) in resolved {
            state.state.insert(key, p);
        }
        let tail = self.pipeline.committed(staged, pos, state, servers_before);
        drop(guard);
        tail.finish().await;
        Ok(Ok(pos))
    }
}

impl RoomService {
    /// The staged deliveries plus the appservices interested in `pdu`, judged on the room's
    /// state before it: its joined members and published aliases, which the pipeline's
    /// `StagedEvent` does not carry (the appservice subscriber's `stage` covers the sender,
    /// the membership target and the room id; a queue named twice is one delivery).
    pub(in crate::service::rooms) fn with_appservices(
        &self,
        mut deliveries: Vec<DeliveryQueue>,
        state: &RoomState,
        pdu: &Pdu,
    ) -> Vec<DeliveryQueue> {
        if self.appservices.is_empty() {
            return deliveries;
        }
        let facts = crate::service::appservice::registry::facts_of(state, pdu);
        let queues = self.appservices.interested(&facts).into_iter();
        deliveries.extend(queues.map(DeliveryQueue::Appservice));
        deliveries.sort();
        deliveries.dedup();
        deliveries
    }
}
