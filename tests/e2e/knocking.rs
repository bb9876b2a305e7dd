//! Knocking (issue 14): `POST /knock/{roomIdOrAlias}` through matrix-sdk on a room whose join
//! rule is `knock`: the knock in the knocker's sync (`rooms.knock`) and in the room, accepted by
//! an invite, rejected by a kick, withdrawn by leaving; refused on an invite-only room; a
//! patient-context room is never knockable (policy rule `patient_room_not_knockable`).

use handover_e2e::account::Account;
use handover_e2e::*;
use matrix_sdk::RoomState;
use matrix_sdk::ruma::{OwnedRoomOrAliasId, RoomId};

fn member_path(room: &str, user: &str) -> String {
    format!(
        "/_matrix/client/v3/rooms/{}/state/m.room.member/{}",
        enc(room),
        enc(user)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn knock_accept_reject_withdraw() {
    with_timeout(180, async {
        let server = TestServer::start().await;
        let http = server.http();
        let alice = Account::register(http.clone(), "alice").await;
        let bob = server.register("bob").await;
        let carol = Account::register(http.clone(), "carol").await;
        let room = alice
            .create_room(&json!({
                "preset": "public_chat",
                "room_alias_name": "team",
                "name": "Team room",
                "initial_state": [{ "type": "m.room.join_rules", "state_key": "",
                                    "content": { "join_rule": "knock" } }],
            }))
            .await;
        let room_id = <&RoomId>::try_from(room.as_str()).unwrap().to_owned();
        let membership = |user: &'static str| {
            let (alice, path) = (&alice, member_path(&room, user));
            async move { alice.get(&path).await.ok() }
        };
        // The join rule is knock: joining directly is refused.
        assert_eq!(
            carol.try_join(&room, &[]).await.errcode().as_deref(),
            Some("M_FORBIDDEN")
        );

        // Bob knocks through the alias; his client has the room as knocked, with its name.
        let alias: OwnedRoomOrAliasId = "#team:localhost".try_into().unwrap();
        let knocked = bob
            .knock(alias, Some("covering nights".into()), vec![])
            .await
            .expect("knock");
        assert_eq!(knocked.room_id(), room_id);
        sync_until(&bob, 30, "bob's sync has the knock", |r| {
            r.rooms.knocked.contains_key(&room_id).then_some(())
        })
        .await;
        let bob_room = bob.get_room(&room_id).unwrap();
        assert_eq!(bob_room.state(), RoomState::Knocked);
        assert_eq!(bob_room.name().as_deref(), Some("Team room"));
        let m = membership("@bob:localhost").await;
        assert_eq!(
            (m["membership"].as_str(), m["reason"].as_str()),
            (Some("knock"), Some("covering nights"))
        );
        // Knocking again changes nothing.
        let again: OwnedRoomOrAliasId = room_id.clone().into();
        bob.knock(again, None, vec![]).await.expect("second knock");

        // Accepted by an invite; Bob joins.
        alice.invite(&room, "@bob:localhost").await;
        sync_until(&bob, 30, "bob's knock became an invite", |_| {
            (bob.get_room(&room_id)?.state() == RoomState::Invited).then_some(())
        })
        .await;
        bob.join_room_by_id(&room_id).await.expect("bob joins");
        assert_eq!(membership("@bob:localhost").await["membership"], "join");

        // Carol's knock is rejected by a kick; her second knock she withdraws by leaving.
        let knock = format!("/_matrix/client/v3/knock/{}", enc(&room));
        carol
            .post(&knock, &json!({ "reason": "please" }))
            .await
            .ok();
        let kick = format!("/_matrix/client/v3/rooms/{}/kick", enc(&room));
        alice
            .post(
                &kick,
                &json!({ "user_id": "@carol:localhost", "reason": "no" }),
            )
            .await
            .ok();
        let m = membership("@carol:localhost").await;
        assert_eq!(
            (m["membership"].as_str(), m["reason"].as_str()),
            (Some("leave"), Some("no"))
        );
        carol.post(&knock, &json!({})).await.ok();
        assert_eq!(membership("@carol:localhost").await["membership"], "knock");
        carol.leave(&room).await;
        assert_eq!(membership("@carol:localhost").await["membership"], "leave");

        // An invite-only room cannot be knocked on.
        let private = alice
            .create_room(&json!({ "preset": "private_chat" }))
            .await;
        let knock_private = format!("/_matrix/client/v3/knock/{}", enc(&private));
        carol
            .post(&knock_private, &json!({}))
            .await
            .assert_error(403, &["M_FORBIDDEN"]);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn patient_context_rooms_are_never_knockable() {
    with_timeout(120, async {
        let server = TestServer::start().await;
        let http = server.http();
        let alice = Account::register(http.clone(), "alice").await;
        let bob = Account::register(http.clone(), "bob").await;
        let room = alice
            .create_room(&json!({ "creation_content": { "org.handover.context": "patient" } }))
            .await;
        // The room cannot be opened to knocks...
        let path = format!(
            "/_matrix/client/v3/rooms/{}/state/m.room.join_rules/",
            enc(&room)
        );
        alice
            .put(&path, &json!({ "join_rule": "knock" }))
            .await
            .assert_rule(403, "M_FORBIDDEN", "patient_context_room");
        // ...and a knock on it is refused by its own rule before the room's rules are asked.
        let knock = format!("/_matrix/client/v3/knock/{}", enc(&room));
        bob.post(&knock, &json!({})).await.assert_rule(
            403,
            "M_FORBIDDEN",
            "patient_room_not_knockable",
        );
        let m = alice.get(&member_path(&room, "@bob:localhost")).await;
        assert_eq!(m.errcode().as_deref(), Some("M_NOT_FOUND"));
    })
    .await;
}
