//! The room read service on a real store: access, visibility, redaction, state before an
//! event, auth chains, the DAG walks, purged events.

use std::collections::BTreeSet;
use std::time::Duration;

use ruma::api::error::ErrorKind;
use ruma::events::StateEventType;
use ruma::{OwnedEventId, OwnedRoomId, RoomVersionId, UserId};
use serde_json::{Value, json};

use super::test_fixture::{Fx, remote, remote_user};
use super::*;
use crate::service::rooms::EventSpec;
use crate::service::test_util::{history_visibility, is_kind, text};
use crate::store::now_ms;
use crate::store::retention::RetentionStore;

fn val(p: &WirePdu) -> Value {
    serde_json::from_str(p.get()).unwrap()
}

fn other() -> &'static ServerName {
    <&ServerName>::try_from("b.nhs.uk").unwrap()
}

async fn set_state(fx: &Fx, kind: StateEventType, content: Value) -> OwnedEventId {
    let spec = EventSpec::state(kind, "", content);
    fx.s.rooms
        .send_state(&fx.room, &fx.alice, spec)
        .await
        .unwrap()
}

fn stored_set(fx: &Fx, ids: &[OwnedEventId]) -> BTreeSet<String> {
    ids.iter().map(|i| fx.stored(i).to_string()).collect()
}

fn wire_set(pdus: &[WirePdu]) -> BTreeSet<String> {
    pdus.iter().map(|p| val(p).to_string()).collect()
}

#[tokio::test]
async fn access_needs_a_joined_member_or_a_world_readable_room() {
    let fx = Fx::new(RoomVersionId::V12).await;
    let rr = &fx.s.room_read;
    let msg = text(&fx.s, &fx.room, &fx.alice, "hello").await;

    let unknown: OwnedRoomId = "!nowhere:localhost".try_into().unwrap();
    let err = rr.state_ids(remote(), &unknown, &msg).await.unwrap_err();
    assert!(is_kind(&err, ErrorKind::NotFound));
    let err = rr.event(remote(), &msg).await.unwrap_err();
    assert!(is_kind(&err, ErrorKind::Forbidden), "{err}");

    // Invited is not enough: a joined member is.
    let bob = remote_user("bob");
    let invite = EventSpec::state(
        StateEventType::RoomMember,
        bob.as_str(),
        json!({ "membership": "invite" }),
    );
    fx.append_as(&fx.alice, invite).await;
    let err = rr
        .backfill(remote(), &fx.room, vec![msg.clone()], 5)
        .await
        .unwrap_err();
    assert!(is_kind(&err, ErrorKind::Forbidden));
    let join = EventSpec::state(
        StateEventType::RoomMember,
        bob.as_str(),
        json!({ "membership": "join" }),
    );
    fx.append_as(&bob, join).await;
    rr.event(remote(), &msg).await.unwrap();
    rr.backfill(remote(), &fx.room, vec![msg.clone()], 5)
        .await
        .unwrap();
    // Once its last member is gone, the server is refused again.
    fx.s.rooms
        .kick(&fx.room, &fx.alice, &bob, None)
        .await
        .unwrap();
    assert!(is_kind(
        &rr.event(remote(), &msg).await.unwrap_err(),
        ErrorKind::Forbidden
    ));

    // A server with no member may read a world_readable room, but only what was sent while it
    // was world_readable (the earlier message, under `shared`, comes back redacted).
    assert!(is_kind(
        &rr.event(other(), &msg).await.unwrap_err(),
        ErrorKind::Forbidden
    ));
    history_visibility(&fx.s, &fx.room, &fx.alice, "world_readable").await;
    let open = text(&fx.s, &fx.room, &fx.alice, "open").await;
    assert_eq!(
        val(&rr.event(other(), &open).await.unwrap())["content"]["body"],
        "open"
    );
    assert_eq!(
        val(&rr.event(other(), &msg).await.unwrap())["content"],
        json!({})
    );

    // The room's server ACL applies even to a joined server.
    set_state(
        &fx,
        StateEventType::RoomServerAcl,
        json!({ "allow": ["*"], "deny": ["a.nhs.uk"], "allow_ip_literals": false }),
    )
    .await;
    let err = rr.event(remote(), &msg).await.unwrap_err();
    assert!(is_kind(&err, ErrorKind::Forbidden));
    assert!(err.to_string().contains("server ACL"));
}

#[tokio::test]
async fn events_are_served_as_stored_or_redacted() {
    let fx = Fx::new(RoomVersionId::V12).await;
    let rr = &fx.s.room_read;
    history_visibility(&fx.s, &fx.room, &fx.alice, "joined").await;
    let before = text(&fx.s, &fx.room, &fx.alice, "before the server joined").await;
    fx.remote_join(&remote_user("bob")).await;
    let after = text(&fx.s, &fx.room, &fx.alice, "after").await;
    let gone = text(&fx.s, &fx.room, &fx.alice, "to be redacted").await;
    let dev: ruma::OwnedDeviceId = "D".into();
    fx.s.rooms
        .redact(&fx.room, &fx.alice, &gone, None, (&dev, "t1"))
        .await
        .unwrap();

    // Visible: exactly the stored, signed PDU (no unsigned data added).
    let got = val(&rr.event(remote(), &after).await.unwrap());
    assert_eq!(got, fx.stored(&after));
    assert!(got.get("unsigned").is_none());

    // Sent before the server had a member (`joined`): the redacted form, still signed.
    let got = val(&rr.event(remote(), &before).await.unwrap());
    assert_eq!(got["content"], json!({}));
    assert_eq!(got["signatures"], fx.stored(&before)["signatures"]);
    assert_eq!(got["hashes"], fx.stored(&before)["hashes"]);

    // Redacted: the redacted form for everyone.
    assert_eq!(
        val(&rr.event(remote(), &gone).await.unwrap())["content"],
        json!({})
    );

    let nope: OwnedEventId = "$nope".try_into().unwrap();
    assert!(is_kind(
        &rr.event(remote(), &nope).await.unwrap_err(),
        ErrorKind::NotFound
    ));

    // Purged by retention: not found, and never part of a walk.
    let latest = text(&fx.s, &fx.room, &fx.alice, "latest").await;
    fx.store
        .purge_events(vec![after.to_string()], vec![], now_ms())
        .unwrap();
    assert!(is_kind(
        &rr.event(remote(), &after).await.unwrap_err(),
        ErrorKind::NotFound
    ));
    // The walk back from the latest event ends at the gap: latest, the redaction, the redacted.
    let walked = rr
        .backfill(remote(), &fx.room, vec![latest], 100)
        .await
        .unwrap();
    assert_eq!(walked.len(), 3);
    assert_eq!(val(&walked[0])["content"]["body"], "latest");
    assert_eq!(val(&walked[2])["content"], json!({}));
}

#[tokio::test]
async fn state_is_the_state_before_the_event_with_its_auth_chain() {
    let fx = Fx::new(RoomVersionId::V10).await;
    let rr = &fx.s.room_read;
    let t1 = set_state(&fx, StateEventType::RoomTopic, json!({ "topic": "one" })).await;
    let t2 = set_state(&fx, StateEventType::RoomTopic, json!({ "topic": "two" })).await;
    fx.remote_join(&remote_user("bob")).await;

    let (pdu_ids, chain_ids) = rr.state_ids(remote(), &fx.room, &t2).await.unwrap();
    assert!(pdu_ids.contains(&t1) && !pdu_ids.contains(&t2));
    let (pdus, chain) = rr.state(remote(), &fx.room, &t2).await.unwrap();
    assert_eq!(wire_set(&pdus), stored_set(&fx, &pdu_ids));
    assert_eq!(wire_set(&chain), stored_set(&fx, &chain_ids));
    // v10: the create event is in every auth chain; the topic is in none.
    let create = fx.s.rooms.current_state(&fx.room).await.unwrap();
    let create = create
        .get(&StateEventType::RoomCreate, "")
        .unwrap()
        .event_id
        .clone();
    assert!(chain_ids.contains(&create) && !chain_ids.contains(&t1));

    // Before the create event there is no state at all.
    let (pdu_ids, chain_ids) = rr.state_ids(remote(), &fx.room, &create).await.unwrap();
    assert!(pdu_ids.is_empty() && chain_ids.is_empty());

    // /event_auth: the event's auth chain, recursively, without the event itself.
    let auth = rr.event_auth(remote(), &fx.room, &t2).await.unwrap();
    let expected = [
        create,
        state_id(&fx, StateEventType::RoomPowerLevels, "").await,
    ];
    assert!(stored_set(&fx, &expected).is_subset(&wire_set(&auth)));
    assert!(!wire_set(&auth).contains(&fx.stored(&t2).to_string()));

    // An event of another room or none at all: 404.
    let other = Fx::with_room_of(&fx).await;
    let err = rr.state(remote(), &fx.room, &other).await.unwrap_err();
    assert!(is_kind(&err, ErrorKind::NotFound));
}

async fn state_id(fx: &Fx, kind: StateEventType, key: &str) -> OwnedEventId {
    let st = fx.s.rooms.current_state(&fx.room).await.unwrap();
    st.get(&kind, key).unwrap().event_id.clone()
}

impl Fx {
    /// An event in a second room of the same server.
    async fn with_room_of(fx: &Fx) -> OwnedEventId {
        let r = crate::service::test_util::room(&fx.s, &fx.alice, "Elsewhere", false).await;
        text(&fx.s, &r, &fx.alice, "elsewhere").await
    }
}

#[tokio::test]
async fn state_at_an_event_the_server_cannot_see_is_judged_event_by_event() {
    let fx = Fx::new(RoomVersionId::V12).await;
    let rr = &fx.s.room_read;
    history_visibility(&fx.s, &fx.room, &fx.alice, "joined").await;
    set_state(
        &fx,
        StateEventType::RoomTopic,
        json!({ "topic": "ward rounds" }),
    )
    .await;
    let carol = crate::service::test_util::user(&fx.s, "carol").await;
    crate::service::test_util::join(&fx.s, &fx.room, &fx.alice, &carol).await;
    let early = text(&fx.s, &fx.room, &fx.alice, "early").await;
    fx.remote_join(&remote_user("bob")).await;
    let late = text(&fx.s, &fx.room, &fx.alice, "late").await;

    let topic_of = |pdus: &[WirePdu]| {
        pdus.iter()
            .map(val)
            .find(|v| v["type"] == "m.room.topic")
            .unwrap()["content"]
            .clone()
    };
    // At a visible event the whole state is served, topic included.
    let (pdus, _) = rr.state(remote(), &fx.room, &late).await.unwrap();
    assert_eq!(topic_of(&pdus)["topic"], "ward rounds");
    // Before the server joined: what was sent under `joined` (the topic, carol's join) is
    // redacted, a redacted membership keeping its membership; alice's join, sent at creation
    // under `shared`, is whole (bob joined later).
    let (pdus, chain) = rr.state(remote(), &fx.room, &early).await.unwrap();
    assert_eq!(topic_of(&pdus), json!({}));
    let member = |user: &UserId| {
        pdus.iter()
            .chain(&chain)
            .map(val)
            .find(|v| v["type"] == "m.room.member" && v["state_key"] == user.as_str())
            .unwrap()
    };
    assert_eq!(member(&carol)["content"], json!({ "membership": "join" }));
    assert_eq!(member(&fx.alice)["content"]["displayname"], "alice");
}

#[tokio::test]
async fn backfill_and_missing_events_walk_the_dag() {
    let fx = Fx::new(RoomVersionId::V12).await;
    let rr = &fx.s.room_read;
    fx.remote_join(&remote_user("bob")).await;
    let mut msgs = vec![];
    for i in 0..110 {
        msgs.push(text(&fx.s, &fx.room, &fx.alice, &format!("m{i}")).await);
    }
    let body = |p: &WirePdu| val(p)["content"]["body"].as_str().unwrap_or("").to_owned();

    // Newest first, starting with (and including) `v`.
    let got = rr
        .backfill(remote(), &fx.room, vec![msgs[109].clone()], 3)
        .await
        .unwrap();
    assert_eq!(
        got.iter().map(body).collect::<Vec<_>>(),
        ["m109", "m108", "m107"]
    );
    assert_eq!(val(&got[1]), fx.stored(&msgs[108]));
    let got = rr
        .backfill(remote(), &fx.room, vec![msgs[109].clone()], 1000)
        .await
        .unwrap();
    assert_eq!(got.len(), BACKFILL_LIMIT);

    // Between earliest and latest, neither included, oldest first.
    let got = rr
        .missing_events(
            remote(),
            &fx.room,
            vec![msgs[1].clone()],
            vec![msgs[5].clone()],
            10,
            0,
        )
        .await
        .unwrap();
    assert_eq!(got.iter().map(body).collect::<Vec<_>>(), ["m2", "m3", "m4"]);
    let got = rr
        .missing_events(remote(), &fx.room, vec![], vec![msgs[109].clone()], 500, 0)
        .await
        .unwrap();
    assert_eq!(got.len(), MISSING_EVENTS_LIMIT);
    assert_eq!(body(&got[19]), "m108");
    // min_depth cuts the walk off.
    let depth = val(&got[15])["depth"].as_u64().unwrap();
    let got = rr
        .missing_events(
            remote(),
            &fx.room,
            vec![],
            vec![msgs[109].clone()],
            20,
            depth,
        )
        .await
        .unwrap();
    assert_eq!(got.len(), 5);
}

#[tokio::test]
async fn timestamp_to_event_skips_what_the_server_cannot_see() {
    let fx = Fx::new(RoomVersionId::V12).await;
    let rr = &fx.s.room_read;
    let hv = set_state(
        &fx,
        StateEventType::RoomHistoryVisibility,
        json!({ "history_visibility": "joined" }),
    )
    .await;
    text(&fx.s, &fx.room, &fx.alice, "early").await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    let mid = now_ms();
    tokio::time::sleep(Duration::from_millis(20)).await;
    let join = fx.remote_join(&remote_user("bob")).await;
    let late = text(&fx.s, &fx.room, &fx.alice, "late").await;

    // Backwards: "early" (sent under `joined`) is skipped; the visibility change itself counts
    // under the looser `shared` it replaced, which bob's later join makes visible.
    let (id, _) = rr
        .timestamp_to_event(remote(), &fx.room, mid, Direction::Backward)
        .await
        .unwrap();
    assert_eq!(id, hv);
    let err = rr
        .timestamp_to_event(remote(), &fx.room, 0, Direction::Backward)
        .await
        .unwrap_err();
    assert!(is_kind(&err, ErrorKind::NotFound));
    // Forwards: the invite (not visible under `joined`) is skipped; the join is the first.
    let (id, ts) = rr
        .timestamp_to_event(remote(), &fx.room, mid, Direction::Forward)
        .await
        .unwrap();
    assert_eq!(id, join);
    assert!(ts >= mid);
    let (id, _) = rr
        .timestamp_to_event(remote(), &fx.room, now_ms() + 60_000, Direction::Backward)
        .await
        .unwrap();
    assert_eq!(id, late);
}

#[tokio::test]
async fn outliers_are_served_by_the_first_and_current_settings_and_have_no_state() {
    let fx = Fx::new(RoomVersionId::V12).await;
    let rr = &fx.s.room_read;
    fx.remote_join(&remote_user("bob")).await;
    let spec = EventSpec::state(StateEventType::RoomTopic, "", json!({ "topic": "fetched" }));
    let out = fx.outlier(&fx.alice, spec).await;

    assert_eq!(
        val(&rr.event(remote(), &out).await.unwrap()),
        fx.stored(&out)
    );
    let auth = rr.event_auth(remote(), &fx.room, &out).await.unwrap();
    let pl = state_id(&fx, StateEventType::RoomPowerLevels, "").await;
    assert!(wire_set(&auth).contains(&fx.stored(&pl).to_string()));
    let err = rr.state_ids(remote(), &fx.room, &out).await.unwrap_err();
    assert!(is_kind(&err, ErrorKind::NotFound));

    history_visibility(&fx.s, &fx.room, &fx.alice, "joined").await;
    assert_eq!(
        val(&rr.event(remote(), &out).await.unwrap())["content"],
        json!({})
    );
}
