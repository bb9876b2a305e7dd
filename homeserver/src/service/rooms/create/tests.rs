//! createRoom: concurrent identical requests, and ids that exist already (issue 17).

use std::collections::HashSet;
use std::sync::Arc;

use ruma::OwnedUserId;

use super::super::CreateRoomParams;
use super::CreateStamps;
use crate::config::Config;
use crate::service::Services;
use crate::store::StoreError;
use crate::store::rooms::{NewEvent, NewRoom, RoomStore};
use crate::store::sqlite::SqliteStore;

fn services(dir: &std::path::Path) -> (Services, SqliteStore) {
    let store = SqliteStore::open(&dir.join("test.db"), 2).unwrap();
    let config = Config {
        data_dir: dir.to_owned(),
        ..Config::default()
    };
    let s = Services::build(config, store.clone(), Arc::new(handover_policy::AllowAll)).unwrap();
    (s, store)
}

fn params() -> CreateRoomParams {
    CreateRoomParams {
        version: None,
        preset: None,
        is_public: false,
        name: Some("Ward 7".into()),
        topic: None,
        alias_localpart: None,
        invite: vec![],
        is_direct: false,
        initial_state: vec![],
        creation_content: None,
        power_level_override: None,
    }
}

async fn alice(s: &Services) -> OwnedUserId {
    s.users
        .create_user("alice", Some("a long password"), false, false)
        .await
        .unwrap()
}

#[test]
fn create_stamps_never_repeat() {
    let stamps = CreateStamps::default();
    let mut last = 0u64;
    for _ in 0..1000 {
        let ts = u64::from(stamps.next().get());
        assert!(ts > last, "{ts} after {last}");
        last = ts;
    }
}

/// Identical requests from one user at once: every one succeeds with a room of its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_identical_creates_get_distinct_rooms() {
    let dir = tempfile::tempdir().unwrap();
    let (s, _) = services(dir.path());
    let a = alice(&s).await;
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..32 {
        let (s, a) = (s.clone(), a.clone());
        tasks.spawn(async move { s.rooms.create_room(&a, params()).await });
    }
    let ids: Vec<_> = tasks
        .join_all()
        .await
        .into_iter()
        .map(|r| r.expect("every create succeeds"))
        .collect();
    let distinct: HashSet<_> = ids.iter().collect();
    assert_eq!(distinct.len(), 32, "{ids:?}");
    assert_eq!(s.rooms.joined_rooms(&a).await.unwrap().len(), 32);
}

/// A room id that exists already (here: a room built beforehand from the very create event the
/// next request would build) is never overwritten: createRoom rebuilds with the next stamp.
#[tokio::test]
async fn a_colliding_room_id_is_rebuilt_not_overwritten() {
    let dir = tempfile::tempdir().unwrap();
    let (s, store) = services(dir.path());
    let a = alice(&s).await;
    // Stamps from a fixed point in the future, so the next one is known: far + 1.
    let far = u64::from(ruma::MilliSecondsSinceUnixEpoch::now().get()) + 600_000;
    s.rooms
        .create_stamps
        .0
        .store(far, std::sync::atomic::Ordering::SeqCst);
    let version = ruma::RoomVersionId::V12;
    let p = params();
    let mut specs = s
        .rooms
        .initial_events(&a, &version, super::Preset::PrivateChat, &p, None)
        .await
        .unwrap();
    specs[0].origin_server_ts = Some(ruma::MilliSecondsSinceUnixEpoch(
        ruma::UInt::new(far + 1).unwrap(),
    ));
    let first = s.rooms.build_room(&a, &version, &specs).unwrap();
    let again = s.rooms.build_room(&a, &version, &specs).unwrap();
    assert_eq!(
        first.room_id, again.room_id,
        "identical create events, one room id"
    );
    let squatted = first.room_id.clone();
    let held = first.events.len();
    let room = NewRoom {
        room_id: squatted.clone(),
        version: "12".into(),
        creator: a.clone(),
        is_public: false,
    };
    store.create_room(room, first.events).unwrap();

    let created = s.rooms.create_room(&a, params()).await.unwrap();
    assert_ne!(created, squatted, "a new id, not the existing room's");
    assert_eq!(store.current_state(squatted.as_str()).unwrap().len(), held);
    let members = s.rooms.current_state(&created).await.unwrap();
    assert_eq!(members.membership_of(&a).as_deref(), Some("join"));
}

/// The store refuses a room id or an event id it holds already, and keeps what it holds.
#[tokio::test]
async fn existing_room_and_event_ids_are_conflicts_never_overwritten() {
    let dir = tempfile::tempdir().unwrap();
    let (s, store) = services(dir.path());
    let a = alice(&s).await;
    let room = s.rooms.create_room(&a, params()).await.unwrap();
    let again = NewRoom {
        room_id: room.clone(),
        version: "12".into(),
        creator: a.clone(),
        is_public: true,
    };
    assert!(matches!(
        store.create_room(again, vec![]),
        Err(StoreError::Conflict("room"))
    ));
    let create = store.current_state(room.as_str()).unwrap();
    let create = create.iter().find(|e| e.kind == "m.room.create").unwrap();
    let forged = NewEvent {
        event_id: create.event_id.clone(),
        room_id: room.clone(),
        sender: a.clone(),
        kind: "m.room.message".into(),
        state_key: None,
        depth: 99,
        origin_server_ts: 0,
        json: "{}".into(),
        unsigned: None,
        prev_events: vec![],
        txn: None,
        membership: None,
        relation: None,
        redacts: None,
        resolved_state: vec![],
        deliveries: vec![],
    };
    assert!(matches!(
        store.append_event(forged),
        Err(StoreError::Conflict("event"))
    ));
    let kept = store.get_event(create.event_id.as_str()).unwrap().unwrap();
    assert_eq!(kept.json, create.json);
    assert_eq!(kept.kind, "m.room.create");
}

/// A remote invitee the policy refuses fails the whole request before anything is created.
#[tokio::test]
async fn a_refused_remote_invitee_creates_no_room() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("test.db"), 2).unwrap();
    let config = Config {
        data_dir: dir.path().to_owned(),
        ..Config::default()
    };
    let policy = Arc::new(handover_policy::OrganisationInvites {
        server_name: "localhost".into(),
        allowed_servers: vec![],
    });
    let s = Services::build(config, store, policy).unwrap();
    let a = alice(&s).await;
    let mut p = params();
    p.invite = vec!["@bob:other.nhs.uk".try_into().unwrap()];
    p.is_direct = true;
    let err = s.rooms.create_room(&a, p).await.unwrap_err();
    assert!(
        err.to_string().contains("invite_outside_organisation"),
        "{err}"
    );
    assert!(s.rooms.joined_rooms(&a).await.unwrap().is_empty());
}
