//! Persistence across a server restart on the same data_dir.

use handover_e2e::*;
use matrix_sdk::room::MessagesOptions;
use matrix_sdk::ruma::api::client::room::create_room::v3::Request as CreateRoomRequest;
use matrix_sdk::ruma::events::room::message::RoomMessageEventContent;
use matrix_sdk::ruma::{uint, user_id};
use matrix_sdk::{RoomMemberships, RoomState};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_preserves_users_rooms_members_and_messages() {
    with_timeout(240, async {
        let mut server = TestServer::start().await;
        let alice = server.register("alice").await;
        let bob = server.register("bob").await;
        sync_until(&bob, 30, "bob initial sync", |_| Some(())).await;

        // public_chat: private rooms are encrypted by default and the fresh clients after the
        // restart (new devices) could not decrypt the history this test compares.
        let mut req = unencrypted_room();
        req.name = Some("persistent".to_owned());
        let room = alice.create_room(req).await.expect("create room");
        let room_id = room.room_id().to_owned();
        room.invite_user_by_id(user_id!("@bob:localhost"))
            .await
            .unwrap();
        sync_until(&bob, 30, "bob sees invite", |r| {
            invited_rooms(r).contains(&room_id).then_some(())
        })
        .await;
        bob.join_room_by_id(&room_id).await.expect("bob joins");
        let mut sent = vec![];
        for i in 0..5 {
            let c = if i % 2 == 0 { &alice } else { &bob };
            let r = c.get_room(&room_id).unwrap();
            let id = r
                .send(RoomMessageEventContent::text_plain(format!(
                    "before restart {i}"
                )))
                .await
                .unwrap();
            sent.push(id.response.event_id.to_string());
        }
        // A second room bob is not in.
        let private = alice
            .create_room(CreateRoomRequest::new())
            .await
            .unwrap()
            .room_id()
            .to_owned();

        let old_url = server.url().to_owned();
        assert!(
            server.stop().await,
            "handover did not exit within 10s of SIGTERM"
        );
        server.restart().await;
        eprintln!("restarted: {old_url} -> {}", server.url());

        // Old password still works on the restarted server.
        let alice2 = server.login("alice", PASSWORD).await;
        let bob2 = server.login("bob", PASSWORD).await;

        // Joined rooms via sync.
        let joined = sync_until(&alice2, 30, "alice initial sync after restart", |r| {
            Some(r.rooms.joined.keys().cloned().collect::<Vec<_>>())
        })
        .await;
        assert!(
            joined.contains(&room_id) && joined.contains(&private),
            "alice's rooms after restart: {joined:?}"
        );
        let joined = sync_until(&bob2, 30, "bob initial sync after restart", |r| {
            Some(r.rooms.joined.keys().cloned().collect::<Vec<_>>())
        })
        .await;
        assert_eq!(joined, vec![room_id.clone()], "bob's rooms after restart");

        let room2 = alice2.get_room(&room_id).expect("room known after restart");
        assert_eq!(room2.state(), RoomState::Joined);
        assert_eq!(room2.name().as_deref(), Some("persistent"));

        // Members (GET /members).
        let members = room2
            .members(RoomMemberships::JOIN)
            .await
            .expect("members after restart");
        let mut ids: Vec<String> = members.iter().map(|m| m.user_id().to_string()).collect();
        ids.sort();
        assert_eq!(ids, ["@alice:localhost", "@bob:localhost"]);

        // Messages (GET /messages).
        let mut opts = MessagesOptions::backward();
        opts.limit = uint!(50);
        let msgs = room2.messages(opts).await.expect("messages after restart");
        let mut got: Vec<(String, String)> = msgs
            .chunk
            .iter()
            .map(|e| raw_json(e.raw()))
            .filter(|e| e["type"] == "m.room.message")
            .map(|e| {
                (
                    e["event_id"].as_str().unwrap().to_owned(),
                    e["content"]["body"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        got.reverse();
        let want: Vec<(String, String)> = sent
            .iter()
            .enumerate()
            .map(|(i, id)| (id.clone(), format!("before restart {i}")))
            .collect();
        assert_eq!(got, want, "messages after restart");

        // New writes still work, and the other user sees them.
        let id = room2
            .send(RoomMessageEventContent::text_plain("after restart"))
            .await
            .expect("send after restart");
        let id = id.response.event_id.to_string();
        sync_until(&bob2, 30, "bob sees the post-restart message", |r| {
            timeline(r, &room_id)
                .iter()
                .any(|e| e["event_id"] == id.as_str())
                .then_some(())
        })
        .await;

        // Registering the same name again is still refused (users persisted, not just sessions).
        let c = server.client().await;
        let err = register_with(&c, "alice", "another-password", None)
            .await
            .expect_err("alice exists after restart");
        assert_eq!(
            err.client_api_error_kind()
                .map(|k| k.errcode().to_string())
                .as_deref(),
            Some("M_USER_IN_USE"),
            "{err:?}"
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_preserves_access_tokens_and_sync_tokens() {
    with_timeout(180, async {
        let mut server = TestServer::start().await;
        let http = server.http();
        let (user_id, token) = http.register("alice", PASSWORD).await;
        let room_id = http.create_room(&token, &json!({"name": "r"})).await;
        let sync = http.get("/_matrix/client/v3/sync?timeout=0", Some(&token)).await.ok();
        let since = sync["next_batch"].as_str().expect("next_batch").to_owned();

        server.restart().await;
        let http = server.http();

        // The access token issued before the restart is still valid.
        let me = http.get("/_matrix/client/v3/account/whoami", Some(&token)).await.ok();
        assert_eq!(me["user_id"], user_id.as_str());

        // A message sent after the restart shows up in an incremental sync from the old token.
        let path = format!("/_matrix/client/v3/rooms/{}/send/m.room.message/t1", enc(&room_id));
        let ev = http.put_json(&path, Some(&token), &json!({"msgtype": "m.text", "body": "after"})).await.ok();
        let event_id = ev["event_id"].as_str().unwrap().to_owned();
        let sync = http
            .get(&format!("/_matrix/client/v3/sync?timeout=0&since={}", enc(&since)), Some(&token))
            .await
            .ok();
        let events = &sync["rooms"]["join"][&room_id]["timeline"]["events"];
        let ids: Vec<&str> = events.as_array().map(|a| a.iter().filter_map(|e| e["event_id"].as_str()).collect()).unwrap_or_default();
        assert!(ids.contains(&event_id.as_str()), "incremental sync with a pre-restart token misses {event_id}: {sync}");
        assert!(
            !events.as_array().unwrap().iter().any(|e| e["type"] == "m.room.create"),
            "incremental sync from a pre-restart token replayed the room's creation (token not honoured): {sync}"
        );

        // Room state written before the restart is still served by /state.
        let path = format!("/_matrix/client/v3/rooms/{}/state/m.room.name/", enc(&room_id));
        let name = http.get(&path, Some(&token)).await.ok();
        assert_eq!(name["name"], "r");
    })
    .await;
}
