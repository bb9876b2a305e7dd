//! Retention over history fetched from other servers: backfilled events (negative positions)
//! and outliers (no position) expire and are erased like any other event.

use ruma::OwnedEventId;
use serde_json::json;

use super::tests::{DAY, Fx, thirty_days};
use crate::store::federated_rooms::FederatedRoomStore;
use crate::store::rooms::NewEvent;

/// A remote message of the test room, sent `age_ms` before now.
fn remote_event(f: &Fx, id: &str, kind: &str, key: Option<&str>, body: &str, age: i64) -> NewEvent {
    let ts = crate::store::now_ms() - age;
    let mut v = json!({
        "type": kind, "room_id": f.room.as_str(), "sender": "@bob:remote.example",
        "content": { "msgtype": "m.text", "body": body, "topic": body },
        "origin_server_ts": ts, "depth": 1, "prev_events": [], "auth_events": [],
    });
    if let Some(k) = key {
        v["state_key"] = json!(k);
    }
    NewEvent {
        event_id: OwnedEventId::try_from(id).unwrap(),
        room_id: f.room.clone(),
        sender: "@bob:remote.example".try_into().unwrap(),
        kind: kind.into(),
        state_key: key.map(str::to_owned),
        depth: 1,
        origin_server_ts: ts,
        json: v.to_string(),
        unsigned: None,
        prev_events: vec![],
        txn: None,
        membership: None,
        relation: None,
        redacts: None,
        resolved_state: vec![],
        deliveries: vec![],
    }
}

#[tokio::test]
async fn backfilled_and_outlier_events_are_purged() {
    let f = Fx::new(thirty_days()).await;
    let old = 40 * DAY;
    let rows = vec![
        remote_event(
            &f,
            "$backfilled-msg",
            "m.room.message",
            None,
            "MARKER-backfilled",
            old,
        ),
        remote_event(
            &f,
            "$backfilled-topic",
            "m.room.topic",
            Some(""),
            "MARKER-bf-topic",
            old,
        ),
        remote_event(
            &f,
            "$backfilled-young",
            "m.room.message",
            None,
            "MARKER-young",
            DAY,
        ),
    ];
    f.store.insert_backfilled(rows).unwrap();
    let outlier = remote_event(
        &f,
        "$outlier",
        "m.room.message",
        None,
        "MARKER-outlier",
        old,
    );
    crate::store::sqlite::insert_outlier(&f.store, &outlier);
    let pos: i64 = f
        .store
        .db
        .read(|c| {
            Ok(c.query_row(
                "SELECT pos FROM events WHERE event_id = '$backfilled-msg'",
                [],
                |r| r.get(0),
            )?)
        })
        .unwrap();
    assert!(pos < 0, "backfilled history sits before the stream: {pos}");

    let r = f.retention.purge("test", false).await.unwrap();
    assert!(r.events_deleted >= 2, "{r:?}");
    for marker in ["MARKER-backfilled", "MARKER-bf-topic", "MARKER-outlier"] {
        assert!(
            !f.db_contains(marker),
            "{marker} still in the database files"
        );
    }
    // Not expired: kept. The historical topic is state: its row stays, minimised.
    assert!(f.db_contains("MARKER-young"));
    assert!(f.store_has("$backfilled-topic"));
    assert!(!f.store_has("$backfilled-msg"));
    assert!(!f.store_has("$outlier"));
}

#[tokio::test]
async fn redacted_backfilled_originals_are_erased() {
    let f = Fx::new(Default::default()).await;
    let ev = remote_event(
        &f,
        "$bf-redacted",
        "m.room.message",
        None,
        "MARKER-bf-red",
        DAY,
    );
    f.store.insert_backfilled(vec![ev]).unwrap();
    // Redacted by a (local) redaction sent now.
    let dev: ruma::OwnedDeviceId = "TESTDEV".into();
    let target = OwnedEventId::try_from("$bf-redacted").unwrap();
    f.s.rooms
        .redact(&f.room, &f.alice, &target, None, (&dev, "r1"))
        .await
        .unwrap();
    f.advance(8 * DAY);
    let r = f.retention.purge("test", false).await.unwrap();
    assert_eq!(r.redacted_erased, 1, "{r:?}");
    assert!(!f.db_contains("MARKER-bf-red"));
}

impl Fx {
    fn store_has(&self, id: &str) -> bool {
        use crate::store::rooms::RoomStore;
        self.store.get_event(id).unwrap().is_some()
    }
}
