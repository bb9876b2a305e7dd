//! Simplified Sliding Sync (MSC4186) through matrix-sdk's `SlidingSync` (the engine under
//! Element X's room list): discovery via `/versions`, a room list with bob's rooms, and a new
//! (encrypted) message from alice arriving with an unread count.

use std::time::Duration;

use handover_e2e::*;
use matrix_sdk::ruma::api::client::room::create_room::v3::Request as CreateRoomRequest;
use matrix_sdk::ruma::events::StateEventType;
use matrix_sdk::ruma::events::room::message::{
    OriginalSyncRoomMessageEvent, RoomMessageEventContent,
};
use matrix_sdk::ruma::{OwnedRoomId, user_id};
use matrix_sdk::sliding_sync::Version as SlidingSyncVersion;
use matrix_sdk::{Client, Room, SlidingSync, SlidingSyncList, SlidingSyncMode};
use tokio::sync::mpsc;

async fn alice_room_with_bob(alice: &Client, bob: &Client, name: &str) -> OwnedRoomId {
    let mut req = CreateRoomRequest::new();
    req.name = Some(name.to_owned());
    let room = alice.create_room(req).await.expect("create room");
    room.invite_user_by_id(user_id!("@bob:localhost"))
        .await
        .expect("invite bob");
    bob.join_room_by_id(room.room_id())
        .await
        .expect("bob joins");
    room.room_id().to_owned()
}

async fn max_rooms(ss: &SlidingSync) -> Option<u32> {
    ss.on_list("all_rooms", |l| {
        let n = l.maximum_number_of_rooms();
        async move { n }
    })
    .await
    .flatten()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sliding_sync_room_list_and_unread_count() {
    with_timeout(180, async {
        let server = TestServer::start().await;
        let alice = server.register("alice").await;
        let bob = server.register("bob").await;

        // Discovery: /versions advertises org.matrix.simplified_msc3575.
        let versions = bob.available_sliding_sync_versions().await;
        assert!(
            versions
                .iter()
                .any(|v| matches!(v, SlidingSyncVersion::Native)),
            "matrix-sdk must discover native sliding sync from /versions, got {versions:?}"
        );
        bob.set_sliding_sync_version(SlidingSyncVersion::Native);

        // Alice uses classic /sync; she needs bob's device keys for the encrypted rooms.
        sync_until(&alice, 30, "alice initial sync", |_| Some(())).await;

        let ss = bob
            .sliding_sync("e2e-room-list")
            .expect("sliding sync builder")
            .add_list(
                SlidingSyncList::builder("all_rooms")
                    .sync_mode(SlidingSyncMode::new_selective().add_range(0..=19))
                    .timeline_limit(10)
                    // As Element X's room list: the state needed to name and badge rooms.
                    .required_state(vec![
                        (StateEventType::RoomName, "".to_owned()),
                        (StateEventType::RoomEncryption, "".to_owned()),
                        (StateEventType::RoomCreate, "".to_owned()),
                        (StateEventType::RoomPowerLevels, "".to_owned()),
                        (StateEventType::RoomMember, "$LAZY".to_owned()),
                        (StateEventType::RoomMember, "$ME".to_owned()),
                    ]),
            )
            .with_all_extensions()
            .poll_timeout(Duration::from_secs(1))
            .build()
            .await
            .expect("build sliding sync");

        // First request: uploads bob's device keys (e2ee extension path), no rooms yet.
        within(30, "first sliding sync", ss.sync_once())
            .await
            .expect("sliding sync");
        assert_eq!(max_rooms(&ss).await, Some(0), "bob has no rooms yet");

        let room_a = alice_room_with_bob(&alice, &bob, "room A").await;
        let room_b = alice_room_with_bob(&alice, &bob, "room B").await;

        // The room list lists both rooms, with their names.
        let mut last = String::new();
        let listed = tokio::time::timeout(Duration::from_secs(30), async {
            loop {
                let summary = ss.sync_once().await.expect("sliding sync");
                let name = |id: &OwnedRoomId| bob.get_room(id).map(|r| (r.state(), r.name()));
                let max = max_rooms(&ss).await;
                last = format!(
                    "max_rooms={max:?} room A={:?} room B={:?} last summary={summary:?}",
                    name(&room_a),
                    name(&room_b)
                );
                let have_a = bob
                    .get_room(&room_a)
                    .is_some_and(|r| r.name().as_deref() == Some("room A"));
                let have_b = bob
                    .get_room(&room_b)
                    .is_some_and(|r| r.name().as_deref() == Some("room B"));
                if have_a && have_b && max == Some(2) {
                    break;
                }
            }
        })
        .await;
        assert!(
            listed.is_ok(),
            "sliding sync did not list bob's two rooms within 30s: {last}"
        );
        for id in [&room_a, &room_b] {
            let r = bob.get_room(id).unwrap();
            assert_eq!(r.state(), matrix_sdk::RoomState::Joined);
            assert_eq!(
                r.unread_notification_counts().notification_count,
                0,
                "no messages yet in {id}"
            );
        }

        // Room list order (Element X sorts by the server's bump_stamp): room B, joined last,
        // is more recent than room A.
        let stamp = |id: &OwnedRoomId| {
            bob.get_room(id)
                .and_then(|r| r.recency_stamp())
                .map(u64::from)
        };
        let (a0, b0) = (stamp(&room_a), stamp(&room_b));
        assert!(
            a0.is_some() && b0.is_some() && b0 > a0,
            "bump_stamp: room B (newer) must sort above room A: A={a0:?} B={b0:?}"
        );

        // Decrypted messages reach event handlers through sliding sync too.
        let (tx, mut rx) = mpsc::unbounded_channel();
        bob.add_event_handler(move |ev: OriginalSyncRoomMessageEvent, room: Room| {
            let tx = tx.clone();
            async move {
                let _ = tx.send((
                    room.room_id().to_owned(),
                    ev.event_id.to_string(),
                    ev.content.body().to_owned(),
                ));
            }
        });

        // Alice learns about bob's device (classic sync) and sends into room A.
        sync_until(&alice, 30, "alice sees bob joined room A", |_| {
            alice
                .get_room(&room_a)
                .and_then(|r| (r.joined_members_count() == 2).then_some(()))
        })
        .await;
        let sent = alice
            .get_room(&room_a)
            .unwrap()
            .send(RoomMessageEventContent::text_plain(
                "hello via sliding sync",
            ))
            .await
            .expect("alice sends");
        let event_id = sent.response.event_id.to_string();

        let mut got_body = None;
        within(
            45,
            "the new message appears in room A with an unread count",
            async {
                loop {
                    let summary = ss.sync_once().await.expect("sliding sync");
                    let _ = summary;
                    while let Ok((rid, eid, body)) = rx.try_recv() {
                        if rid == room_a && eid == event_id {
                            got_body = Some(body);
                        }
                    }
                    let counts = bob.get_room(&room_a).unwrap().unread_notification_counts();
                    if got_body.is_some() && counts.notification_count >= 1 {
                        break;
                    }
                }
            },
        )
        .await;
        assert_eq!(got_body.as_deref(), Some("hello via sliding sync"));
        let room = bob.get_room(&room_a).unwrap();
        assert_eq!(room.unread_notification_counts().notification_count, 1);
        assert_eq!(
            bob.get_room(&room_b)
                .unwrap()
                .unread_notification_counts()
                .notification_count,
            0,
            "room B has no new message"
        );
        let (a1, b1) = (stamp(&room_a), stamp(&room_b));
        assert!(
            a1 > b1,
            "after alice's message room A must sort above room B: A={a1:?} B={b1:?}"
        );
        assert!(
            room.latest_encryption_state()
                .await
                .expect("encryption state")
                .is_encrypted(),
            "private rooms are encrypted by default"
        );
    })
    .await;
}
