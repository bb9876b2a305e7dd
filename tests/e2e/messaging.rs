//! Registration through matrix-sdk, password login, invites, joins and messages via /sync.

use handover_e2e::*;
use matrix_sdk::RoomState;
use matrix_sdk::ruma::api::client::room::create_room::v3::Request as CreateRoomRequest;
use matrix_sdk::ruma::events::room::message::RoomMessageEventContent;
use matrix_sdk::ruma::user_id;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_users_invite_join_and_chat() {
    with_timeout(180, async {
        let server = TestServer::start().await;

        // Register both users with matrix-sdk (UIA m.login.dummy) ...
        let reg_alice = server.register("alice").await;
        assert_eq!(reg_alice.user_id().unwrap(), user_id!("@alice:localhost"));
        let reg_bob = server.register("bob").await;
        assert_eq!(reg_bob.user_id().unwrap(), user_id!("@bob:localhost"));

        // ... then log in with the password on fresh clients.
        let alice = server.login("alice", PASSWORD).await;
        let bob = server.login("bob", PASSWORD).await;
        assert_eq!(alice.user_id().unwrap(), user_id!("@alice:localhost"));
        assert_ne!(
            alice.access_token(),
            reg_alice.access_token(),
            "login must issue a new access token"
        );
        let whoami = alice.whoami().await.expect("whoami");
        assert_eq!(whoami.user_id, "@alice:localhost");

        // Initial syncs.
        sync_until(&alice, 30, "alice initial sync", |_| Some(())).await;
        sync_until(&bob, 30, "bob initial sync", |_| Some(())).await;

        // Alice creates a room and invites bob.
        let mut req = CreateRoomRequest::new();
        req.name = Some("e2e chat".to_owned());
        let room = alice.create_room(req).await.expect("create room");
        let room_id = room.room_id().to_owned();
        room.invite_user_by_id(user_id!("@bob:localhost"))
            .await
            .expect("invite bob");

        // Bob sees the invite via sync and joins.
        sync_until(&bob, 30, "bob sees the invite", |r| {
            invited_rooms(r).contains(&room_id).then_some(())
        })
        .await;
        let bob_room = bob.get_room(&room_id).expect("bob knows the invited room");
        assert_eq!(bob_room.state(), RoomState::Invited);
        bob_room.join().await.expect("bob joins");

        // Alice sees bob's join.
        sync_until(&alice, 30, "alice sees bob's join", |r| {
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

        // Alice -> bob.
        let sent = room
            .send(RoomMessageEventContent::text_plain("hello bob"))
            .await
            .expect("alice sends");
        let alice_event = sent.response.event_id.to_string();
        sync_until(&bob, 30, "bob sees alice's message", |r| {
            timeline(r, &room_id)
                .iter()
                .find(|e| e["event_id"] == alice_event.as_str())
                .map(|e| {
                    assert_eq!(e["sender"], "@alice:localhost");
                    assert_eq!(message_body(e), Some("hello bob"));
                    assert_eq!(e["content"]["msgtype"], "m.text");
                })
        })
        .await;

        // Bob -> alice.
        let bob_room = bob.get_room(&room_id).unwrap();
        assert_eq!(bob_room.state(), RoomState::Joined);
        let sent = bob_room
            .send(RoomMessageEventContent::text_plain("hi alice"))
            .await
            .expect("bob sends");
        let bob_event = sent.response.event_id.to_string();
        sync_until(&alice, 30, "alice sees bob's message", |r| {
            timeline(r, &room_id)
                .iter()
                .find(|e| e["event_id"] == bob_event.as_str())
                .map(|e| {
                    assert_eq!(e["sender"], "@bob:localhost");
                    assert_eq!(message_body(e), Some("hi alice"));
                })
        })
        .await;

        // Both are joined members; the room name set at creation is visible to bob.
        let members = room
            .members(matrix_sdk::RoomMemberships::JOIN)
            .await
            .expect("members");
        let mut ids: Vec<String> = members.iter().map(|m| m.user_id().to_string()).collect();
        ids.sort();
        assert_eq!(ids, ["@alice:localhost", "@bob:localhost"]);
        assert_eq!(bob_room.name().as_deref(), Some("e2e chat"));

        // A transaction ID retried by the client must not create a second event.
        let http = server.http();
        let token = alice.access_token().unwrap();
        let path = format!(
            "/_matrix/client/v3/rooms/{}/send/m.room.message/txn-dup-1",
            enc(room_id.as_str())
        );
        let body = json!({"msgtype": "m.text", "body": "once"});
        let first = http.put_json(&path, Some(&token), &body).await.ok();
        let second = http.put_json(&path, Some(&token), &body).await.ok();
        assert_eq!(
            first["event_id"], second["event_id"],
            "retrying a PUT /send with the same txnId must return the same event"
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_password_and_duplicate_username_rejected() {
    with_timeout(120, async {
        let server = TestServer::start().await;
        server.register("alice").await;
        let http = server.http();

        // Wrong password -> 403 M_FORBIDDEN.
        let r = http
            .post_json(
                "/_matrix/client/v3/login",
                None,
                &login_body("alice", "nope"),
            )
            .await;
        r.assert_error(403, &["M_FORBIDDEN"]);

        // Unknown user -> 403 M_FORBIDDEN too (no user enumeration).
        let r = http
            .post_json(
                "/_matrix/client/v3/login",
                None,
                &login_body("nobody", "nope"),
            )
            .await;
        r.assert_error(403, &["M_FORBIDDEN"]);

        // Taken username -> 400 M_USER_IN_USE, through matrix-sdk.
        let c = server.client().await;
        let err = register_with(&c, "alice", PASSWORD, None)
            .await
            .expect_err("duplicate user");
        let kind = err.client_api_error_kind().map(|k| k.errcode().to_string());
        assert_eq!(kind.as_deref(), Some("M_USER_IN_USE"), "got {err:?}");

        // GET /login advertises m.login.password.
        let flows = http.get("/_matrix/client/v3/login", None).await.ok();
        assert!(
            flows["flows"]
                .as_array()
                .is_some_and(|f| f.iter().any(|f| f["type"] == "m.login.password")),
            "GET /login flows: {flows}"
        );
    })
    .await;
}

/// matrix-nio (and older Element) POST /join and /leave with no body at all; Synapse reads that
/// as `{}`. Without it those clients cannot join rooms.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn empty_body_join_and_leave() {
    with_timeout(60, async {
        let server = TestServer::start().await;
        let http = server.http();
        let (_, alice) = http.register("alice", PASSWORD).await;
        let (_, bob) = http.register("bob", PASSWORD).await;
        let room = http
            .post_json(
                "/_matrix/client/v3/createRoom",
                Some(&alice),
                &serde_json::json!({ "preset": "public_chat" }),
            )
            .await
            .ok()["room_id"]
            .as_str()
            .unwrap()
            .to_owned();
        let joined = http
            .request(
                "POST",
                &format!("/_matrix/client/v3/join/{room}"),
                Some(&bob),
                None,
            )
            .await
            .ok();
        assert_eq!(joined["room_id"], room.as_str());
        http.request(
            "POST",
            &format!("/_matrix/client/v3/rooms/{room}/leave"),
            Some(&bob),
            None,
        )
        .await
        .ok();
        let members = http
            .get(
                &format!("/_matrix/client/v3/rooms/{room}/joined_members"),
                Some(&alice),
            )
            .await
            .ok();
        assert!(
            members["joined"].get("@bob:localhost").is_none(),
            "{members}"
        );
    })
    .await;
}
