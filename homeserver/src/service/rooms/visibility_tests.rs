//! History visibility through the read paths, against a real store: forgotten rooms, bundled
//! edits, lazy-loaded members and the setting in force at each event.

use ruma::api::client::filter::{LazyLoadOptions, RoomEventFilter};
use ruma::api::error::ErrorKind;
use ruma::events::{StateEventType, TimelineEventType};
use ruma::{EventId, OwnedRoomId, UserId};
use serde_json::Value;

use crate::service::Services;
use crate::service::rooms::EventSpec;
use crate::service::test_services;
use crate::service::test_util::{
    history_visibility, is_kind, join, room, send, text, user, viewer,
};
use crate::store::rooms::Direction;

/// Bodies of the messages `user` gets from /messages (backwards from now), oldest first.
async fn bodies(s: &Services, r: &OwnedRoomId, u: &UserId) -> crate::error::Result<Vec<String>> {
    let page = s
        .rooms
        .messages(
            r,
            viewer(u),
            None,
            None,
            Direction::Backward,
            100,
            &RoomEventFilter::default(),
        )
        .await?;
    let mut out: Vec<String> = page
        .chunk
        .iter()
        .filter_map(|e| e["content"]["body"].as_str().map(str::to_owned))
        .collect();
    out.reverse();
    Ok(out)
}

async fn event(s: &Services, r: &OwnedRoomId, id: &EventId, u: &UserId) -> Option<Value> {
    s.rooms.get_event(r, id, viewer(u)).await.ok()
}

#[tokio::test]
async fn a_forgotten_room_is_no_longer_readable() {
    let (s, _d) = test_services();
    let (a, b) = (user(&s, "alice").await, user(&s, "bob").await);
    let r = room(&s, &a, "Ward 7", false).await;
    join(&s, &r, &a, &b).await;
    let msg = text(&s, &r, &a, "obs at 14:00").await;
    s.rooms.leave(&r, &b, None).await.unwrap();
    // Left: history up to the leave is still readable.
    assert!(event(&s, &r, &msg, &b).await.is_some());
    assert_eq!(bodies(&s, &r, &b).await.unwrap(), ["obs at 14:00"]);

    s.rooms.forget(&r, &b).await.unwrap();
    assert!(event(&s, &r, &msg, &b).await.is_none());
    let e = bodies(&s, &r, &b).await.unwrap_err();
    assert!(is_kind(&e, ErrorKind::Forbidden), "{e:?}");
    assert!(s.rooms.visible_state(&r, viewer(&b)).await.is_err());
    // A rejoin clears the flag: the room is readable again.
    join(&s, &r, &a, &b).await;
    assert!(event(&s, &r, &msg, &b).await.is_some());
}

async fn edit(s: &Services, r: &OwnedRoomId, u: &UserId, target: &EventId, body: &str) {
    let content = serde_json::json!({
        "msgtype": "m.text", "body": format!("* {body}"),
        "m.new_content": { "msgtype": "m.text", "body": body },
        "m.relates_to": { "rel_type": "m.replace", "event_id": target },
    });
    send(s, r, u, TimelineEventType::RoomMessage, content).await;
}

fn bundled_edit(ev: &Value) -> Option<&str> {
    ev["unsigned"]["m.relations"]["m.replace"]["content"]["m.new_content"]["body"].as_str()
}

fn sync_req(since: Option<i64>) -> crate::service::sync::SyncRequest {
    crate::service::sync::SyncRequest {
        since,
        full_state: false,
        timeout: std::time::Duration::ZERO,
        filter: Default::default(),
        use_state_after: false,
        set_presence: ruma::presence::PresenceState::Online,
    }
}

#[tokio::test]
async fn edits_after_a_leave_are_not_bundled() {
    let (s, _d) = test_services();
    let (a, b) = (user(&s, "alice").await, user(&s, "bob").await);
    let r = room(&s, &a, "Ward 7", false).await;
    join(&s, &r, &a, &b).await;
    let bob = s.users.create_session(&b, None, None).await.unwrap();
    let bob = s.users.authenticate(&bob.access_token, None).await.unwrap();
    let first = s.sync.sync(&bob, sync_req(None)).await.unwrap();
    let since = crate::service::filter::parse_token(&first.next_batch);

    let msg = text(&s, &r, &a, "BP 120/80").await;
    edit(&s, &r, &a, &msg, "BP 120/85").await;
    s.rooms.leave(&r, &b, None).await.unwrap();
    edit(&s, &r, &a, &msg, "BP 150/95 after bob left").await;

    // Alice sees the latest edit; Bob the last one before he left, on every read path.
    let ev = event(&s, &r, &msg, &a).await.unwrap();
    assert_eq!(bundled_edit(&ev), Some("BP 150/95 after bob left"));
    let ev = event(&s, &r, &msg, &b).await.unwrap();
    assert_eq!(bundled_edit(&ev), Some("BP 120/85"), "/event: {ev}");
    let page = s
        .rooms
        .messages(
            &r,
            viewer(&b),
            None,
            None,
            Direction::Backward,
            100,
            &RoomEventFilter::default(),
        )
        .await
        .unwrap();
    let orig = page
        .chunk
        .iter()
        .find(|e| e["event_id"] == msg.as_str())
        .unwrap();
    assert_eq!(bundled_edit(orig), Some("BP 120/85"), "/messages: {orig}");
    let (ev, _, _) = s
        .rooms
        .context(&r, &msg, viewer(&b), 10, &RoomEventFilter::default())
        .await
        .unwrap();
    assert_eq!(bundled_edit(&ev), Some("BP 120/85"), "/context: {ev}");
    let res = s.sync.sync(&bob, sync_req(since)).await.unwrap();
    let tl: Vec<Value> = res.rooms.leave[&r]
        .timeline
        .events
        .iter()
        .map(|e| serde_json::from_str(e.json().get()).unwrap())
        .collect();
    let orig = tl.iter().find(|e| e["event_id"] == msg.as_str()).unwrap();
    assert_eq!(bundled_edit(orig), Some("BP 120/85"), "/sync: {orig}");
    assert!(
        tl.iter().all(|e| !e.to_string().contains("after bob left")),
        "nothing after the leave in /sync"
    );
}

#[tokio::test]
async fn lazy_loaded_members_are_those_at_the_events() {
    let (s, _d) = test_services();
    let (a, b, c) = (
        user(&s, "alice").await,
        user(&s, "bob").await,
        user(&s, "carol").await,
    );
    let r = room(&s, &a, "Ward 7", false).await;
    join(&s, &r, &a, &b).await;
    join(&s, &r, &a, &c).await;
    text(&s, &r, &b, "handover for bed 4").await;
    s.rooms.leave(&r, &c, None).await.unwrap();
    // After Carol left, Bob's profile changes: she must not learn of it.
    let rename = EventSpec::state(
        StateEventType::RoomMember,
        b.as_str(),
        serde_json::json!({ "membership": "join", "displayname": "Bob (moved to ICU)" }),
    );
    s.rooms.send_state(&r, &b, rename).await.unwrap();

    let mut filter = RoomEventFilter::default();
    filter.lazy_load_options = LazyLoadOptions::Enabled {
        include_redundant_members: false,
    };
    let page = s
        .rooms
        .messages(
            &r,
            viewer(&c),
            None,
            None,
            Direction::Backward,
            100,
            &filter,
        )
        .await
        .unwrap();
    let bob = page
        .state
        .iter()
        .find(|e| e["state_key"] == b.as_str())
        .expect("Bob's member event is lazy-loaded");
    assert_eq!(bob["content"]["membership"], "join");
    assert_ne!(bob["content"]["displayname"], "Bob (moved to ICU)", "{bob}");
    // Alice, still joined, pages over the rename itself and gets Bob as of then.
    let page = s
        .rooms
        .messages(
            &r,
            viewer(&a),
            None,
            None,
            Direction::Backward,
            100,
            &filter,
        )
        .await
        .unwrap();
    let bob = page
        .state
        .iter()
        .find(|e| e["state_key"] == b.as_str())
        .unwrap();
    assert_eq!(bob["content"]["displayname"], "Bob (moved to ICU)");
}

#[tokio::test]
async fn history_visibility_is_the_setting_at_each_event() {
    let (s, _d) = test_services();
    let (a, b, c) = (
        user(&s, "alice").await,
        user(&s, "bob").await,
        user(&s, "carol").await,
    );
    let r = room(&s, &a, "Ward 7", false).await;
    history_visibility(&s, &r, &a, "joined").await;
    let early = text(&s, &r, &a, "before bob joined").await;
    join(&s, &r, &a, &b).await;
    text(&s, &r, &a, "while bob is here").await;
    history_visibility(&s, &r, &a, "world_readable").await;
    text(&s, &r, &a, "now world readable").await;

    // Opening the room does not open what was sent under `joined`.
    assert!(event(&s, &r, &early, &b).await.is_none());
    assert_eq!(
        bodies(&s, &r, &b).await.unwrap(),
        ["while bob is here", "now world readable"]
    );
    // Carol never joined: she reads only from the change on.
    assert!(event(&s, &r, &early, &c).await.is_none());
    assert_eq!(bodies(&s, &r, &c).await.unwrap(), ["now world readable"]);

    // Closing it again: no more reading from outside, even of the world-readable part.
    history_visibility(&s, &r, &a, "joined").await;
    let e = bodies(&s, &r, &c).await.unwrap_err();
    assert!(is_kind(&e, ErrorKind::Forbidden), "{e:?}");
}

#[tokio::test]
async fn sliding_sync_bundles_no_edit_made_while_away() {
    use ruma::api::client::sync::sync_events::v5::{Request, request};
    let (s, _d) = test_services();
    let (a, b) = (user(&s, "alice").await, user(&s, "bob").await);
    let r = room(&s, &a, "Ward 7", false).await;
    history_visibility(&s, &r, &a, "joined").await;
    join(&s, &r, &a, &b).await;
    let msg = text(&s, &r, &a, "BP 120/80").await;
    s.rooms.leave(&r, &b, None).await.unwrap();
    edit(&s, &r, &a, &msg, "BP 150/95 while bob was away").await;
    // Back in the room: the message is his to see again, the edit made while away is not.
    join(&s, &r, &a, &b).await;

    let bob = s.users.create_session(&b, None, None).await.unwrap();
    let bob = s.users.authenticate(&bob.access_token, None).await.unwrap();
    let mut list = request::List::default();
    list.ranges = vec![(ruma::uint!(0), ruma::uint!(9))];
    list.room_details.timeline_limit = ruma::uint!(20);
    let mut req = Request::new();
    req.lists.insert("all".into(), list);
    let res = s.sliding_sync.sync(&bob, req).await.unwrap();
    let tl: Vec<Value> = res.rooms[&r]
        .timeline
        .iter()
        .map(|e| serde_json::from_str(e.json().get()).unwrap())
        .collect();
    let orig = tl
        .iter()
        .find(|e| e["event_id"] == msg.as_str())
        .unwrap_or_else(|| panic!("{tl:?}"));
    assert_eq!(bundled_edit(orig), None, "sliding sync: {orig}");
    assert!(
        event(&s, &r, &msg, &b)
            .await
            .is_some_and(|e| bundled_edit(&e).is_none())
    );
}
