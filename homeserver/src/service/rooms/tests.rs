//! Room service tests against a real SQLite store in a temp dir.

use std::sync::Arc;

use ruma::api::client::filter::RoomEventFilter;
use ruma::events::{StateEventType, TimelineEventType};
use ruma::{OwnedRoomId, OwnedUserId, RoomVersionId};
use serde_json::json;

use super::format::Viewer;
use super::{CreateRoomParams, EventSpec};
use crate::config::Config;
use crate::error::Error;
use crate::service::Services;
use crate::store::rooms::Direction;
use crate::store::sqlite::SqliteStore;

fn services_at(dir: &std::path::Path) -> Services {
    let store = SqliteStore::open(&dir.join("test.db"), 2).unwrap();
    let config = Config {
        data_dir: dir.to_owned(),
        ..Config::default()
    };
    Services::build(config, store, Arc::new(handover_policy::AllowAll)).unwrap()
}

async fn user(s: &Services, name: &str) -> OwnedUserId {
    s.users
        .create_user(name, Some("a long password"), false, false)
        .await
        .unwrap()
}

fn params() -> CreateRoomParams {
    CreateRoomParams {
        version: None,
        preset: None,
        is_public: false,
        name: Some("Ward 7".into()),
        topic: None,
        alias_localpart: None,
        invite: vec![],
        is_direct: false,
        initial_state: vec![],
        creation_content: None,
        power_level_override: None,
    }
}

fn text(body: &str) -> EventSpec {
    EventSpec::new(
        TimelineEventType::RoomMessage,
        json!({ "msgtype": "m.text", "body": body }),
        None,
    )
}

fn forbidden(e: Error) -> bool {
    matches!(e.kind(), Some(ruma::api::error::ErrorKind::Forbidden))
}

async fn setup() -> (
    Services,
    tempfile::TempDir,
    OwnedUserId,
    OwnedUserId,
    OwnedRoomId,
) {
    let dir = tempfile::tempdir().unwrap();
    let s = services_at(dir.path());
    let (a, b) = (user(&s, "alice").await, user(&s, "bob").await);
    let room = s.rooms.create_room(&a, params()).await.unwrap();
    (s, dir, a, b, room)
}

#[tokio::test]
async fn v12_room_id_is_the_create_hash_and_v10_has_our_server() {
    let (s, _dir, a, _b, room) = setup().await;
    assert!(
        room.server_name().is_none(),
        "v12 room ids carry no server: {room}"
    );
    let state = s.rooms.current_state(&room).await.unwrap();
    let create = state.get(&StateEventType::RoomCreate, "").unwrap();
    assert_eq!(create.event_id.as_str()[1..], room.as_str()[1..]);
    assert_eq!(state.membership_of(&a).as_deref(), Some("join"));
    let mut p = params();
    p.version = Some(RoomVersionId::V10);
    let r10 = s.rooms.create_room(&a, p).await.unwrap();
    assert_eq!(r10.server_name().map(|n| n.as_str()), Some("localhost"));
    let mut bad = params();
    bad.version = Some(RoomVersionId::V5);
    assert!(s.rooms.create_room(&a, bad).await.is_err());
}

#[tokio::test]
async fn events_are_signed_by_the_server_key() {
    let (s, _dir, a, _b, room) = setup().await;
    let dev: ruma::OwnedDeviceId = "D1".into();
    let id = s
        .rooms
        .send_message(&room, &a, text("hi"), (&dev, "t1"))
        .await
        .unwrap();
    let store = SqliteStore::open(&_dir.path().join("test.db"), 1).unwrap();
    let ev = crate::store::rooms::RoomStore::get_event(&store, id.as_str())
        .unwrap()
        .unwrap();
    let obj: ruma::CanonicalJsonObject = serde_json::from_str(&ev.json).unwrap();
    let key = ruma::serde::Base64::<ruma::serde::base64::Standard, _>::new(
        s.keys.keypair.public_key().to_vec(),
    );
    let mut keys = std::collections::BTreeMap::new();
    keys.insert(s.keys.key_id(), key);
    let mut servers = std::collections::BTreeMap::new();
    servers.insert("localhost".to_owned(), keys);
    let rules = RoomVersionId::V12.rules().unwrap();
    let verified = ruma::signatures::verify_event(&servers, &obj, &rules).unwrap();
    assert_eq!(verified, ruma::signatures::Verified::All);
}

#[tokio::test]
async fn only_members_send_and_txn_ids_are_idempotent() {
    let (s, _dir, a, b, room) = setup().await;
    let dev: ruma::OwnedDeviceId = "D1".into();
    assert!(forbidden(
        s.rooms
            .send_message(&room, &b, text("x"), (&dev, "t1"))
            .await
            .unwrap_err()
    ));
    let first = s
        .rooms
        .send_message(&room, &a, text("hi"), (&dev, "t1"))
        .await
        .unwrap();
    let again = s
        .rooms
        .send_message(&room, &a, text("hi"), (&dev, "t1"))
        .await
        .unwrap();
    assert_eq!(first, again);
    // Private room: bob cannot join uninvited (ruma's auth rules), can after an invite.
    assert!(forbidden(s.rooms.join(&room, &b, None).await.unwrap_err()));
    s.rooms.invite(&room, &a, &b, None, false).await.unwrap();
    s.rooms.join(&room, &b, None).await.unwrap();
    s.rooms
        .send_message(&room, &b, text("now I can"), (&dev, "t2"))
        .await
        .unwrap();
}

#[tokio::test]
async fn power_levels_guard_state_and_redaction() {
    let (s, _dir, a, b, room) = setup().await;
    let dev: ruma::OwnedDeviceId = "D1".into();
    s.rooms.invite(&room, &a, &b, None, false).await.unwrap();
    s.rooms.join(&room, &b, None).await.unwrap();
    let name = EventSpec::state(StateEventType::RoomName, "", json!({ "name": "renamed" }));
    assert!(
        forbidden(s.rooms.send_state(&room, &b, name).await.unwrap_err()),
        "PL 0 may not rename"
    );
    let mine = s
        .rooms
        .send_message(&room, &a, text("secret"), (&dev, "t1"))
        .await
        .unwrap();
    assert!(forbidden(
        s.rooms
            .redact(&room, &b, &mine, None, (&dev, "r1"))
            .await
            .unwrap_err()
    ));
    s.rooms
        .redact(&room, &a, &mine, Some("oops".into()), (&dev, "r2"))
        .await
        .unwrap();
    let seen = s
        .rooms
        .get_event(
            &room,
            &mine,
            Viewer {
                user_id: &b,
                device_id: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(seen["content"], json!({}), "redacted content is stripped");
    assert!(seen["unsigned"]["redacted_because"].is_object());
}

#[tokio::test]
async fn pagination_walks_history_both_ways() {
    let (s, _dir, a, _b, room) = setup().await;
    let dev: ruma::OwnedDeviceId = "D1".into();
    for i in 0..25 {
        s.rooms
            .send_message(&room, &a, text(&format!("m{i}")), (&dev, &format!("t{i}")))
            .await
            .unwrap();
    }
    let viewer = Viewer {
        user_id: &a,
        device_id: None,
    };
    let mut only_msgs = RoomEventFilter::default();
    only_msgs.types = Some(vec!["m.room.message".into()]);
    let (mut seen, mut from) = (Vec::new(), None);
    loop {
        let page = s
            .rooms
            .messages(
                &room,
                viewer,
                from,
                None,
                Direction::Backward,
                10,
                &only_msgs,
            )
            .await
            .unwrap();
        seen.extend(
            page.chunk
                .iter()
                .map(|e| e["content"]["body"].as_str().unwrap().to_owned()),
        );
        match page.end {
            Some(t) => from = crate::service::filter::parse_token(&t),
            None => break,
        }
    }
    let expected: Vec<String> = (0..25).rev().map(|i| format!("m{i}")).collect();
    assert_eq!(seen, expected);
    let fwd = s
        .rooms
        .messages(&room, viewer, None, None, Direction::Forward, 5, &only_msgs)
        .await
        .unwrap();
    let bodies: Vec<_> = fwd
        .chunk
        .iter()
        .map(|e| e["content"]["body"].as_str().unwrap())
        .collect();
    assert_eq!(bodies, ["m0", "m1", "m2", "m3", "m4"]);
}

#[tokio::test]
async fn a_page_ending_exactly_at_the_start_reports_no_more() {
    let (s, _dir, a, _b, room) = setup().await;
    let dev: ruma::OwnedDeviceId = "D1".into();
    for i in 0..3 {
        s.rooms
            .send_message(&room, &a, text(&format!("m{i}")), (&dev, &format!("t{i}")))
            .await
            .unwrap();
    }
    let viewer = Viewer {
        user_id: &a,
        device_id: None,
    };
    let mut only_msgs = RoomEventFilter::default();
    only_msgs.types = Some(vec!["m.room.message".into()]);
    let exact = s
        .rooms
        .messages(
            &room,
            viewer,
            None,
            None,
            Direction::Backward,
            3,
            &only_msgs,
        )
        .await
        .unwrap();
    assert_eq!(exact.chunk.len(), 3);
    assert!(exact.end.is_none(), "no more messages before the third");
    let short = s
        .rooms
        .messages(
            &room,
            viewer,
            None,
            None,
            Direction::Backward,
            2,
            &only_msgs,
        )
        .await
        .unwrap();
    assert!(short.end.is_some(), "one more message remains");
}

#[tokio::test]
async fn joined_history_visibility_hides_earlier_messages() {
    let (s, _dir, a, b, room) = setup().await;
    let dev: ruma::OwnedDeviceId = "D1".into();
    let hv = EventSpec::state(
        StateEventType::RoomHistoryVisibility,
        "",
        json!({ "history_visibility": "joined" }),
    );
    s.rooms.send_state(&room, &a, hv).await.unwrap();
    let before = s
        .rooms
        .send_message(&room, &a, text("before bob"), (&dev, "t1"))
        .await
        .unwrap();
    s.rooms.invite(&room, &a, &b, None, false).await.unwrap();
    s.rooms.join(&room, &b, None).await.unwrap();
    let after = s
        .rooms
        .send_message(&room, &a, text("after bob"), (&dev, "t2"))
        .await
        .unwrap();
    let bob = Viewer {
        user_id: &b,
        device_id: None,
    };
    assert!(s.rooms.get_event(&room, &before, bob).await.is_err());
    assert!(s.rooms.get_event(&room, &after, bob).await.is_ok());
    let page = s
        .rooms
        .messages(
            &room,
            bob,
            None,
            None,
            Direction::Backward,
            50,
            &RoomEventFilter::default(),
        )
        .await
        .unwrap();
    assert!(
        page.chunk
            .iter()
            .all(|e| e["content"]["body"] != "before bob")
    );
}

#[tokio::test]
async fn state_and_messages_survive_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let (room, a) = {
        let s = services_at(dir.path());
        let a = user(&s, "alice").await;
        let room = s.rooms.create_room(&a, params()).await.unwrap();
        let dev: ruma::OwnedDeviceId = "D1".into();
        s.rooms
            .send_message(&room, &a, text("persisted"), (&dev, "t1"))
            .await
            .unwrap();
        (room, a)
    };
    let s = services_at(dir.path());
    let dev: ruma::OwnedDeviceId = "D2".into();
    // Appending after a reopen loads state and extremities from disk.
    s.rooms
        .send_message(&room, &a, text("after reopen"), (&dev, "t1"))
        .await
        .unwrap();
    let viewer = Viewer {
        user_id: &a,
        device_id: None,
    };
    let page = s
        .rooms
        .messages(
            &room,
            viewer,
            None,
            None,
            Direction::Backward,
            2,
            &RoomEventFilter::default(),
        )
        .await
        .unwrap();
    let bodies: Vec<_> = page
        .chunk
        .iter()
        .map(|e| e["content"]["body"].as_str().unwrap())
        .collect();
    assert_eq!(bodies, ["after reopen", "persisted"]);
    assert_eq!(
        s.rooms
            .state_event(&room, &a, "m.room.name", "")
            .await
            .unwrap()["content"]["name"],
        "Ward 7"
    );
}

#[tokio::test]
async fn sync_long_poll_wakes_on_a_new_message() {
    let (s, _dir, a, b, room) = setup().await;
    s.rooms.invite(&room, &a, &b, None, false).await.unwrap();
    s.rooms.join(&room, &b, None).await.unwrap();
    let bob = s.users.create_session(&b, None, None).await.unwrap();
    let session = s.users.authenticate(&bob.access_token, None).await.unwrap();
    let initial = s.sync.sync(&session, sync_req(None, 0)).await.unwrap();
    assert!(initial.rooms.join.contains_key(&room));
    let since = crate::service::filter::parse_token(&initial.next_batch);
    let s2 = s.clone();
    let waiter = tokio::spawn(async move {
        s2.sync
            .sync(&session, sync_req(since, 10_000))
            .await
            .unwrap()
    });
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let dev: ruma::OwnedDeviceId = "D1".into();
    let start = std::time::Instant::now();
    s.rooms
        .send_message(&room, &a, text("wake"), (&dev, "t1"))
        .await
        .unwrap();
    let res = tokio::time::timeout(std::time::Duration::from_secs(5), waiter)
        .await
        .unwrap()
        .unwrap();
    assert!(
        start.elapsed() < std::time::Duration::from_secs(2),
        "woken by the send, not the timeout"
    );
    let tl = &res.rooms.join[&room].timeline.events;
    assert_eq!(tl.len(), 1);
    assert_eq!(
        tl[0].get_field::<String>("type").unwrap().as_deref(),
        Some("m.room.message")
    );
}

fn sync_req(since: Option<i64>, timeout_ms: u64) -> crate::service::sync::SyncRequest {
    crate::service::sync::SyncRequest {
        since,
        full_state: false,
        timeout: std::time::Duration::from_millis(timeout_ms),
        filter: Default::default(),
        use_state_after: false,
        set_presence: ruma::presence::PresenceState::Online,
    }
}
