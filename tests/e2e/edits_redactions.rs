//! Edits (m.replace) and redactions.

use crate::receipts_typing::two_users_in_room;
use handover_e2e::*;
use matrix_sdk::ruma::events::room::message::RoomMessageEventContent;
use serde_json::Value;

async fn fetch_event(server: &TestServer, token: &str, room_id: &str, event_id: &str) -> Value {
    let path = format!(
        "/_matrix/client/v3/rooms/{}/event/{}",
        enc(room_id),
        enc(event_id)
    );
    server.http().get(&path, Some(token)).await.ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edit_with_m_replace() {
    with_timeout(180, async {
        let server = TestServer::start().await;
        let (alice, bob, room, _bob_room, room_id) = two_users_in_room(&server).await;

        let original = room
            .send(RoomMessageEventContent::text_plain("helo wrld"))
            .await
            .expect("send original")
            .response
            .event_id;
        let edit = room
            .send_raw(
                "m.room.message",
                json!({
                    "msgtype": "m.text",
                    "body": "* hello world",
                    "m.new_content": {"msgtype": "m.text", "body": "hello world"},
                    "m.relates_to": {"rel_type": "m.replace", "event_id": original.as_str()},
                }),
            )
            .await
            .expect("send edit")
            .response
            .event_id;

        // Bob receives the edit with its relation intact.
        let ev = sync_until(&bob, 30, "bob receives the edit", |r| {
            timeline(r, &room_id)
                .into_iter()
                .find(|e| e["event_id"] == edit.as_str())
        })
        .await;
        assert_eq!(
            ev["content"]["m.relates_to"]["rel_type"], "m.replace",
            "{ev}"
        );
        assert_eq!(
            ev["content"]["m.relates_to"]["event_id"],
            original.as_str(),
            "{ev}"
        );
        assert_eq!(
            ev["content"]["m.new_content"]["body"], "hello world",
            "{ev}"
        );

        // Through matrix-sdk's /event: the edit event and the original (unchanged content).
        let fetched = bob
            .get_room(&room_id)
            .unwrap()
            .event(&edit, None)
            .await
            .expect("fetch edit");
        assert_eq!(
            raw_json(fetched.raw())["content"]["m.new_content"]["body"],
            "hello world"
        );
        let token = alice.access_token().unwrap();
        let orig = fetch_event(&server, &token, room_id.as_str(), original.as_str()).await;
        assert_eq!(
            orig["content"]["body"], "helo wrld",
            "the original event's own content must not be rewritten: {orig}"
        );

        // Editing someone else's message: the server must not apply it as an edit. (Sending it
        // may be accepted or rejected; if accepted, it must not be bundled as the replacement.)
        let forged = bob
            .get_room(&room_id)
            .unwrap()
            .send_raw(
                "m.room.message",
                json!({
                    "msgtype": "m.text",
                    "body": "* pwned",
                    "m.new_content": {"msgtype": "m.text", "body": "pwned"},
                    "m.relates_to": {"rel_type": "m.replace", "event_id": original.as_str()},
                }),
            )
            .await;
        let _ = forged;
        let orig = fetch_event(&server, &token, room_id.as_str(), original.as_str()).await;
        let bundled = &orig["unsigned"]["m.relations"]["m.replace"];
        if !bundled.is_null() {
            assert_eq!(
                bundled["event_id"],
                edit.as_str(),
                "bundled m.replace must be alice's own edit, not bob's: {orig}"
            );
        }
    })
    .await;
}

/// alice's message "v1" edited twice ("v2", "v3"); returns (server, token, room, original, last edit).
async fn edited_twice() -> (TestServer, String, String, String, String) {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;
    // public_chat: Handover encrypts private rooms by default, and this test inspects the
    // server-side plaintext (encrypted rooms are covered by encryption.rs).
    let room = alice
        .create_room(unencrypted_room())
        .await
        .expect("create room");
    let original = room
        .send(RoomMessageEventContent::text_plain("v1"))
        .await
        .unwrap()
        .response
        .event_id;
    let mut last = None;
    for v in ["v2", "v3"] {
        let id = room
            .send_raw(
                "m.room.message",
                json!({
                    "msgtype": "m.text",
                    "body": format!("* {v}"),
                    "m.new_content": {"msgtype": "m.text", "body": v},
                    "m.relates_to": {"rel_type": "m.replace", "event_id": original.as_str()},
                }),
            )
            .await
            .unwrap()
            .response
            .event_id;
        last = Some(id);
    }
    let token = alice.access_token().unwrap();
    (
        server,
        token,
        room.room_id().to_string(),
        original.to_string(),
        last.unwrap().to_string(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edit_bundled_aggregation() {
    with_timeout(120, async {
        let (server, token, room_id, original, last) = edited_twice().await;
        // Spec (v1.7+): the original carries the most recent edit in unsigned.m.relations.m.replace.
        let orig = fetch_event(&server, &token, &room_id, &original).await;
        assert_eq!(
            orig["unsigned"]["m.relations"]["m.replace"]["event_id"],
            last.as_str(),
            "GET /event of an edited message lacks the bundled latest edit: {orig}"
        );
        assert_eq!(
            orig["content"]["body"], "v1",
            "the original's own content must stay: {orig}"
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edit_relations_endpoint() {
    with_timeout(120, async {
        let (server, token, room_id, original, last) = edited_twice().await;
        // GET /relations/{eventId}/m.replace lists both edits, newest first.
        let path = format!(
            "/_matrix/client/v1/rooms/{}/relations/{}/m.replace",
            enc(&room_id),
            enc(&original)
        );
        let rel = server.http().get(&path, Some(&token)).await.ok();
        let chunk = rel["chunk"].as_array().expect("relations chunk");
        assert_eq!(chunk.len(), 2, "expected the 2 edits: {rel}");
        assert!(
            chunk
                .iter()
                .all(|e| e["content"]["m.relates_to"]["rel_type"] == "m.replace")
        );
        assert_eq!(
            chunk[0]["event_id"],
            last.as_str(),
            "newest edit first (dir=b default): {rel}"
        );
        // Without the rel_type filter, too.
        let path = format!(
            "/_matrix/client/v1/rooms/{}/relations/{}",
            enc(&room_id),
            enc(&original)
        );
        let rel = server.http().get(&path, Some(&token)).await.ok();
        assert_eq!(rel["chunk"].as_array().map(Vec::len), Some(2), "{rel}");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redaction_strips_content() {
    with_timeout(180, async {
        let server = TestServer::start().await;
        let (alice, bob, room, bob_room, room_id) = two_users_in_room(&server).await;

        let target = room
            .send_raw(
                "m.room.message",
                json!({"msgtype": "m.text", "body": "secret", "extra": {"nested": true}}),
            )
            .await
            .unwrap()
            .response
            .event_id;
        sync_until(&bob, 30, "bob receives the message", |r| {
            timeline(r, &room_id)
                .iter()
                .any(|e| e["event_id"] == target.as_str())
                .then_some(())
        })
        .await;

        let redaction = room
            .redact(&target, Some("oops"), None)
            .await
            .expect("redact")
            .event_id;

        // Bob sees the redaction event in sync.
        let ev = sync_until(&bob, 30, "bob receives the redaction", |r| {
            timeline(r, &room_id)
                .into_iter()
                .find(|e| e["event_id"] == redaction.as_str())
        })
        .await;
        assert_eq!(ev["type"], "m.room.redaction");
        let redacts = if ev["content"]["redacts"].is_string() {
            &ev["content"]["redacts"]
        } else {
            &ev["redacts"]
        };
        assert_eq!(
            redacts,
            target.as_str(),
            "redaction must point at its target: {ev}"
        );
        assert_eq!(ev["content"]["reason"], "oops");

        // Fetching the redacted event: content stripped, redacted_because set.
        for (who, client) in [("alice", &alice), ("bob", &bob)] {
            let token = client.access_token().unwrap();
            let fetched = fetch_event(&server, &token, room_id.as_str(), target.as_str()).await;
            assert_eq!(fetched["type"], "m.room.message");
            assert_eq!(
                fetched["content"],
                json!({}),
                "{who}: redacted m.room.message must have empty content: {fetched}"
            );
            assert_eq!(
                fetched["unsigned"]["redacted_because"]["event_id"],
                redaction.as_str(),
                "{who}: unsigned.redacted_because missing: {fetched}"
            );
        }
        // Via matrix-sdk too.
        let via_sdk = raw_json(
            bob_room
                .event(&target, None)
                .await
                .expect("sdk fetch")
                .raw(),
        );
        assert_eq!(via_sdk["content"], json!({}), "{via_sdk}");

        // And in /messages.
        let msgs = room
            .messages(matrix_sdk::room::MessagesOptions::backward())
            .await
            .expect("messages");
        let in_history = msgs
            .chunk
            .iter()
            .map(|e| raw_json(e.raw()))
            .find(|e| e["event_id"] == target.as_str())
            .expect("redacted event still listed in /messages");
        assert_eq!(
            in_history["content"],
            json!({}),
            "/messages returns unredacted content: {in_history}"
        );
        assert!(!in_history.to_string().contains("secret"));

        // Bob may not redact alice's event (power level 0 < redact 50).
        let other = room
            .send(RoomMessageEventContent::text_plain("keep"))
            .await
            .unwrap()
            .response
            .event_id;
        let err = bob_room
            .redact(&other, None, None)
            .await
            .expect_err("bob must not redact alice's event");
        assert_eq!(
            err.as_client_api_error().map(|e| e.status_code.as_u16()),
            Some(403),
            "expected 403, got {err:?}"
        );
        let still = fetch_event(
            &server,
            &alice.access_token().unwrap(),
            room_id.as_str(),
            other.as_str(),
        )
        .await;
        assert_eq!(still["content"]["body"], "keep");
    })
    .await;
}
