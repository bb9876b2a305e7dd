//! History visibility as a client sees it: forgotten rooms, edits after a leave, lazy-loaded
//! members at the events, and the `history_visibility` in force at each event.

use handover_e2e::account::Account;
use handover_e2e::*;

fn messages_path(room: &str) -> String {
    format!(
        "/_matrix/client/v3/rooms/{}/messages?dir=b&limit=50",
        enc(room)
    )
}

/// Alice's unencrypted room (`public_chat`: shared history) with Bob joined.
async fn alice_and_bob(server: &TestServer) -> (Account, Account, String) {
    let alice = Account::register(server.http(), "alice").await;
    let bob = Account::register(server.http(), "bob").await;
    let room = alice
        .create_room(&json!({"preset": "public_chat", "name": "Ward 7"}))
        .await;
    alice.invite(&room, &bob.user_id).await;
    bob.join(&room, &[]).await;
    (alice, bob, room)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forgotten_room_history_is_refused() {
    with_timeout(120, async {
        let server = TestServer::start().await;
        let (alice, bob, room) = alice_and_bob(&server).await;
        let id = alice.send_text(&room, "obs at 14:00").await;
        bob.leave(&room).await;
        let event = format!("/_matrix/client/v3/rooms/{}/event/{}", enc(&room), enc(&id));
        bob.get(&event).await.ok();
        bob.post(
            &format!("/_matrix/client/v3/rooms/{}/forget", enc(&room)),
            &json!({}),
        )
        .await
        .ok();
        bob.get(&messages_path(&room))
            .await
            .assert_error(403, &["M_FORBIDDEN"]);
        bob.get(&event)
            .await
            .assert_error_any(&[(404, "M_NOT_FOUND"), (403, "M_FORBIDDEN")]);
        bob.get(&format!("/_matrix/client/v3/rooms/{}/state", enc(&room)))
            .await
            .assert_error(403, &["M_FORBIDDEN"]);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edit_after_leave_is_not_bundled() {
    with_timeout(120, async {
        let server = TestServer::start().await;
        let (alice, bob, room) = alice_and_bob(&server).await;
        let id = alice.send_text(&room, "BP 120/80").await;
        bob.leave(&room).await;
        let txn_path = format!(
            "/_matrix/client/v3/rooms/{}/send/m.room.message/edit1",
            enc(&room)
        );
        alice
            .put(
                &txn_path,
                &json!({
                    "msgtype": "m.text", "body": "* BP 150/95",
                    "m.new_content": {"msgtype": "m.text", "body": "BP 150/95"},
                    "m.relates_to": {"rel_type": "m.replace", "event_id": id},
                }),
            )
            .await
            .ok();
        let event = format!("/_matrix/client/v3/rooms/{}/event/{}", enc(&room), enc(&id));
        let replace = |ev: &serde_json::Value| ev["unsigned"]["m.relations"]["m.replace"].clone();
        // Alice gets the edit bundled; Bob, who left before it, does not.
        assert!(!replace(&alice.get(&event).await.ok()).is_null());
        let ev = bob.get(&event).await.ok();
        assert!(replace(&ev).is_null(), "/event: {ev}");
        let page = bob.get(&messages_path(&room)).await.ok();
        let orig = page["chunk"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["event_id"] == id.as_str())
            .cloned()
            .unwrap();
        assert!(replace(&orig).is_null(), "/messages: {orig}");
        let ctx = bob
            .get(&format!(
                "/_matrix/client/v3/rooms/{}/context/{}",
                enc(&room),
                enc(&id)
            ))
            .await
            .ok();
        assert!(
            replace(&ctx["event"]).is_null(),
            "/context: {}",
            ctx["event"]
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lazy_members_in_messages_are_as_at_the_events() {
    with_timeout(120, async {
        let server = TestServer::start().await;
        let (alice, bob, room) = alice_and_bob(&server).await;
        let carol = Account::register(server.http(), "carol").await;
        alice.invite(&room, &carol.user_id).await;
        carol.join(&room, &[]).await;
        bob.send_text(&room, "handover for bed 4").await;
        carol.leave(&room).await;
        let member = format!(
            "/_matrix/client/v3/rooms/{}/state/m.room.member/{}",
            enc(&room),
            enc(&bob.user_id)
        );
        bob.put(
            &member,
            &json!({"membership": "join", "displayname": "Bob (moved to ICU)"}),
        )
        .await
        .ok();
        let filter = enc(r#"{"lazy_load_members":true}"#);
        let page = carol
            .get(&format!("{}&filter={filter}", messages_path(&room)))
            .await
            .ok();
        let state = page["state"].as_array().cloned().unwrap_or_default();
        let bob_member = state
            .iter()
            .find(|e| e["state_key"] == bob.user_id.as_str())
            .unwrap_or_else(|| panic!("Bob's member event is lazy-loaded: {page}"));
        assert_ne!(
            bob_member["content"]["displayname"], "Bob (moved to ICU)",
            "a change after Carol left: {bob_member}"
        );
    })
    .await;
}

fn bodies_of(events: &serde_json::Value) -> Vec<String> {
    events
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["type"] == "m.room.message")
        .filter_map(|e| e["content"]["body"].as_str().map(str::to_owned))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn world_readable_later_does_not_open_older_history() {
    with_timeout(120, async {
        let server = TestServer::start().await;
        let alice = Account::register(server.http(), "alice").await;
        let bob = Account::register(server.http(), "bob").await;
        let carol = Account::register(server.http(), "carol").await;
        let room = alice.create_public_room("Ward 7").await;
        let hv = format!(
            "/_matrix/client/v3/rooms/{}/state/m.room.history_visibility/",
            enc(&room)
        );
        alice
            .put(&hv, &json!({"history_visibility": "joined"}))
            .await
            .ok();
        alice.send_text(&room, "before bob joined").await;
        bob.join(&room, &[]).await;
        alice.send_text(&room, "while bob is here").await;
        alice
            .put(&hv, &json!({"history_visibility": "world_readable"}))
            .await
            .ok();
        alice.send_text(&room, "now world readable").await;

        assert_eq!(
            bob.bodies(&room, 50).await,
            ["while bob is here", "now world readable"]
        );
        let filter = enc(r#"{"room":{"timeline":{"limit":50}}}"#);
        let sync = bob
            .get(&format!("/_matrix/client/v3/sync?filter={filter}"))
            .await
            .ok();
        let timeline = &sync["rooms"]["join"][&room]["timeline"]["events"];
        assert_eq!(
            bodies_of(timeline),
            ["while bob is here", "now world readable"],
            "/sync"
        );
        // Carol never joined: only what was sent while the room was world readable.
        let page = carol.get(&messages_path(&room)).await.ok();
        let mut got = bodies_of(&page["chunk"]);
        got.reverse();
        assert_eq!(got, ["now world readable"]);
    })
    .await;
}
