//! The pipeline's phases, with a recording subscriber.

use std::sync::{Arc, Mutex};

use ruma::{RoomVersionId, room_id};

use super::*;
use crate::service::room_state::RoomState;

/// Records every hook call; its hold records being dropped.
#[derive(Default)]
pub(crate) struct Recorder {
    pub calls: Mutex<Vec<String>>,
}

struct HoldProbe(Arc<Recorder>, String);

impl Drop for HoldProbe {
    fn drop(&mut self) {
        self.0
            .calls
            .lock()
            .unwrap()
            .push(format!("drop {}", self.1));
    }
}

pub(crate) struct RecordingSubscriber(pub Arc<Recorder>);

impl RecordingSubscriber {
    fn log(&self, s: String) {
        self.0.calls.lock().unwrap().push(s);
    }
}

impl CommitSubscriber for RecordingSubscriber {
    fn name(&self) -> &'static str {
        "recorder"
    }
    fn stage(&self, ev: &StagedEvent) -> Vec<DeliveryQueue> {
        self.log(format!("stage {}", ev.pdu.event_id));
        vec![DeliveryQueue::Appservice("test".into())]
    }
    fn before_commit(&self, ev: &StagedEvent) -> Option<Hold> {
        Some(Box::new(HoldProbe(
            self.0.clone(),
            ev.pdu.event_id.to_string(),
        )))
    }
    fn in_order(&self, ev: &Arc<CommittedEvent>, hold: Option<Hold>) {
        self.log(format!("in_order {} {}", ev.pdu.event_id, ev.pos));
        drop(hold);
    }
    fn committed(&self, ev: Arc<CommittedEvent>) -> BoxFuture<'_> {
        Box::pin(async move { self.log(format!("committed {}", ev.pdu.event_id)) })
    }
}

fn member(id: &str, user: &str, membership: &str) -> Arc<Pdu> {
    let json = serde_json::json!({
        "room_id": "!r:x", "sender": user, "origin_server_ts": 1, "type": "m.room.member",
        "state_key": user, "content": { "membership": membership },
        "prev_events": [], "auth_events": [], "depth": 1,
    })
    .to_string();
    Arc::new(Pdu::from_json(id.try_into().unwrap(), room_id!("!r:x"), &json).unwrap())
}

fn staged(pdu: Arc<Pdu>) -> StagedEvent {
    StagedEvent {
        pdu,
        json: "{}".into(),
        origin: CommitOrigin::Local,
    }
}

#[tokio::test]
async fn hooks_run_in_phase_order_and_a_failed_write_releases_holds() {
    let rec = Arc::new(Recorder::default());
    let pipeline = CommitPipeline::new(vec![Arc::new(RecordingSubscriber(rec.clone()))]);
    let mut state = RoomState::new(room_id!("!r:x").to_owned(), RoomVersionId::V11).unwrap();
    state.advance(member("$a", "@a:x", "join"));

    // A write that failed: the staged event is dropped, its hold with it.
    let failed = pipeline.stage(staged(member("$f", "@f:x", "join")));
    assert_eq!(
        failed.deliveries(),
        [DeliveryQueue::Appservice("test".into())]
    );
    drop(failed);

    let ev = member("$b", "@b:y", "leave");
    let s = pipeline.stage(staged(ev.clone()));
    let before = state.joined_servers();
    state.advance(member("$bjoin", "@b:y", "join"));
    let before_leave = state.joined_servers();
    state.advance(ev);
    let tail = pipeline.committed(s, 7, &state, before_leave);
    let e = tail.event().clone();
    // Before or after: the server of the member who left is still told.
    let names: Vec<&str> = e.servers.iter().map(|s| s.as_str()).collect();
    assert_eq!(names, ["x", "y"]);
    assert!(before.iter().all(|s| e.servers.contains(s)));
    // The member who left is woken with the members who remain.
    assert_eq!(e.wake.len(), 2);
    tail.finish().await;
    assert_eq!(
        *rec.calls.lock().unwrap(),
        [
            "stage $f",
            "drop $f",
            "stage $b",
            "in_order $b 7",
            "drop $b",
            "committed $b",
        ]
    );
}
