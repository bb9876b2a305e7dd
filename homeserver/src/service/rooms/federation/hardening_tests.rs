//! Security review (issue 9), federation hardening: remote redactions, server ACLs on invites.

use ruma::api::error::ErrorKind;
use ruma::api::federation::membership::RawStrippedState;
use ruma::events::StateEventType;
use ruma::signatures::Ed25519KeyPair;
use ruma::{OwnedEventId, OwnedRoomId, OwnedUserId, RoomVersionId, ServerName};
use serde_json::json;
use serde_json::value::RawValue as RawJsonValue;

use super::tests::{REMOTE, Remote, joined_room, obj, setup_with_store};
use crate::service::Services;
use crate::service::rooms::timeline::build::EventSpec;
use crate::service::test_util;
use crate::store::now_ms;
use crate::store::rooms::RoomStore;
use crate::store::sqlite::SqliteStore;

fn bob() -> OwnedUserId {
    "@bob:b.nhs.uk".try_into().unwrap()
}

fn origin() -> &'static ServerName {
    <&ServerName>::try_from(REMOTE).unwrap()
}

/// An event of bob's on top of the room's current extremities, authorised by his membership
/// and the power levels.
async fn bob_event(
    s: &Services,
    room: &OwnedRoomId,
    kind: &str,
    content: serde_json::Value,
) -> ruma::CanonicalJsonObject {
    let state = s.rooms.current_state(room).await.unwrap();
    let id = |k: StateEventType, sk: &str| state.get(&k, sk).unwrap().event_id.clone();
    obj(json!({
        "room_id": room, "sender": bob(), "type": kind, "content": content,
        "auth_events": [id(StateEventType::RoomMember, bob().as_str()), id(StateEventType::RoomPowerLevels, "")],
        "prev_events": state.extremities, "depth": 1000, "origin_server_ts": now_ms(),
    }))
}

async fn receive(s: &Services, r: &Remote, ev: ruma::CanonicalJsonObject) -> OwnedEventId {
    let (id, raw) = r.sign(ev);
    let (got, res) = s.rooms.receive_pdu(origin(), &raw).await;
    res.unwrap();
    assert_eq!(got.as_ref(), Some(&id));
    id
}

fn redacted(store: &SqliteStore, id: &OwnedEventId) -> bool {
    store
        .get_event(id.as_str())
        .unwrap()
        .unwrap()
        .redacted_because
        .is_some()
}

#[tokio::test]
async fn remote_redaction_of_another_servers_event_needs_redact_power() {
    let (s, r, store, _d) = setup_with_store();
    let (room, _) = joined_room(&s, &r).await;
    let alice: OwnedUserId = format!("@alice:{}", s.rooms.server_name())
        .try_into()
        .unwrap();
    let note = test_util::text(&s, &room, &alice, "clinical note").await;

    // bob (power 0, another server) redacts alice's note: kept as an event, not applied.
    let ev = bob_event(&s, &room, "m.room.redaction", json!({"redacts": note})).await;
    let redaction = receive(&s, &r, ev).await;
    assert!(store.get_event(redaction.as_str()).unwrap().is_some());
    assert!(
        !redacted(&store, &note),
        "an unprivileged remote redaction took effect"
    );

    // His own event: his server is the original sender's, so it applies.
    let ev = bob_event(
        &s,
        &room,
        "m.room.message",
        json!({"msgtype": "m.text", "body": "oops"}),
    );
    let own = receive(&s, &r, ev.await).await;
    let ev = bob_event(&s, &room, "m.room.redaction", json!({"redacts": own})).await;
    receive(&s, &r, ev).await;
    assert!(redacted(&store, &own));
}

/// A v12 room of bob's server: its create event (whose hash is the room id) and an invite of
/// `invitee` into it.
fn remote_room_invite(
    r: &Remote,
    invitee: &OwnedUserId,
) -> (
    OwnedRoomId,
    Box<RawJsonValue>,
    OwnedEventId,
    Box<RawJsonValue>,
) {
    let create = obj(json!({
        "sender": bob(), "type": "m.room.create", "state_key": "",
        "content": {"room_version": "12"}, "auth_events": [], "prev_events": [],
        "depth": 1, "origin_server_ts": now_ms(),
    }));
    let (cid, craw) = r.sign(create);
    let room: OwnedRoomId = format!("!{}", &cid.as_str()[1..]).try_into().unwrap();
    let (iid, iraw) = r.sign(invite_event(&room, invitee, &cid));
    (room, craw, iid, iraw)
}

fn invite_event(
    room: &OwnedRoomId,
    invitee: &OwnedUserId,
    prev: &OwnedEventId,
) -> ruma::CanonicalJsonObject {
    obj(json!({
        "room_id": room, "sender": bob(), "type": "m.room.member", "state_key": invitee,
        "content": {"membership": "invite"}, "auth_events": [], "prev_events": [prev],
        "depth": 5, "origin_server_ts": now_ms(),
    }))
}

async fn invite(
    s: &Services,
    room: &OwnedRoomId,
    id: &OwnedEventId,
    raw: &RawJsonValue,
    state: Vec<Box<RawJsonValue>>,
) -> crate::error::Result<Box<RawJsonValue>> {
    let state: Vec<RawStrippedState> = state.into_iter().map(RawStrippedState::Pdu).collect();
    s.rooms
        .receive_invite(origin(), room, id, &RoomVersionId::V12, raw, &state)
        .await
}

#[tokio::test]
async fn invite_room_state_must_be_the_rooms_signed_events() {
    let (s, r, _store, _d) = setup_with_store();
    let carol = test_util::user(&s, "carol").await;
    let (room, create, id, raw) = remote_room_invite(&r, &carol);

    // No create event.
    let e = invite(&s, &room, &id, &raw, vec![]).await.unwrap_err();
    assert!(test_util::is_kind(&e, ErrorKind::InvalidParam), "{e:?}");
    // The create event of another room.
    let (_, other_create, _, _) = remote_room_invite(&r, &carol);
    let e = invite(&s, &room, &id, &raw, vec![other_create])
        .await
        .unwrap_err();
    assert!(test_util::is_kind(&e, ErrorKind::InvalidParam), "{e:?}");
    // A name event signed by a key bob's server does not publish.
    let forger = Remote {
        kp: Ed25519KeyPair::from_der(&Ed25519KeyPair::generate(), "b1".into()).unwrap(),
    };
    let (_, name) = forger.sign(obj(json!({
        "room_id": room, "sender": bob(), "type": "m.room.name", "state_key": "",
        "content": {"name": "Trust me"}, "auth_events": [], "prev_events": [],
        "depth": 2, "origin_server_ts": now_ms(),
    })));
    let e = invite(&s, &room, &id, &raw, vec![create.clone(), name])
        .await
        .unwrap_err();
    assert!(test_util::is_kind(&e, ErrorKind::InvalidParam), "{e:?}");
    // The room's own signed create event: accepted and countersigned.
    let signed = invite(&s, &room, &id, &raw, vec![create]).await.unwrap();
    assert!(signed.get().contains(s.rooms.server_name().as_str()));
}

#[tokio::test]
async fn invites_from_a_server_denied_by_the_room_acl_are_refused() {
    let (s, r, _store, _d) = setup_with_store();
    let (room, _) = joined_room(&s, &r).await;
    let alice: OwnedUserId = format!("@alice:{}", s.rooms.server_name())
        .try_into()
        .unwrap();
    let carol = test_util::user(&s, "carol").await;
    let state = s.rooms.current_state(&room).await.unwrap();
    let create = state.get(&StateEventType::RoomCreate, "").unwrap();
    let create_json = s.rooms.load_json(&create.event_id).await.unwrap();
    let create_raw = RawJsonValue::from_string(create_json).unwrap();
    let acl = EventSpec::state(
        StateEventType::RoomServerAcl,
        "",
        json!({"allow": ["*"], "deny": [REMOTE]}),
    );
    s.rooms.send_state(&room, &alice, acl).await.unwrap();
    let prev = state.extremities[0].clone();
    let (id, raw) = r.sign(invite_event(&room, &carol, &prev));
    let e = invite(&s, &room, &id, &raw, vec![create_raw])
        .await
        .unwrap_err();
    assert!(e.message().contains("server ACL"), "{e:?}");
}

fn unlisted_denials(audit: &[handover_compliance::AuditRecord], dir: &str) -> usize {
    audit
        .iter()
        .filter(|r| {
            r.action == crate::service::federation::gate::ACTION_FEDERATION_DENIAL
                && r.target.as_deref() == Some("evil.example")
                && r.details["direction"] == dir
        })
        .count()
}

#[tokio::test]
async fn events_naming_an_unlisted_server_are_refused_and_audited_once_per_room() {
    let (s, r, _store, _d) = setup_with_store();
    let (room, _) = joined_room(&s, &r).await;
    for body in ["one", "two"] {
        // A restricted join "authorised" by a user of an unlisted server.
        let mut ev = bob_event(
            &s,
            &room,
            "m.room.member",
            json!({"membership": "join",
            "displayname": body, "join_authorised_via_users_server": "@x:evil.example"}),
        )
        .await;
        ev.insert("state_key".into(), "@bob2:b.nhs.uk".into());
        let (_, raw) = r.sign(ev);
        let (_, res) = s.rooms.receive_pdu(origin(), &raw).await;
        let e = res.unwrap_err();
        assert!(e.message().contains("federation_not_listed"), "{e:?}");
    }
    // Signed by an unlisted server as well as by its sender's.
    let mut ev = bob_event(
        &s,
        &room,
        "m.room.message",
        json!({"msgtype": "m.text", "body": "x"}),
    )
    .await;
    ev.insert(
        "signatures".into(),
        obj(json!({"evil.example": {"ed25519:a": "c2ln"}})).into(),
    );
    let (_, raw) = r.sign(ev);
    let (_, res) = s.rooms.receive_pdu(origin(), &raw).await;
    assert!(res.unwrap_err().message().contains("federation_not_listed"));
    let audit = s.audit.all().await.unwrap();
    assert_eq!(unlisted_denials(&audit, "inbound"), 1, "{audit:?}");
}

#[tokio::test]
async fn nothing_of_a_shared_room_is_sent_to_an_unlisted_server_in_it() {
    let (s, r, store, _d) = setup_with_store();
    let (room, _) = joined_room(&s, &r).await;
    // As if b.nhs.uk had admitted a user of an unlisted server.
    let eve: OwnedUserId = "@eve:evil.example".try_into().unwrap();
    test_util::remote_join(&s, &room, &eve).await;
    let alice: OwnedUserId = format!("@alice:{}", s.rooms.server_name())
        .try_into()
        .unwrap();
    test_util::text(&s, &room, &alice, "one").await;
    test_util::text(&s, &room, &alice, "two").await;
    let queued: Vec<String> = crate::store::outbox::OutboxStore::queue_counts(&store)
        .unwrap()
        .into_iter()
        .map(|c| c.destination)
        .collect();
    assert!(!queued.contains(&"evil.example".to_owned()), "{queued:?}");
    let audit = s.audit.all().await.unwrap();
    let room_denials: Vec<_> = audit
        .iter()
        .filter(|r| {
            r.target.as_deref() == Some("evil.example") && r.details["room_id"] == room.as_str()
        })
        .collect();
    assert_eq!(room_denials.len(), 1, "{audit:?}");
    assert_eq!(unlisted_denials(&audit, "outbound"), 1);
}

fn checked(r: &Remote, ev: serde_json::Value) -> crate::service::federation::pdu::CheckedPdu {
    let (event_id, raw) = r.sign(obj(ev));
    crate::service::federation::pdu::CheckedPdu {
        event_id,
        object: serde_json::from_str(raw.get()).unwrap(),
        json: raw.get().to_owned(),
        redacted: false,
    }
}

#[test]
fn a_send_join_answer_is_authorised_event_by_event() {
    let (_s, r, _store, _d) = setup_with_store();
    let create = checked(
        &r,
        json!({"sender": bob(), "type": "m.room.create", "state_key": "",
        "content": {"room_version": "12"}, "auth_events": [], "prev_events": [], "depth": 1,
        "origin_server_ts": now_ms()}),
    );
    let room: OwnedRoomId = format!("!{}", &create.event_id.as_str()[1..])
        .try_into()
        .unwrap();
    let event = |sender: &str, kind: &str, key: &str, content, auth: Vec<&OwnedEventId>| {
        checked(
            &r,
            json!({"room_id": room, "sender": sender, "type": kind, "state_key": key,
            "content": content, "auth_events": auth, "prev_events": [create.event_id],
            "depth": 2, "origin_server_ts": now_ms()}),
        )
    };
    let join = event(
        bob().as_str(),
        "m.room.member",
        bob().as_str(),
        json!({"membership": "join"}),
        vec![],
    );
    let pl = event(
        bob().as_str(),
        "m.room.power_levels",
        "",
        json!({"users": {}}),
        vec![&join.event_id],
    );
    let rules = RoomVersionId::V12.rules().unwrap();
    let answer = |extra: Vec<&crate::service::federation::pdu::CheckedPdu>| {
        [&create, &join, &pl]
            .into_iter()
            .chain(extra)
            .map(|c| (c.event_id.clone(), c.clone()))
            .collect::<std::collections::HashMap<_, _>>()
    };
    super::join_remote::authorize_answer(&room, &rules, &answer(vec![])).unwrap();

    // Power levels from someone who never joined: refused, and the join with it.
    let forged = event(
        "@mallory:b.nhs.uk",
        "m.room.power_levels",
        "",
        json!({"users": {"@mallory:b.nhs.uk": 100}}),
        vec![&pl.event_id],
    );
    let e =
        super::join_remote::authorize_answer(&room, &rules, &answer(vec![&forged])).unwrap_err();
    assert!(e.message().contains("not authorised"), "{e:?}");
    // An auth event the answer does not hold.
    let orphan = event(
        bob().as_str(),
        "m.room.name",
        "",
        json!({"name": "x"}),
        vec![&join.event_id, &pl.event_id, &forged.event_id],
    );
    let e =
        super::join_remote::authorize_answer(&room, &rules, &answer(vec![&orphan])).unwrap_err();
    assert!(e.message().contains("not authorised"), "{e:?}");
    // An event of another room.
    let mut other = event(
        bob().as_str(),
        "m.room.topic",
        "",
        json!({"topic": "x"}),
        vec![&join.event_id, &pl.event_id],
    );
    other = checked(&r, {
        let mut v: serde_json::Value = serde_json::from_str(&other.json).unwrap();
        v["room_id"] = "!elsewhere:b.nhs.uk".into();
        v.as_object_mut().unwrap().remove("signatures");
        v.as_object_mut().unwrap().remove("hashes");
        v
    });
    let e = super::join_remote::authorize_answer(&room, &rules, &answer(vec![&other])).unwrap_err();
    assert!(e.message().contains("not an event of"), "{e:?}");
}
