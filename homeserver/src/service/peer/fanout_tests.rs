//! Who gets which outbound EDU for typing, receipts and presence (keys and to-device:
//! `e2ee/federation_tests.rs`). The outbox is replaced by a recorder.

use std::sync::Arc;
use std::time::Duration;

use ruma::presence::PresenceState;
use ruma::{OwnedUserId, ServerName};
use serde_json::{Value, json};

use super::RecordingSink;
use crate::service::test_services;
use crate::service::test_util::{remote_join, room, text, user};

fn id(s: &str) -> OwnedUserId {
    s.try_into().unwrap()
}

/// `(destination, edu_type)` pairs, sorted.
fn who(sink: &RecordingSink) -> Vec<(String, String)> {
    let mut v: Vec<_> = sink.sent().into_iter().map(|(d, k, _)| (d, k)).collect();
    v.sort();
    v
}

fn both(kind: &str) -> Vec<(String, String)> {
    vec![
        ("other.nhs.uk".to_owned(), kind.to_owned()),
        ("remote.nhs.uk".to_owned(), kind.to_owned()),
    ]
}

#[tokio::test]
async fn typing_receipts_and_presence_go_to_the_servers_in_the_room() {
    let (s, _d) = test_services();
    let sink = Arc::new(RecordingSink::default());
    s.fanout.set_sink(sink.clone());
    let (alice, dave) = (user(&s, "alice").await, user(&s, "dave").await);
    let shared = room(&s, &alice, "ward", true).await;
    remote_join(&s, &shared, &id("@bob:remote.nhs.uk")).await;
    remote_join(&s, &shared, &id("@bo2:remote.nhs.uk")).await;
    remote_join(&s, &shared, &id("@carol:other.nhs.uk")).await;
    let local_only = room(&s, &alice, "office", true).await;
    s.rooms.join(&local_only, &dave, None).await.unwrap();
    let ev = text(&s, &shared, &alice, "hello").await;
    let local_ev = text(&s, &local_only, &alice, "hello").await;
    sink.clear();

    // Typing: each server once (not once per member); stopping is sent too.
    s.typing
        .set(&shared, &alice, Some(Duration::from_secs(30)))
        .await
        .unwrap();
    assert_eq!(who(&sink), both("m.typing"));
    let content = &sink.sent()[0].2;
    assert_eq!(
        content,
        &json!({ "room_id": shared, "user_id": alice, "typing": true })
    );
    sink.clear();
    s.typing.set(&shared, &alice, None).await.unwrap();
    assert_eq!(who(&sink), both("m.typing"));
    assert_eq!(sink.sent()[0].2["typing"], false);
    sink.clear();
    s.typing
        .set(&local_only, &alice, Some(Duration::from_secs(30)))
        .await
        .unwrap();
    assert!(who(&sink).is_empty(), "no other server in that room");

    // Receipts: public ones only.
    s.receipts
        .set(&shared, &alice, "m.read.private", &ev, None)
        .await
        .unwrap();
    assert!(who(&sink).is_empty());
    s.receipts
        .set(&shared, &alice, "m.read", &ev, None)
        .await
        .unwrap();
    assert_eq!(who(&sink), both("m.receipt"));
    let content: &Value = &sink.sent()[0].2;
    let read = &content[shared.as_str()]["m.read"][alice.as_str()];
    assert_eq!(read["event_ids"], json!([ev]));
    assert!(read["data"]["ts"].as_u64().unwrap() > 0);
    sink.clear();
    s.receipts
        .set(&local_only, &alice, "m.read", &local_ev, None)
        .await
        .unwrap();
    assert!(who(&sink).is_empty());

    // Presence: every server sharing a room with the user; nobody for Dave.
    s.presence
        .set(
            &alice,
            &alice,
            &PresenceState::Unavailable,
            Some("in theatre".into()),
        )
        .await
        .unwrap();
    assert_eq!(who(&sink), both("m.presence"));
    let update = &sink.sent()[0].2["push"][0];
    assert_eq!(update["user_id"], alice.as_str());
    assert_eq!(update["presence"], "unavailable");
    assert_eq!(update["status_msg"], "in theatre");
    sink.clear();
    s.presence
        .set(&dave, &dave, &PresenceState::Online, None)
        .await
        .unwrap();
    assert!(who(&sink).is_empty());
}

#[tokio::test]
async fn what_other_servers_tell_us_is_not_sent_on() {
    let (s, _d) = test_services();
    let sink = Arc::new(RecordingSink::default());
    s.fanout.set_sink(sink.clone());
    let alice = user(&s, "alice").await;
    let shared = room(&s, &alice, "ward", true).await;
    remote_join(&s, &shared, &id("@bob:remote.nhs.uk")).await;
    remote_join(&s, &shared, &id("@carol:other.nhs.uk")).await;
    let ev = text(&s, &shared, &alice, "hello").await;
    sink.clear();
    let origin = <&ServerName>::try_from("remote.nhs.uk").unwrap();
    let edus = [
        json!({ "edu_type": "m.typing", "content": {
            "room_id": shared, "user_id": "@bob:remote.nhs.uk", "typing": true } }),
        json!({ "edu_type": "m.receipt", "content": { shared.as_str(): { "m.read": {
            "@bob:remote.nhs.uk": { "data": { "ts": 1 }, "event_ids": [ev] } } } } }),
        json!({ "edu_type": "m.presence", "content": { "push": [{
            "user_id": "@bob:remote.nhs.uk", "presence": "online", "last_active_ago": 1 }] } }),
    ];
    s.edus
        .handle(
            origin,
            edus.iter()
                .map(|v| ruma::serde::Raw::new(v).unwrap().cast_unchecked())
                .collect(),
        )
        .await;
    assert_eq!(
        s.typing.typing_since(&shared, 0).unwrap(),
        vec![id("@bob:remote.nhs.uk")]
    );
    assert!(who(&sink).is_empty(), "{:?}", sink.sent());
}
