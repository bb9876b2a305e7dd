//! The commit pipeline on the room service: every committed event reaches a subscriber once, in
//! its room's commit order, whether sent here (createRoom, concurrent sends) or received from
//! another server (a join made through us, a message), with the delivery it staged stored at the
//! event's position; a write that fails stores no delivery and tells no subscriber.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use ruma::{OwnedEventId, OwnedRoomId, OwnedServerName, OwnedUserId};

use super::super::pdu::Pdu;
use super::super::timeline::append::new_event;
use super::super::timeline::build::BuiltEvent;
use super::tests::{REMOTE, joined_room, message, setup_with_subscribers};
use crate::service::commit::{
    BoxFuture, CommitOrigin, CommitSubscriber, CommittedEvent, DeliveryQueue, StagedEvent,
};
use crate::service::test_util;
use crate::store::StoreError;
use crate::store::deliveries::DeliveryStore;

type Seen = (OwnedRoomId, OwnedEventId, i64, CommitOrigin);

#[derive(Default)]
struct Probe {
    in_order: Mutex<Vec<Seen>>,
    committed: Mutex<Vec<OwnedEventId>>,
}

struct ProbeSubscriber(Arc<Probe>);

fn queue() -> DeliveryQueue {
    DeliveryQueue::Appservice("probe".into())
}

impl CommitSubscriber for ProbeSubscriber {
    fn name(&self) -> &'static str {
        "probe"
    }
    fn stage(&self, _ev: &StagedEvent) -> Vec<DeliveryQueue> {
        vec![queue()]
    }
    fn in_order(&self, ev: &Arc<CommittedEvent>, _hold: Option<crate::service::commit::Hold>) {
        let seen = (
            ev.pdu.room_id.clone(),
            ev.pdu.event_id.clone(),
            ev.pos,
            ev.origin.clone(),
        );
        self.0.in_order.lock().unwrap().push(seen);
    }
    fn committed(&self, ev: Arc<CommittedEvent>) -> BoxFuture<'_> {
        self.0
            .committed
            .lock()
            .unwrap()
            .push(ev.pdu.event_id.clone());
        Box::pin(std::future::ready(()))
    }
}

#[tokio::test]
async fn every_commit_reaches_subscribers_once_in_room_order_with_its_delivery() {
    let probe = Arc::new(Probe::default());
    let (s, r, store, _d) = setup_with_subscribers(vec![Arc::new(ProbeSubscriber(probe.clone()))]);
    // createRoom's events (ours) and @bob's join through us as resident (relayed).
    let (room, join) = joined_room(&s, &r).await;
    let alice: OwnedUserId = format!("@alice:{}", s.rooms.server_name())
        .try_into()
        .unwrap();
    let other = test_util::room(&s, &alice, "Ward 8", false).await;
    // Concurrent sends into both rooms.
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..8 {
        let (s, alice) = (s.clone(), alice.clone());
        let target = if i % 2 == 0 {
            room.clone()
        } else {
            other.clone()
        };
        tasks.spawn(async move { test_util::text(&s, &target, &alice, &format!("m{i}")).await });
    }
    let mut sent = Vec::new();
    while let Some(id) = tasks.join_next().await {
        sent.push(id.unwrap());
    }
    // A message from b.nhs.uk, received twice (the second is a duplicate: no commit).
    let state = s.rooms.current_state(&room).await.unwrap();
    assert_eq!(state.extremities.len(), 1);
    let (remote_id, raw) = r.sign(message(&room, &state.extremities[0], &state, "from b"));
    let origin = <&ruma::ServerName>::try_from(REMOTE).unwrap();
    for _ in 0..2 {
        let (got, res) = s.rooms.receive_pdu(origin, &raw).await;
        res.unwrap();
        assert_eq!(got.as_ref(), Some(&remote_id));
    }

    let seen = probe.in_order.lock().unwrap().clone();
    // Once each, in each room's commit order.
    let mut by_id: HashMap<&OwnedEventId, usize> = HashMap::new();
    for (_, id, _, _) in &seen {
        *by_id.entry(id).or_default() += 1;
    }
    assert!(by_id.values().all(|n| *n == 1), "an event seen twice");
    for r in [&room, &other] {
        let positions: Vec<i64> = seen
            .iter()
            .filter(|(rid, ..)| rid == r)
            .map(|(_, _, pos, _)| *pos)
            .collect();
        assert!(positions.windows(2).all(|w| w[0] < w[1]), "{positions:?}");
    }
    let origin_of = |id: &OwnedEventId| {
        seen.iter()
            .find(|(_, e, ..)| e == id)
            .map(|(.., o)| o.clone())
    };
    let remote: OwnedServerName = REMOTE.try_into().unwrap();
    assert_eq!(origin_of(&join), Some(CommitOrigin::RemoteRelay(remote)));
    assert_eq!(origin_of(&remote_id), Some(CommitOrigin::Remote));
    for id in &sent {
        assert_eq!(origin_of(id), Some(CommitOrigin::Local));
    }
    // createRoom's events came through too (create, creator's join, power levels, ...).
    let initial = seen
        .iter()
        .filter(|(rid, id, ..)| *rid == other && !sent.contains(id))
        .count();
    assert!(initial >= 3, "createRoom's events are committed events");
    // The `committed` hook ran once for each event too.
    let mut committed = probe.committed.lock().unwrap().clone();
    let mut ids: Vec<OwnedEventId> = seen.iter().map(|(_, id, ..)| id.clone()).collect();
    committed.sort();
    ids.sort();
    assert_eq!(committed, ids);
    // Each committed event's staged delivery is stored at its position.
    let deliveries = store.pending_deliveries(&queue(), 0, 1000).unwrap();
    let mut stored: Vec<(OwnedEventId, i64)> = deliveries
        .iter()
        .map(|d| (d.event_id.clone(), d.pos))
        .collect();
    let mut expected: Vec<(OwnedEventId, i64)> = seen
        .iter()
        .map(|(_, id, pos, _)| (id.clone(), *pos))
        .collect();
    stored.sort();
    expected.sort();
    assert_eq!(stored, expected);

    // The remote event once more, past the duplicate check: the write fails (the id exists),
    // no delivery is stored and no subscriber hears of it.
    let guard = s.rooms.lock_room(&room).await.unwrap();
    let pdu = Pdu::from_json(remote_id.clone(), &room, raw.get()).unwrap();
    let bob = pdu.sender.clone();
    let built = BuiltEvent {
        pdu: Arc::new(pdu),
        json: raw.get().to_owned(),
    };
    let new = new_event(guard.as_ref().unwrap(), &built, &bob, None).unwrap();
    let res = s
        .rooms
        .commit_event(guard, built, new, CommitOrigin::Remote, vec![])
        .await
        .unwrap();
    assert!(matches!(res, Err(StoreError::Conflict("event"))), "{res:?}");
    let after = store.pending_deliveries(&queue(), 0, 1000).unwrap();
    assert_eq!(after.len(), deliveries.len());
    assert_eq!(probe.in_order.lock().unwrap().len(), seen.len());
    // The room still works (its state was reloaded).
    test_util::text(&s, &room, &alice, "after").await;
}
