//! Remote events into our rooms, without a network: the remote server `b.nhs.uk` is a key pair
//! in our key cache, and its events are built and signed here as it would.

use std::sync::Arc;

use handover_policy::{FederationGate, LiveFederationList};
use ruma::api::client::filter::RoomEventFilter;
use ruma::signatures::{Ed25519KeyPair, hash_and_sign_event, reference_hash};
use ruma::{
    CanonicalJsonObject, CanonicalJsonValue, EventId, OwnedEventId, OwnedRoomId, RoomVersionId,
};
use serde_json::json;
use serde_json::value::RawValue as RawJsonValue;

use super::Membership;
use crate::service::Services;
use crate::service::federation::server_keys;
use crate::service::test_util;
use crate::store::now_ms;
use crate::store::rooms::Direction;
use crate::store::server_keys::ServerKeyStore;
use crate::store::sqlite::SqliteStore;

pub(super) const REMOTE: &str = "b.nhs.uk";

pub(super) struct Remote {
    pub(super) kp: Ed25519KeyPair,
}

fn setup() -> (Services, Remote, tempfile::TempDir) {
    let (s, r, _, d) = setup_with_store();
    (s, r, d)
}

pub(super) fn setup_with_store() -> (Services, Remote, SqliteStore, tempfile::TempDir) {
    setup_with_subscribers(Vec::new())
}

/// As `setup_with_store`, with extra commit pipeline subscribers.
pub(super) fn setup_with_subscribers(
    extra: Vec<Arc<dyn crate::service::commit::CommitSubscriber>>,
) -> (Services, Remote, SqliteStore, tempfile::TempDir) {
    let doc = br#"{"serial":1,"organisations":[{"ods_code":"RBB","servers":["b.nhs.uk"]}]}"#;
    let gate = FederationGate {
        list: Some(LiveFederationList::load(doc, None, None).unwrap()),
    };
    let (s, store, dir) = crate::service::test_services_with_subscribers(Arc::new(gate), extra);
    let kp = Ed25519KeyPair::from_der(&Ed25519KeyPair::generate(), "b1".into()).unwrap();
    cache_key(&store, REMOTE, &kp);
    (s, Remote { kp }, store, dir)
}

fn cache_key(store: &SqliteStore, origin: &str, kp: &Ed25519KeyPair) {
    let origin = <&ruma::ServerName>::try_from(origin).unwrap();
    let raw = server_keys::own_response(origin, kp, now_ms()).unwrap();
    let v = server_keys::verify_response(origin, raw.json().get(), now_ms()).unwrap();
    store
        .save_server_keys(origin.as_str(), &v.keys, &v.response, now_ms())
        .unwrap();
}

impl Remote {
    /// Signs `obj` as the remote server; returns its id and JSON.
    pub(super) fn sign(&self, mut obj: CanonicalJsonObject) -> (OwnedEventId, Box<RawJsonValue>) {
        let rules = RoomVersionId::V12.rules().unwrap();
        hash_and_sign_event(REMOTE, &self.kp, &mut obj, &rules.redaction).unwrap();
        let hash = reference_hash(&obj, &rules).unwrap();
        let id = EventId::new_v2_or_v3(&hash).unwrap();
        (
            id,
            RawJsonValue::from_string(serde_json::to_string(&obj).unwrap()).unwrap(),
        )
    }
}

pub(super) fn obj(v: serde_json::Value) -> CanonicalJsonObject {
    serde_json::from_value(v).unwrap()
}

/// A public room of ours with @bob:b.nhs.uk joined through make_join/send_join.
pub(super) async fn joined_room(s: &Services, r: &Remote) -> (OwnedRoomId, OwnedEventId) {
    let alice = test_util::user(s, "alice").await;
    let room = test_util::room(s, &alice, "Ward 7", true).await;
    let bob: ruma::OwnedUserId = "@bob:b.nhs.uk".try_into().unwrap();
    let origin = <&ruma::ServerName>::try_from(REMOTE).unwrap();
    let (version, template) = s
        .rooms
        .make_membership(origin, &room, &bob, Membership::Join, &[RoomVersionId::V12])
        .await
        .unwrap();
    assert_eq!(version, RoomVersionId::V12);
    let mut t: CanonicalJsonObject = serde_json::from_str(template.get()).unwrap();
    t.insert("origin".into(), CanonicalJsonValue::String(REMOTE.into()));
    let (id, raw) = r.sign(t);
    let answer = s.rooms.send_join(origin, &room, &id, &raw).await.unwrap();
    let types: Vec<String> = answer
        .state
        .iter()
        .map(|e| {
            serde_json::from_str::<serde_json::Value>(e.get()).unwrap()["type"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert!(types.contains(&"m.room.create".to_owned()), "{types:?}");
    assert!(!answer.auth_chain.is_empty());
    (room, id)
}

pub(super) fn message(
    room: &OwnedRoomId,
    prev: &OwnedEventId,
    state: &crate::service::rooms::state::RoomState,
    body: &str,
) -> CanonicalJsonObject {
    let member = state
        .get(&ruma::events::StateEventType::RoomMember, "@bob:b.nhs.uk")
        .unwrap()
        .event_id
        .clone();
    let pl = state
        .get(&ruma::events::StateEventType::RoomPowerLevels, "")
        .unwrap()
        .event_id
        .clone();
    obj(json!({
        "room_id": room, "sender": "@bob:b.nhs.uk", "type": "m.room.message",
        "content": {"msgtype": "m.text", "body": body},
        "auth_events": [member, pl], "prev_events": [prev], "depth": 100,
        "origin_server_ts": now_ms(),
    }))
}

#[tokio::test]
async fn remote_join_then_message_reaches_the_timeline() {
    let (s, r, _d) = setup();
    let (room, join) = joined_room(&s, &r).await;
    let state = s.rooms.current_state(&room).await.unwrap();
    assert_eq!(
        state
            .membership_of(&ruma::OwnedUserId::try_from("@bob:b.nhs.uk").unwrap())
            .as_deref(),
        Some("join")
    );
    assert!(state.joined_servers().iter().any(|s| s == REMOTE));

    let (id, raw) = r.sign(message(&room, &join, &state, "from b"));
    let origin = <&ruma::ServerName>::try_from(REMOTE).unwrap();
    let (got, res) = s.rooms.receive_pdu(origin, &raw).await;
    res.unwrap();
    assert_eq!(got, Some(id.clone()));
    // Twice: no duplicate.
    let (_, again) = s.rooms.receive_pdu(origin, &raw).await;
    again.unwrap();
    let alice: ruma::OwnedUserId = format!("@alice:{}", s.rooms.server_name())
        .try_into()
        .unwrap();
    let page = s
        .rooms
        .messages(
            &room,
            test_util::viewer(&alice),
            None,
            None,
            Direction::Backward,
            5,
            &RoomEventFilter::default(),
        )
        .await
        .unwrap();
    let bodies: Vec<String> = page
        .chunk
        .iter()
        .filter_map(|e| e["content"]["body"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(bodies, vec!["from b".to_owned()]);
}

#[tokio::test]
async fn tampered_or_unlisted_events_are_refused() {
    let (s, r, _d) = setup();
    let (room, join) = joined_room(&s, &r).await;
    let state = s.rooms.current_state(&room).await.unwrap();
    let origin = <&ruma::ServerName>::try_from(REMOTE).unwrap();

    // Signed by a key the server does not publish.
    let forger = Remote {
        kp: Ed25519KeyPair::from_der(&Ed25519KeyPair::generate(), "b1".into()).unwrap(),
    };
    let (_, raw) = forger.sign(message(&room, &join, &state, "forged"));
    let (_, res) = s.rooms.receive_pdu(origin, &raw).await;
    assert!(res.unwrap_err().message().contains("signature"));

    // A member event bringing in a user of an unlisted server.
    let member = obj(json!({
        "room_id": room, "sender": "@bob:b.nhs.uk", "type": "m.room.member", "state_key": "@eve:evil.example",
        "content": {"membership": "invite"},
        "auth_events": [], "prev_events": [join], "depth": 100, "origin_server_ts": now_ms(),
    }));
    let (_, raw) = r.sign(member);
    let (_, res) = s.rooms.receive_pdu(origin, &raw).await;
    assert!(res.unwrap_err().message().contains("federation_not_listed"));

    // Content changed after signing: kept only in redacted form.
    let (id, raw) = r.sign(message(&room, &join, &state, "original"));
    let mut v: serde_json::Value = serde_json::from_str(raw.get()).unwrap();
    v["content"]["body"] = "altered".into();
    let raw = RawJsonValue::from_string(v.to_string()).unwrap();
    let (got, res) = s.rooms.receive_pdu(origin, &raw).await;
    res.unwrap();
    assert_eq!(got, Some(id.clone()));
    let stored = s.rooms.load_json(&id).await.unwrap();
    assert!(
        !stored.contains("altered") && !stored.contains("original"),
        "{stored}"
    );
}

#[tokio::test]
async fn events_for_rooms_we_are_not_in_are_refused() {
    let (s, r, _d) = setup();
    let (room, join) = joined_room(&s, &r).await;
    let state = s.rooms.current_state(&room).await.unwrap();
    let mut m = message(&room, &join, &state, "elsewhere");
    m.insert(
        "room_id".into(),
        CanonicalJsonValue::String("!unknown:b.nhs.uk".into()),
    );
    let (_, raw) = r.sign(m);
    let origin = <&ruma::ServerName>::try_from(REMOTE).unwrap();
    let (_, res) = s.rooms.receive_pdu(origin, &raw).await;
    assert!(res.is_err());
}

/// An event older than the room's lifetime (here 30 days, set by `m.room.retention`) is what
/// our purge removes: another server handing it to us does not bring its content back.
#[tokio::test]
async fn events_older_than_the_room_lifetime_are_not_imported_whole() {
    let (s, r, _d) = setup();
    let (room, join) = joined_room(&s, &r).await;
    let alice: ruma::OwnedUserId = format!("@alice:{}", s.rooms.server_name())
        .try_into()
        .unwrap();
    let day = 86_400_000_i64;
    let spec = crate::service::rooms::EventSpec::state(
        "m.room.retention".into(),
        "",
        json!({ "max_lifetime": 30 * day }),
    );
    s.rooms.send_state(&room, &alice, spec).await.unwrap();
    let state = s.rooms.current_state(&room).await.unwrap();
    let origin = <&ruma::ServerName>::try_from(REMOTE).unwrap();

    let mut old = message(&room, &join, &state, "MARKER-expired-elsewhere");
    old.insert(
        "origin_server_ts".into(),
        CanonicalJsonValue::Integer((now_ms() - 40 * day).try_into().unwrap()),
    );
    let (old_id, raw) = r.sign(old);
    let (_, res) = s.rooms.receive_pdu(origin, &raw).await;
    res.unwrap();
    let stored = s.rooms.load_json(&old_id).await.unwrap();
    assert!(!stored.contains("MARKER-expired-elsewhere"), "{stored}");

    // Within the lifetime: stored whole.
    let (id, raw) = r.sign(message(&room, &old_id, &state, "MARKER-recent"));
    let (_, res) = s.rooms.receive_pdu(origin, &raw).await;
    res.unwrap();
    assert!(
        s.rooms
            .load_json(&id)
            .await
            .unwrap()
            .contains("MARKER-recent")
    );
}
