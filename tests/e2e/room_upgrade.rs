//! Room upgrades (issue 14): `POST /rooms/{roomId}/upgrade` through matrix-sdk: the spec's 403
//! and 400, the tombstone seen by a member's client in the old room, the new room's create
//! event (`predecessor`) and copied state, the alias and canonical alias moved, the old room's
//! power levels restricted, invites and bans carried over, and a member following the
//! tombstone by joining. A patient-context room's upgrade stays a patient-context room.

use handover_e2e::account::Account;
use handover_e2e::*;
use matrix_sdk::Client;
use matrix_sdk::ruma::api::client::room::create_room::v3::RoomPreset;
use matrix_sdk::ruma::api::client::room::{Visibility, upgrade_room};
use matrix_sdk::ruma::api::error::ErrorKind;
use matrix_sdk::ruma::events::room::message::RoomMessageEventContent;
use matrix_sdk::ruma::{OwnedRoomId, RoomId, RoomVersionId, room_alias_id, user_id};
use serde_json::Value;

async fn upgrade(c: &Client, room: &RoomId, v: RoomVersionId) -> Result<OwnedRoomId, ErrorKind> {
    c.send(upgrade_room::v3::Request::new(room.to_owned(), v))
        .await
        .map(|r| r.replacement_room)
        .map_err(|e| e.client_api_error_kind().cloned().expect("a Matrix error"))
}

async fn state(http: &Http, c: &Client, room: &RoomId, kind: &str, key: &str) -> Resp {
    let path = format!(
        "/_matrix/client/v3/rooms/{}/state/{kind}/{}",
        enc(room.as_str()),
        enc(key)
    );
    http.get(&path, Some(&c.access_token().unwrap())).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upgrade_tombstones_the_old_room_and_moves_state_aliases_and_members() {
    with_timeout(180, async {
        let server = TestServer::start().await;
        let http = server.http();
        let alice = server.register("alice").await;
        let bob = server.register("bob").await;
        let carol = Account::register(http.clone(), "carol").await;
        let dave = Account::register(http.clone(), "dave").await;

        let mut req = unencrypted_room();
        req.preset = Some(RoomPreset::PublicChat);
        req.visibility = Visibility::Public;
        req.room_version = Some(RoomVersionId::V11);
        req.name = Some("Ward 7".into());
        req.topic = Some("Handover for ward 7".into());
        req.room_alias_name = Some("ward-7".into());
        let room = alice.create_room(req).await.expect("create room");
        let old = room.room_id().to_owned();
        bob.join_room_by_id(&old).await.expect("bob joins");
        room.invite_user_by_id(user_id!("@carol:localhost")).await.expect("invite carol");
        dave.join(old.as_str(), &[]).await;
        room.ban_user(user_id!("@dave:localhost"), Some("disruptive")).await.expect("ban");
        room.send(RoomMessageEventContent::text_plain("before the upgrade")).await.unwrap();

        // Bob (power 0) may not send the tombstone; version 1 is not offered.
        assert_eq!(upgrade(&bob, &old, RoomVersionId::V12).await, Err(ErrorKind::Forbidden));
        assert!(matches!(
            upgrade(&alice, &old, RoomVersionId::V1).await,
            Err(ErrorKind::UnsupportedRoomVersion)
        ));
        let new = upgrade(&alice, &old, RoomVersionId::V12).await.expect("upgrade");
        assert_ne!(new, old);
        // Twice is refused: the room was replaced already.
        assert!(upgrade(&alice, &old, RoomVersionId::V12).await.is_err());

        // Bob's client sees the tombstone in the old room, and follows it by joining.
        let successor = sync_until(&bob, 30, "bob sees the tombstone", |_| {
            bob.get_room(&old)?.successor_room().map(|s| s.room_id)
        })
        .await;
        assert_eq!(successor, new);
        bob.join_room_by_id(&new).await.expect("bob follows the tombstone");
        let bob_new = sync_until(&bob, 30, "bob's client has the new room", |_| {
            bob.get_room(&new).filter(|r| r.name().is_some())
        })
        .await;
        assert_eq!(bob_new.predecessor_room().map(|p| p.room_id), Some(old.clone()));
        assert_eq!(bob_new.name().as_deref(), Some("Ward 7"));
        assert_eq!(bob_new.topic().as_deref(), Some("Handover for ward 7"));

        // The create event: v12, predecessor without event_id (v12's shape), no creator key.
        let create = state(&http, &bob, &new, "m.room.create", "").await.ok();
        assert_eq!(create["room_version"], "12");
        assert_eq!(create["predecessor"], json!({ "room_id": old }));
        assert!(create.get("creator").is_none());
        for (kind, field, want) in [
            ("m.room.join_rules", "join_rule", "public"),
            ("m.room.history_visibility", "history_visibility", "shared"),
            ("m.room.guest_access", "guest_access", "forbidden"),
            ("m.room.canonical_alias", "alias", "#ward-7:localhost"),
        ] {
            let got = state(&http, &bob, &new, kind, "").await.ok();
            assert_eq!(got[field], want, "{kind} in the new room");
        }
        // The creator is not listed in a v12 room's power levels (infinite power instead).
        let pl = state(&http, &bob, &new, "m.room.power_levels", "").await.ok();
        assert!(pl["users"].get("@alice:localhost").is_none(), "{pl}");
        assert_eq!(pl["events"]["m.room.tombstone"], 100);

        // The alias moved, the directory listing too; the old room lost its canonical alias.
        let resolved = bob.resolve_room_alias(room_alias_id!("#ward-7:localhost")).await.unwrap();
        assert_eq!(resolved.room_id, new);
        let canonical = state(&http, &bob, &old, "m.room.canonical_alias", "").await.ok();
        assert_eq!(canonical, json!({}));
        let listed = |r: &RoomId| {
            let (http, path) = (http.clone(), format!("/_matrix/client/v3/directory/list/room/{}", enc(r.as_str())));
            async move { http.get(&path, None).await.ok()["visibility"].clone() }
        };
        assert_eq!(listed(&old).await, "private");
        assert_eq!(listed(&new).await, "public");

        // The old room: ordinary members can no longer talk there.
        let old_pl = state(&http, &bob, &old, "m.room.power_levels", "").await.ok();
        assert_eq!((old_pl["events_default"].clone(), old_pl["invite"].clone()), (json!(50), json!(50)));
        let bob_old = bob.get_room(&old).unwrap();
        assert!(bob_old.send(RoomMessageEventContent::text_plain("late")).await.is_err());

        // Carol's invite and Dave's ban carried over.
        let member = |u: &'static str| {
            let (http, bob, new) = (http.clone(), bob.clone(), new.clone());
            async move { state(&http, &bob, &new, "m.room.member", u).await.ok()["membership"].clone() }
        };
        assert_eq!(member("@carol:localhost").await, "invite");
        assert_eq!(member("@dave:localhost").await, "ban");
        carol.wait_invite(new.as_str(), 30).await;
        assert!(dave.try_join(new.as_str(), &[]).await.errcode().is_some());
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn patient_context_room_upgrade_stays_private_and_names_the_last_event() {
    with_timeout(120, async {
        let server = TestServer::start().await;
        let http = server.http();
        let alice = Account::register(http.clone(), "alice").await;
        let room = alice
            .create_room(&json!({
                "room_version": "10",
                "creation_content": { "org.handover.context": "patient" },
                "name": "Bed 12",
            }))
            .await;
        let last = alice.send_text(&room, "obs stable").await;
        let path = format!("/_matrix/client/v3/rooms/{}/upgrade", enc(&room));
        let new = alice
            .post(&path, &json!({ "new_version": "11" }))
            .await
            .ok()["replacement_room"]
            .as_str()
            .expect("replacement_room")
            .to_owned();
        let get = |kind: &'static str| {
            let (alice, path) = (
                &alice,
                format!("/_matrix/client/v3/rooms/{}/state/{kind}/", enc(&new)),
            );
            async move { alice.get(&path).await.ok() }
        };
        let create: Value = get("m.room.create").await;
        assert_eq!(create["org.handover.context"], "patient");
        // v11 drops `creator` (the create event's sender is the creator).
        assert!(create.get("creator").is_none());
        // Before v12 the predecessor names the old room's last event.
        assert_eq!(
            create["predecessor"],
            json!({ "room_id": room, "event_id": last })
        );
        assert_eq!(get("m.room.join_rules").await["join_rule"], "invite");
        assert_eq!(
            get("m.room.history_visibility").await["history_visibility"],
            "joined"
        );
        assert_eq!(
            get("m.room.encryption").await["algorithm"],
            "m.megolm.v1.aes-sha2"
        );
        assert_eq!(get("m.room.name").await["name"], "Bed 12");
        // v11: the upgrader is listed, with at least what copying the state needed.
        assert_eq!(
            get("m.room.power_levels").await["users"][alice.user_id.as_str()],
            100
        );
        let tomb = alice
            .get(&format!(
                "/_matrix/client/v3/rooms/{}/state/m.room.tombstone/",
                enc(&room)
            ))
            .await
            .ok();
        assert_eq!(tomb["replacement_room"], new.as_str());
    })
    .await;
}
