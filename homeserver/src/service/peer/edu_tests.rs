//! Inbound EDUs through `EduService::handle`: each kind reaches local users, and every EDU
//! about a user of another server than the origin (spoofing), about a room the user is not
//! joined to, or that does not parse, is dropped without disturbing the rest.

use ruma::api::client::filter::Filter;
use ruma::api::federation::transactions::edu::Edu;
use ruma::serde::Raw;
use ruma::{OwnedRoomId, OwnedServerName, OwnedUserId, ServerName};
use serde_json::{Value, json};

use crate::service::test_util::{remote_join, room, text};
use crate::service::users::{Session, test_login};
use crate::service::{Services, test_services};

fn edu(v: Value) -> Raw<Edu> {
    Raw::new(&v).unwrap().cast_unchecked()
}

fn id(s: &str) -> OwnedUserId {
    s.try_into().unwrap()
}

fn origin() -> OwnedServerName {
    "remote.nhs.uk".try_into().unwrap()
}

/// Alice (local) and Bob (remote.nhs.uk) joined to one room; Mallory (also of
/// remote.nhs.uk) is not in it; Eve (other.nhs.uk) is.
async fn setup() -> (Services, tempfile::TempDir, Session, OwnedRoomId) {
    let (s, d) = test_services();
    let (alice, _) = test_login(&s.users, "alice", "correct horse").await;
    let r = room(&s, &alice.user_id, "ward", true).await;
    remote_join(&s, &r, &id("@bob:remote.nhs.uk")).await;
    remote_join(&s, &r, &id("@eve:other.nhs.uk")).await;
    (s, d, alice, r)
}

async fn handle(s: &Services, from: &ServerName, edus: Vec<Value>) {
    s.edus
        .handle(from, edus.into_iter().map(edu).collect())
        .await;
}

#[tokio::test]
async fn typing_from_members_of_the_origin_only() {
    let (s, _d, _alice, r) = setup().await;
    let typing = |who: &str, room: &str| json!({ "edu_type": "m.typing", "content": { "room_id": room, "user_id": who, "typing": true } });
    handle(
        &s,
        &origin(),
        vec![
            json!({ "edu_type": "m.typing", "content": { "nonsense": 1 } }),
            typing("@eve:other.nhs.uk", r.as_str()),
            typing("@mallory:remote.nhs.uk", r.as_str()),
            typing("@bob:remote.nhs.uk", "!unknown:localhost"),
            typing("@bob:remote.nhs.uk", r.as_str()),
        ],
    )
    .await;
    assert_eq!(
        s.typing.typing_since(&r, 0).unwrap(),
        vec![id("@bob:remote.nhs.uk")]
    );
    let stop = json!({ "edu_type": "m.typing",
        "content": { "room_id": r, "user_id": "@bob:remote.nhs.uk", "typing": false } });
    handle(&s, &origin(), vec![stop]).await;
    assert!(s.typing.typing_since(&r, 0).unwrap().is_empty());
}

#[tokio::test]
async fn receipts_from_members_of_the_origin_only() {
    let (s, _d, alice, r) = setup().await;
    let ev = text(&s, &r, &alice.user_id, "hello").await;
    let receipt = |who: &str| {
        json!({ "edu_type": "m.receipt", "content": { r.as_str(): { "m.read": {
            who: { "data": { "ts": 1234 }, "event_ids": [ev.as_str()] } } } } })
    };
    handle(
        &s,
        &origin(),
        vec![
            receipt("@eve:other.nhs.uk"),
            receipt("@mallory:remote.nhs.uk"),
            receipt("@bob:remote.nhs.uk"),
        ],
    )
    .await;
    let e = s
        .receipts
        .receipt_event(&r, &alice.user_id, 0, s.rooms.current_pos())
        .await
        .unwrap()
        .unwrap();
    let readers = e["content"][ev.as_str()]["m.read"].as_object().unwrap();
    assert_eq!(
        readers.keys().collect::<Vec<_>>(),
        vec!["@bob:remote.nhs.uk"]
    );
    assert_eq!(readers["@bob:remote.nhs.uk"]["ts"], 1234);
}

#[tokio::test]
async fn presence_of_the_origin_users_in_a_room_with_us_only() {
    let (s, _d, alice, _r) = setup().await;
    let presence = |who: &str| {
        json!({ "user_id": who, "presence": "online", "last_active_ago": 5000,
                "status_msg": "on ward round" })
    };
    handle(
        &s,
        &origin(),
        vec![json!({ "edu_type": "m.presence", "content": { "push": [
            presence("@eve:other.nhs.uk"),
            presence("@mallory:remote.nhs.uk"),
            presence("@bob:remote.nhs.uk"),
        ] } })],
    )
    .await;
    let (events, news) = s
        .presence
        .events_for(&alice.user_id, 0, s.rooms.current_pos(), &Filter::default())
        .await
        .unwrap();
    assert!(news);
    let senders: Vec<Value> = events
        .iter()
        .map(|e| serde_json::from_str::<Value>(e.json().get()).unwrap())
        .collect();
    assert_eq!(senders.len(), 1, "{senders:?}");
    assert_eq!(senders[0]["sender"], "@bob:remote.nhs.uk");
    assert_eq!(senders[0]["content"]["status_msg"], "on ward round");
    assert!(senders[0]["content"]["last_active_ago"].as_u64().unwrap() >= 5000);
    // Mallory shares no room with us: nothing is kept for her.
    assert_eq!(
        s.presence
            .get(&id("@mallory:remote.nhs.uk"), &id("@mallory:remote.nhs.uk"))
            .await
            .unwrap()
            .status_msg,
        None
    );
}

#[tokio::test]
async fn device_list_and_signing_key_updates_reach_room_mates() {
    let (s, _d, alice, _r) = setup().await;
    let since = s.rooms.current_pos();
    handle(
        &s,
        &origin(),
        vec![
            json!({ "edu_type": "m.device_list_update", "content": {
                "user_id": "@eve:other.nhs.uk", "device_id": "X", "stream_id": 1 } }),
            json!({ "edu_type": "m.device_list_update", "content": { "user_id": "@bob:remote.nhs.uk" } }),
        ],
    )
    .await;
    let changed = |s: &Services, since| {
        let (s, u) = (s.e2ee.clone(), alice.user_id.clone());
        async move {
            s.device_list_changes(&u, since, i64::MAX)
                .await
                .unwrap()
                .changed
        }
    };
    assert!(changed(&s, since).await.is_empty(), "spoofed and malformed");
    handle(
        &s,
        &origin(),
        vec![json!({ "edu_type": "m.device_list_update", "content": {
            "user_id": "@bob:remote.nhs.uk", "device_id": "BOBDEV", "stream_id": 3, "deleted": true } })],
    )
    .await;
    assert_eq!(changed(&s, since).await, vec![id("@bob:remote.nhs.uk")]);
    let since = s.rooms.current_pos();
    handle(
        &s,
        &origin(),
        vec![json!({ "edu_type": "m.signing_key_update", "content": {
            "user_id": "@bob:remote.nhs.uk",
            "master_key": { "user_id": "@bob:remote.nhs.uk", "usage": ["master"], "keys": { "ed25519:M": "M" } } } })],
    )
    .await;
    assert_eq!(changed(&s, since).await, vec![id("@bob:remote.nhs.uk")]);
}

#[tokio::test]
async fn to_device_messages_are_delivered_once_from_their_senders_server() {
    let (s, _d, alice, _r) = setup().await;
    let msg = |sender: &str, message_id: &str| {
        json!({ "edu_type": "m.direct_to_device", "content": {
            "sender": sender, "type": "m.room_key_request", "message_id": message_id,
            "messages": {
                alice.user_id.as_str(): { "*": { "action": "request", "body": message_id } },
                "@carol:elsewhere.nhs.uk": { "*": { "action": "request" } }
            } } })
    };
    handle(
        &s,
        &origin(),
        vec![
            msg("@eve:other.nhs.uk", "spoofed"),
            msg("@bob:remote.nhs.uk", "m1"),
            msg("@bob:remote.nhs.uk", "m1"),
            msg("@bob:remote.nhs.uk", "m2"),
        ],
    )
    .await;
    // A retried transaction.
    handle(&s, &origin(), vec![msg("@bob:remote.nhs.uk", "m2")]).await;
    let d = s
        .to_device
        .deliver(&alice.user_id, &alice.device_id, None, i64::MAX)
        .await
        .unwrap();
    let got: Vec<Value> = d
        .events
        .iter()
        .map(|e| serde_json::from_str(e.json().get()).unwrap())
        .collect();
    assert_eq!(got.len(), 2, "{got:?}");
    for (e, mid) in got.iter().zip(["m1", "m2"]) {
        assert_eq!(e["sender"], "@bob:remote.nhs.uk");
        assert_eq!(e["type"], "m.room_key_request");
        assert_eq!(e["content"]["body"], mid);
    }
}

#[tokio::test]
async fn an_unknown_local_user_or_device_is_skipped() {
    let (s, _d) = test_services();
    let (alice, _) = test_login(&s.users, "alice", "correct horse").await;
    handle(
        &s,
        &origin(),
        vec![json!({ "edu_type": "m.direct_to_device", "content": {
            "sender": "@bob:remote.nhs.uk", "type": "m.dummy", "message_id": "x",
            "messages": {
                "@nobody:localhost": { "*": {} },
                alice.user_id.as_str(): { "NOSUCHDEVICE": {}, alice.device_id.as_str(): { "ok": true } }
            } } })],
    )
    .await;
    let d = s
        .to_device
        .deliver(&alice.user_id, &alice.device_id, None, i64::MAX)
        .await
        .unwrap();
    assert_eq!(d.events.len(), 1);
}

#[tokio::test]
async fn typing_and_receipts_from_a_server_denied_by_the_room_acl_are_dropped() {
    let (s, _d, alice, r) = setup().await;
    let ev = text(&s, &r, &alice.user_id, "hello").await;
    let acl = crate::service::rooms::timeline::build::EventSpec::state(
        ruma::events::StateEventType::RoomServerAcl,
        "",
        json!({ "allow": ["*"], "deny": ["remote.nhs.uk"], "allow_ip_literals": false }),
    );
    s.rooms.send_state(&r, &alice.user_id, acl).await.unwrap();
    handle(
        &s,
        &origin(),
        vec![
            json!({ "edu_type": "m.typing", "content": {
                "room_id": r, "user_id": "@bob:remote.nhs.uk", "typing": true } }),
            json!({ "edu_type": "m.receipt", "content": { r.as_str(): { "m.read": {
                "@bob:remote.nhs.uk": { "data": { "ts": 1 }, "event_ids": [ev.as_str()] } } } } }),
        ],
    )
    .await;
    assert!(s.typing.typing_since(&r, 0).is_none_or(|t| t.is_empty()));
    let e = s
        .receipts
        .receipt_event(&r, &alice.user_id, 0, s.rooms.current_pos())
        .await
        .unwrap();
    assert!(e.is_none(), "{e:?}");
    // The room's other server is still heard.
    let other: OwnedServerName = "other.nhs.uk".try_into().unwrap();
    handle(
        &s,
        &other,
        vec![json!({ "edu_type": "m.typing", "content": {
            "room_id": r, "user_id": "@eve:other.nhs.uk", "typing": true } })],
    )
    .await;
    assert_eq!(
        s.typing.typing_since(&r, 0).unwrap(),
        vec![id("@eve:other.nhs.uk")]
    );
}
