//! Security review (issue 9), federation hardening: remote redactions, server ACLs on invites.

use ruma::events::StateEventType;
use ruma::{OwnedEventId, OwnedRoomId, OwnedUserId, ServerName};
use serde_json::json;

use super::tests::{REMOTE, Remote, joined_room, obj, setup_with_store};
use crate::service::Services;
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
