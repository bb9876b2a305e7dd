//! Typing notifications and read receipts (m.read, m.read.private) through /sync ephemeral.

use handover_e2e::*;
use matrix_sdk::Client;
use matrix_sdk::Room;
use matrix_sdk::ruma::api::client::receipt::create_receipt::v3::ReceiptType;
use matrix_sdk::ruma::events::receipt::ReceiptThread;
use matrix_sdk::ruma::events::room::message::RoomMessageEventContent;
use matrix_sdk::ruma::{OwnedRoomId, user_id};
use serde_json::Value;

/// alice and bob, both joined to a room created by alice; both synced past the join.
pub(crate) async fn two_users_in_room(
    server: &TestServer,
) -> (Client, Client, Room, Room, OwnedRoomId) {
    let alice = server.register("alice").await;
    let bob = server.register("bob").await;
    sync_until(&bob, 30, "bob initial sync", |_| Some(())).await;
    // public_chat: Handover encrypts private rooms by default, and this test inspects the
    // server-side plaintext (encrypted rooms are covered by encryption.rs).
    let room = alice
        .create_room(unencrypted_room())
        .await
        .expect("create room");
    let room_id = room.room_id().to_owned();
    room.invite_user_by_id(user_id!("@bob:localhost"))
        .await
        .expect("invite");
    sync_until(&bob, 30, "bob sees the invite", |r| {
        invited_rooms(r).contains(&room_id).then_some(())
    })
    .await;
    bob.join_room_by_id(&room_id).await.expect("bob joins");
    sync_until(&alice, 30, "alice sees bob join", |r| {
        timeline(r, &room_id)
            .iter()
            .any(|e| {
                e["type"] == "m.room.member"
                    && e["state_key"] == "@bob:localhost"
                    && e["content"]["membership"] == "join"
            })
            .then_some(())
    })
    .await;
    let bob_room = bob.get_room(&room_id).expect("bob's room");
    (alice, bob, room, bob_room, room_id)
}

fn typing_users(ev: &[Value]) -> Option<Vec<String>> {
    ev.iter().rev().find(|e| e["type"] == "m.typing").map(|e| {
        e["content"]["user_ids"]
            .as_array()
            .expect("m.typing content.user_ids must be an array")
            .iter()
            .map(|u| u.as_str().unwrap().to_owned())
            .collect()
    })
}

/// Users with a receipt of `rtype` on `event_id` in an m.receipt event.
fn receipt_users(ev: &[Value], event_id: &str, rtype: &str) -> Vec<String> {
    let mut out = vec![];
    for e in ev.iter().filter(|e| e["type"] == "m.receipt") {
        if let Some(users) = e["content"][event_id][rtype].as_object() {
            for (u, data) in users {
                assert!(data["ts"].is_u64(), "receipt without a numeric ts: {e}");
                out.push(u.clone());
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typing_notifications() {
    with_timeout(180, async {
        let server = TestServer::start().await;
        let (alice, _bob, _room, bob_room, room_id) = two_users_in_room(&server).await;

        bob_room.typing_notice(true).await.expect("bob typing");
        let users = sync_until(&alice, 30, "alice sees bob typing", |r| {
            typing_users(&ephemeral(r, &room_id)).filter(|u| !u.is_empty())
        })
        .await;
        assert_eq!(users, ["@bob:localhost"]);

        bob_room
            .typing_notice(false)
            .await
            .expect("bob stops typing");
        sync_until(&alice, 30, "alice sees bob stop typing", |r| {
            typing_users(&ephemeral(r, &room_id)).filter(|u| u.is_empty())
        })
        .await;

        // A short typing timeout expires by itself.
        let http = server.http();
        let token = bob_room.client().access_token().unwrap();
        let path = format!(
            "/_matrix/client/v3/rooms/{}/typing/{}",
            enc(room_id.as_str()),
            enc("@bob:localhost")
        );
        http.put_json(
            &path,
            Some(&token),
            &json!({"typing": true, "timeout": 1500}),
        )
        .await
        .ok();
        sync_until(&alice, 30, "alice sees bob typing again", |r| {
            typing_users(&ephemeral(r, &room_id)).filter(|u| u == &["@bob:localhost"])
        })
        .await;
        sync_until(
            &alice,
            30,
            "bob's typing expires after its 1.5s timeout",
            |r| typing_users(&ephemeral(r, &room_id)).filter(|u| u.is_empty()),
        )
        .await;

        // Typing on behalf of someone else is forbidden.
        let path = format!(
            "/_matrix/client/v3/rooms/{}/typing/{}",
            enc(room_id.as_str()),
            enc("@alice:localhost")
        );
        // (The spec names no status for this; 403 or 400 with M_FORBIDDEN.)
        http.put_json(
            &path,
            Some(&token),
            &json!({"typing": true, "timeout": 5000}),
        )
        .await
        .assert_error_any(&[(403, "M_FORBIDDEN"), (400, "M_FORBIDDEN")]);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_receipts_public_and_private() {
    with_timeout(180, async {
        let server = TestServer::start().await;
        let (alice, bob, room, bob_room, room_id) = two_users_in_room(&server).await;

        let e1 = bob_room
            .send(RoomMessageEventContent::text_plain("one"))
            .await
            .unwrap()
            .response
            .event_id;
        let e2 = bob_room
            .send(RoomMessageEventContent::text_plain("two"))
            .await
            .unwrap()
            .response
            .event_id;
        sync_until(&alice, 30, "alice receives bob's messages", |r| {
            timeline(r, &room_id)
                .iter()
                .any(|e| e["event_id"] == e2.as_str())
                .then_some(())
        })
        .await;

        // Private receipt on e1: alice sees it herself, bob must never see it.
        room.send_single_receipt(
            ReceiptType::ReadPrivate,
            ReceiptThread::Unthreaded,
            e1.clone(),
        )
        .await
        .expect("private receipt");
        sync_until(
            &alice,
            30,
            "alice sees her own m.read.private receipt",
            |r| {
                receipt_users(&ephemeral(r, &room_id), e1.as_str(), "m.read.private")
                    .contains(&"@alice:localhost".to_owned())
                    .then_some(())
            },
        )
        .await;

        // Public receipt on e2: bob sees it.
        room.send_single_receipt(ReceiptType::Read, ReceiptThread::Unthreaded, e2.clone())
            .await
            .expect("public receipt");
        let mut leaked_private = false;
        sync_until(&bob, 30, "bob sees alice's m.read receipt", |r| {
            let eph = ephemeral(r, &room_id);
            if !receipt_users(&eph, e1.as_str(), "m.read.private").is_empty()
                || eph.iter().any(|e| e.to_string().contains("m.read.private"))
            {
                leaked_private = true;
            }
            receipt_users(&eph, e2.as_str(), "m.read")
                .contains(&"@alice:localhost".to_owned())
                .then_some(())
        })
        .await;
        assert!(
            !leaked_private,
            "bob was sent alice's m.read.private receipt"
        );

        // A fresh initial sync for bob carries the current public receipt but no private one.
        let bob2 = server.login("bob", PASSWORD).await;
        let eph = sync_until(&bob2, 30, "bob's initial sync", |r| {
            Some(ephemeral(r, &room_id))
        })
        .await;
        assert!(
            receipt_users(&eph, e2.as_str(), "m.read").contains(&"@alice:localhost".to_owned()),
            "initial sync lacks alice's m.read receipt: {eph:?}"
        );
        assert!(
            !eph.iter().any(|e| e.to_string().contains("m.read.private")),
            "initial sync leaks m.read.private: {eph:?}"
        );
    })
    .await;
}
