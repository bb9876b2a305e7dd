//! The commit pipeline: what happens around an event's store write, the same for every way an
//! event enters a room (local sends, state and redactions, createRoom, PDUs received over
//! federation, remote join/invite/leave). Post-commit consumers (push evaluation, media binding,
//! sync wake-ups, the federation outbox, appservices) are [`CommitSubscriber`]s registered once
//! in the wiring (`service/wiring/build.rs`); the room service knows only the [`CommitPipeline`].
//!
//! Phases, for one event:
//! 1. under the room lock, before the write: [`CommitSubscriber::stage`] names durable queues the
//!    event must reach (stored in the event's own transaction) and
//!    [`CommitSubscriber::before_commit`] may take a [`Hold`] (e.g. push's tracker ticket, so no
//!    reader sees the event before its pending push counts);
//! 2. the caller writes the event (with the staged deliveries) and advances the room's state;
//! 3. still under the room lock, right after COMMIT: [`CommitSubscriber::in_order`] (room commit
//!    order, must not wait);
//! 4. after the room lock is released, before the client's reply: [`CommitSubscriber::committed`]
//!    of each subscriber in registration order.

mod counter;
mod pipeline;
#[cfg(test)]
mod tests;

use std::any::Any;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use ruma::{OwnedServerName, OwnedUserId};

pub use self::counter::CommitCounter;
pub use self::pipeline::{CommitPipeline, Staged, Tail};
use super::room_state::RoomState;
use super::room_state::pdu::Pdu;
pub use crate::store::deliveries::{DeliveryQueue, PendingDelivery};

/// Where an event came from, and so who federates it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommitOrigin {
    /// Built and signed here: we send it to the room's other servers.
    Local,
    /// Built here but taken into the room by a resident server (our user's remote join or
    /// leave), which sends it on: we do not.
    LocalViaResident,
    /// Received from another server (`/send`, a remote invite): its servers have it.
    Remote,
    /// Another server's join or leave handed to us as a resident server (`send_join`,
    /// `send_leave`): we pass it on to the room's other servers, except this one.
    RemoteRelay(OwnedServerName),
}

/// An event about to be written, as subscribers see it in the `stage` phase.
pub struct StagedEvent {
    pub pdu: Arc<Pdu>,
    /// The PDU JSON as stored and sent.
    pub json: String,
    pub origin: CommitOrigin,
}

/// An event that has just committed, with what subscribers need about the room around it.
pub struct CommittedEvent {
    pub pos: i64,
    pub pdu: Arc<Pdu>,
    /// The PDU JSON (push rule conditions match against it; the outbox sends it).
    pub json: String,
    /// The room's state after the event.
    pub state: RoomState,
    /// Servers with joined members before or after the event (a leave or kick still reaches
    /// the server of the member who left), sorted, without duplicates.
    pub servers: Vec<OwnedServerName>,
    /// Users whose syncs the event concerns: joined and invited members after it, plus the
    /// target of a member event (someone who just left or was kicked).
    pub wake: Vec<OwnedUserId>,
    pub origin: CommitOrigin,
}

/// Something a subscriber keeps from before the write until its `in_order` hook; dropped
/// unused if the write fails.
pub type Hold = Box<dyn Any + Send>;

/// A `committed` hook's future.
pub type BoxFuture<'a> = Pin<Box<dyn Future<Output = ()> + Send + 'a>>;

/// A post-commit consumer of events. Every hook has a default that does nothing.
pub trait CommitSubscriber: Send + Sync {
    /// For logs.
    fn name(&self) -> &'static str;

    /// Under the room lock, before the write: the durable queues this event must reach. The
    /// store inserts one delivery per queue in the event's transaction (none if it fails).
    fn stage(&self, _ev: &StagedEvent) -> Vec<DeliveryQueue> {
        Vec::new()
    }

    /// Under the room lock, before the write: something to keep until `in_order`.
    fn before_commit(&self, _ev: &StagedEvent) -> Option<Hold> {
        None
    }

    /// Under the room lock, right after COMMIT, so in the room's commit order. Must not block
    /// or wait: bookkeeping, a channel send or a spawn.
    fn in_order(&self, _ev: &Arc<CommittedEvent>, _hold: Option<Hold>) {}

    /// After the room lock is released and before the client's reply (which waits for it).
    fn committed(&self, _ev: Arc<CommittedEvent>) -> BoxFuture<'_> {
        Box::pin(std::future::ready(()))
    }
}
