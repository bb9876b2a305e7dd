use ruma::api::error::ErrorKind;
use ruma::events::StateEventType;
use ruma::{OwnedRoomId, UserId, server_name};
use serde_json::{Value, json};

use super::*;
use crate::service::Services;
use crate::service::rooms::{CreateRoomParams, EventSpec};
use crate::service::test_services;
use crate::service::test_util::{join, room, user};

async fn space(s: &Services, creator: &UserId, name: &str, is_public: bool) -> OwnedRoomId {
    let mut creation = serde_json::Map::new();
    creation.insert("type".into(), json!("m.space"));
    let params = CreateRoomParams {
        version: None,
        preset: None,
        is_public,
        name: Some(name.into()),
        topic: None,
        alias_localpart: None,
        invite: vec![],
        is_direct: false,
        initial_state: vec![],
        creation_content: Some(creation),
        power_level_override: None,
    };
    s.rooms.create_room(creator, params).await.unwrap()
}

async fn add_child(s: &Services, parent: &OwnedRoomId, by: &UserId, child: &str, content: Value) {
    let ev = EventSpec::state(StateEventType::SpaceChild, child, content);
    s.rooms.send_state(parent, by, ev).await.unwrap();
}

fn ids(p: &HierarchyPage) -> Vec<String> {
    p.rooms
        .iter()
        .map(|r| r.summary.name.clone().unwrap_or_default())
        .collect()
}

fn params() -> HierarchyParams {
    HierarchyParams::default()
}

#[tokio::test]
async fn walks_depth_first_in_order_showing_only_rooms_the_user_may_see() {
    let (s, _d) = test_services();
    let a = user(&s, "alice").await;
    let b = user(&s, "bob").await;
    let top = space(&s, &a, "Trust", true).await;
    let ward = space(&s, &a, "Ward", true).await;
    let bay = room(&s, &a, "Bay", true).await;
    let private = room(&s, &a, "Private", false).await;
    let theatre = room(&s, &a, "Theatre", true).await;
    let via = json!({ "via": ["localhost"] });
    add_child(&s, &top, &a, theatre.as_str(), via.clone()).await;
    add_child(
        &s,
        &top,
        &a,
        ward.as_str(),
        json!({ "via": ["localhost"], "order": "a" }),
    )
    .await;
    add_child(&s, &top, &a, private.as_str(), via.clone()).await;
    add_child(
        &s,
        &ward,
        &a,
        bay.as_str(),
        json!({ "via": ["localhost"], "suggested": true }),
    )
    .await;
    // Invalid children are ignored: no via, an unknown room.
    add_child(&s, &top, &a, "!nowhere:localhost", json!({})).await;

    let all = s.spaces.hierarchy(&a, &top, &params()).await.unwrap();
    assert_eq!(ids(&all), ["Trust", "Ward", "Bay", "Theatre", "Private"]);
    assert_eq!(all.rooms[0].children_state.len(), 3);
    assert!(all.rooms[2].children_state.is_empty());
    assert_eq!(all.next_batch, None);

    // Bob is in no room: the private room is hidden, public ones are open to him.
    let theirs = s.spaces.hierarchy(&b, &top, &params()).await.unwrap();
    assert_eq!(ids(&theirs), ["Trust", "Ward", "Bay", "Theatre"]);
    join(&s, &private, &a, &b).await;
    let theirs = s.spaces.hierarchy(&b, &top, &params()).await.unwrap();
    assert_eq!(theirs.rooms.len(), 5);

    let depth0 = HierarchyParams {
        max_depth: Some(0),
        ..params()
    };
    let got = s.spaces.hierarchy(&a, &top, &depth0).await.unwrap();
    assert_eq!(ids(&got), ["Trust"]);
    let suggested = HierarchyParams {
        suggested_only: true,
        ..params()
    };
    let got = s.spaces.hierarchy(&a, &ward, &suggested).await.unwrap();
    assert_eq!(ids(&got), ["Ward", "Bay"]);
    let got = s.spaces.hierarchy(&a, &top, &suggested).await.unwrap();
    assert_eq!(ids(&got), ["Trust"]);
}

#[tokio::test]
async fn pages_and_tokens() {
    let (s, _d) = test_services();
    let a = user(&s, "alice").await;
    let top = space(&s, &a, "Trust", true).await;
    for n in ["One", "Two", "Three"] {
        let r = room(&s, &a, n, true).await;
        add_child(
            &s,
            &top,
            &a,
            r.as_str(),
            json!({ "via": ["localhost"], "order": n }),
        )
        .await;
    }
    let p = HierarchyParams {
        limit: Some(2),
        ..params()
    };
    let p1 = s.spaces.hierarchy(&a, &top, &p).await.unwrap();
    assert_eq!(ids(&p1), ["Trust", "One"]);
    let p2 = HierarchyParams {
        from: p1.next_batch.clone(),
        ..p.clone()
    };
    let p2r = s.spaces.hierarchy(&a, &top, &p2).await.unwrap();
    assert_eq!(ids(&p2r), ["Three", "Two"]);
    assert_eq!(p2r.next_batch, None);

    let changed = HierarchyParams {
        suggested_only: true,
        ..p2.clone()
    };
    let err = s.spaces.hierarchy(&a, &top, &changed).await.unwrap_err();
    assert!(matches!(err.kind(), Some(ErrorKind::InvalidParam)));
    let bogus = HierarchyParams {
        from: Some("nonsense".into()),
        ..params()
    };
    let err = s.spaces.hierarchy(&a, &top, &bogus).await.unwrap_err();
    assert!(matches!(err.kind(), Some(ErrorKind::InvalidParam)));
    let zero = HierarchyParams {
        limit: Some(0),
        ..params()
    };
    let err = s.spaces.hierarchy(&a, &top, &zero).await.unwrap_err();
    assert!(matches!(err.kind(), Some(ErrorKind::InvalidParam)));
}

#[tokio::test]
async fn private_and_unknown_roots_are_forbidden_alike() {
    let (s, _d) = test_services();
    let a = user(&s, "alice").await;
    let b = user(&s, "bob").await;
    let private = space(&s, &a, "Private", false).await;
    let unknown: OwnedRoomId = "!unknown:localhost".parse().unwrap();
    for root in [&private, &unknown] {
        let err = s.spaces.hierarchy(&b, root, &params()).await.unwrap_err();
        assert!(matches!(err.kind(), Some(ErrorKind::Forbidden)), "{root}");
    }
}

#[tokio::test]
async fn other_servers_see_what_they_could_join_and_acls_apply() {
    let (s, _d) = test_services();
    let a = user(&s, "alice").await;
    let top = space(&s, &a, "Trust", true).await;
    let open = room(&s, &a, "Open", true).await;
    let closed = room(&s, &a, "Closed", false).await;
    add_child(&s, &top, &a, open.as_str(), json!({ "via": ["localhost"] })).await;
    add_child(
        &s,
        &top,
        &a,
        closed.as_str(),
        json!({ "via": ["localhost"] }),
    )
    .await;
    add_child(
        &s,
        &top,
        &a,
        "!remote:elsewhere",
        json!({ "via": ["elsewhere"] }),
    )
    .await;
    let origin = server_name!("b.nhs.uk");

    let res = s
        .spaces
        .answer_hierarchy(origin, &top, false)
        .await
        .unwrap();
    assert_eq!(res.room.summary.room_id, top);
    assert_eq!(res.room.children_state.len(), 3);
    let kids: Vec<_> = res.children.iter().map(|c| c.room_id.clone()).collect();
    assert_eq!(kids, vec![open]);
    assert_eq!(res.inaccessible_children, vec![closed.clone()]);

    let err = s
        .spaces
        .answer_hierarchy(origin, &closed, false)
        .await
        .unwrap_err();
    assert!(matches!(err.kind(), Some(ErrorKind::NotFound)));
    let unknown: OwnedRoomId = "!unknown:localhost".parse().unwrap();
    let err = s
        .spaces
        .answer_hierarchy(origin, &unknown, false)
        .await
        .unwrap_err();
    assert!(matches!(err.kind(), Some(ErrorKind::NotFound)));

    let acl = EventSpec::state(
        StateEventType::RoomServerAcl,
        "",
        json!({ "allow": ["*"], "deny": ["b.nhs.uk"], "allow_ip_literals": false }),
    );
    s.rooms.send_state(&top, &a, acl).await.unwrap();
    let err = s
        .spaces
        .answer_hierarchy(origin, &top, false)
        .await
        .unwrap_err();
    assert!(matches!(err.kind(), Some(ErrorKind::Forbidden)));
    s.spaces
        .answer_hierarchy(server_name!("c.nhs.uk"), &top, false)
        .await
        .unwrap();
}
