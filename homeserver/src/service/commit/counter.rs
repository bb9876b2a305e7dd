//! The `handover_events_committed_total` metric, as a commit subscriber: every event that enters
//! a room by any path (local sends, createRoom, federation, remote joins) is counted once, by
//! where it came from, without a line in any send path.

use std::sync::Arc;

use super::{CommitOrigin, CommitSubscriber, CommittedEvent, Hold};

pub struct CommitCounter;

impl CommitSubscriber for CommitCounter {
    fn name(&self) -> &'static str {
        "metrics"
    }

    fn in_order(&self, ev: &Arc<CommittedEvent>, _hold: Option<Hold>) {
        let origin = match ev.origin {
            CommitOrigin::Local | CommitOrigin::LocalViaResident => "local",
            CommitOrigin::Remote | CommitOrigin::RemoteRelay(_) => "federation",
        };
        crate::metrics::events_committed(origin, 1);
    }
}
