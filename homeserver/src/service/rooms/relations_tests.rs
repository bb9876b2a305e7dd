//! /relations and /threads against a real store.

use ruma::api::error::ErrorKind;
use ruma::events::TimelineEventType;
use ruma::{OwnedEventId, OwnedRoomId, OwnedUserId};
use serde_json::{Value, json};

use super::RelationsParams;
use crate::service::Services;
use crate::service::filter::parse_token;
use crate::service::test_services;
use crate::service::test_util::{
    history_visibility, is_kind, join, room, send, text, user, viewer,
};

fn ids(chunk: &[Value]) -> Vec<String> {
    chunk
        .iter()
        .map(|e| e["event_id"].as_str().unwrap().to_owned())
        .collect()
}

async fn relate(
    s: &Services,
    r: &OwnedRoomId,
    sender: &OwnedUserId,
    rel_type: &str,
    parent: &OwnedEventId,
) -> OwnedEventId {
    let (kind, content) = match rel_type {
        "m.annotation" => (
            TimelineEventType::Reaction,
            json!({ "m.relates_to": { "rel_type": rel_type, "event_id": parent, "key": "👍" } }),
        ),
        _ => (
            TimelineEventType::RoomMessage,
            json!({
                "msgtype": "m.text", "body": "reply",
                "m.new_content": { "msgtype": "m.text", "body": "fixed" },
                "m.relates_to": { "rel_type": rel_type, "event_id": parent },
            }),
        ),
    };
    send(s, r, sender, kind, content).await
}

#[tokio::test]
async fn relations_list_children_newest_first_filtered_and_paged() {
    let (s, _d) = test_services();
    let a = user(&s, "alice").await;
    let r = room(&s, &a, "Ward 7", false).await;
    let root = text(&s, &r, &a, "obs at 14:00").await;
    let edit = relate(&s, &r, &a, "m.replace", &root).await;
    let reaction = relate(&s, &r, &a, "m.annotation", &root).await;
    let reply = relate(&s, &r, &a, "m.thread", &root).await;
    let nested = relate(&s, &r, &a, "m.annotation", &reply).await;
    text(&s, &r, &a, "unrelated").await;

    let all = s
        .rooms
        .relations(&r, &root, viewer(&a), RelationsParams::default())
        .await
        .unwrap();
    assert_eq!(
        ids(&all.chunk),
        [&reply, &reaction, &edit].map(|e| e.to_string())
    );
    assert_eq!(all.next_batch, None);
    assert_eq!(all.recursion_depth, None);

    let edits = RelationsParams {
        rel_type: Some("m.replace".into()),
        ..Default::default()
    };
    let got = s
        .rooms
        .relations(&r, &root, viewer(&a), edits)
        .await
        .unwrap();
    assert_eq!(ids(&got.chunk), [edit.to_string()]);
    assert_eq!(got.chunk[0]["content"]["m.new_content"]["body"], "fixed");

    let reactions_as_messages = RelationsParams {
        rel_type: Some("m.annotation".into()),
        event_type: Some("m.room.message".into()),
        ..Default::default()
    };
    let got = s
        .rooms
        .relations(&r, &root, viewer(&a), reactions_as_messages)
        .await
        .unwrap();
    assert!(got.chunk.is_empty());

    // Two pages of one, forwards: oldest first, the token continues after the first.
    let page = |from| RelationsParams {
        forward: true,
        limit: Some(1),
        from,
        ..Default::default()
    };
    let p1 = s
        .rooms
        .relations(&r, &root, viewer(&a), page(None))
        .await
        .unwrap();
    assert_eq!(ids(&p1.chunk), [edit.to_string()]);
    let from = parse_token(p1.next_batch.as_deref().unwrap());
    let p2 = s
        .rooms
        .relations(&r, &root, viewer(&a), page(from))
        .await
        .unwrap();
    assert_eq!(ids(&p2.chunk), [reaction.to_string()]);

    // recurse follows the reaction to the thread reply.
    let deep = RelationsParams {
        recurse: true,
        ..Default::default()
    };
    let got = s
        .rooms
        .relations(&r, &root, viewer(&a), deep)
        .await
        .unwrap();
    assert_eq!(got.chunk.len(), 4);
    assert_eq!(ids(&got.chunk)[0], nested.to_string());
    assert_eq!(
        got.recursion_depth,
        Some(super::relations::MAX_RECURSION_DEPTH)
    );
}

#[tokio::test]
async fn relations_of_an_invisible_parent_are_not_found() {
    let (s, _d) = test_services();
    let (a, b, c) = (
        user(&s, "alice").await,
        user(&s, "bob").await,
        user(&s, "carol").await,
    );
    let r = room(&s, &a, "Ward 7", false).await;
    history_visibility(&s, &r, &a, "joined").await;
    let root = text(&s, &r, &a, "before bob").await;
    relate(&s, &r, &a, "m.replace", &root).await;
    join(&s, &r, &a, &b).await;
    for who in [&b, &c] {
        let err = s
            .rooms
            .relations(&r, &root, viewer(who), RelationsParams::default())
            .await
            .unwrap_err();
        assert!(is_kind(&err, ErrorKind::NotFound), "{err}");
    }
}

#[tokio::test]
async fn threads_are_listed_by_latest_reply_with_participation() {
    let (s, _d) = test_services();
    let (a, b) = (user(&s, "alice").await, user(&s, "bob").await);
    let r = room(&s, &a, "Ward 7", false).await;
    join(&s, &r, &a, &b).await;
    let t1 = text(&s, &r, &a, "bed 3 handover").await;
    let t2 = text(&s, &r, &a, "bed 4 handover").await;
    text(&s, &r, &a, "not a thread").await;
    relate(&s, &r, &b, "m.thread", &t1).await;
    relate(&s, &r, &a, "m.thread", &t2).await;
    let latest = relate(&s, &r, &a, "m.thread", &t1).await;

    let all = s
        .rooms
        .threads(&r, viewer(&b), false, None, None)
        .await
        .unwrap();
    assert_eq!(ids(&all.chunk), [t1.to_string(), t2.to_string()]);
    let agg = &all.chunk[0]["unsigned"]["m.relations"]["m.thread"];
    assert_eq!(agg["count"], 2);
    assert_eq!(agg["latest_event"]["event_id"], latest.as_str());
    assert_eq!(agg["current_user_participated"], true);
    assert_eq!(
        all.chunk[1]["unsigned"]["m.relations"]["m.thread"]["current_user_participated"],
        false
    );

    // Bob only replied in the first thread.
    let mine = s
        .rooms
        .threads(&r, viewer(&b), true, None, None)
        .await
        .unwrap();
    assert_eq!(ids(&mine.chunk), [t1.to_string()]);
    // Alice started both.
    let hers = s
        .rooms
        .threads(&r, viewer(&a), true, None, None)
        .await
        .unwrap();
    assert_eq!(hers.chunk.len(), 2);

    // Paged one at a time.
    let p1 = s
        .rooms
        .threads(&r, viewer(&b), false, None, Some(1))
        .await
        .unwrap();
    assert_eq!(ids(&p1.chunk), [t1.to_string()]);
    let from = parse_token(p1.next_batch.as_deref().unwrap());
    let p2 = s
        .rooms
        .threads(&r, viewer(&b), false, from, Some(1))
        .await
        .unwrap();
    assert_eq!(ids(&p2.chunk), [t2.to_string()]);
}
