//! The outbox as a commit pipeline subscriber: a committed event goes to the room's other
//! servers (before or after it, on the federation list) when we are the ones to send it: our
//! own events, and joins or leaves other servers made through us as a resident server (to every
//! server but theirs). Queued durably before the client's reply, as `send_pdu` is.

use std::sync::Arc;

use serde_json::value::RawValue as RawJsonValue;

use super::Outbox;
use crate::service::commit::{BoxFuture, CommitOrigin, CommitSubscriber, CommittedEvent};
use crate::service::federation::gate::PeerGate;

pub struct OutboxSubscriber {
    outbox: Arc<Outbox>,
    gate: Arc<PeerGate>,
}

impl OutboxSubscriber {
    pub fn new(outbox: Arc<Outbox>, gate: Arc<PeerGate>) -> Self {
        Self { outbox, gate }
    }
}

impl CommitSubscriber for OutboxSubscriber {
    fn name(&self) -> &'static str {
        "federation_outbox"
    }

    fn committed(&self, ev: Arc<CommittedEvent>) -> BoxFuture<'_> {
        Box::pin(async move {
            let mut servers = ev.servers.clone();
            match &ev.origin {
                CommitOrigin::Local => {}
                CommitOrigin::RemoteRelay(from) => servers.retain(|s| s != from),
                CommitOrigin::LocalViaResident | CommitOrigin::Remote => return,
            }
            let Ok(raw) = RawJsonValue::from_string(ev.json.clone()) else {
                return;
            };
            let servers = self.gate.listed_in_room(&ev.pdu.room_id, servers).await;
            self.outbox.send_pdu(servers, raw).await;
        })
    }
}
