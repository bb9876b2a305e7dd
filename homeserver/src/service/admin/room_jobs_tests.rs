//! Room jobs of the admin API: admin-only, the delete-with-shutdown flow (members moved to a
//! new room with the admin's message, aliases moved, the old room gone), history purges that
//! remove rows and raw bytes, legal holds, blocked rooms, and a job a restart interrupted.

use std::time::Duration;

use ruma::api::error::ErrorKind;
use ruma::{OwnedRoomAliasId, OwnedRoomId};

use super::{DeleteRoomParams, PurgePoint, RoomJob, action};
use crate::service::Services;
use crate::service::retention::HoldTarget;
use crate::service::test_util::{self, is_kind};
use crate::service::users::{Session, test_login};
use crate::store::room_jobs::{JobKind, JobStatus, RoomJobRow};

async fn admin(s: &Services) -> Session {
    let id = (s.users)
        .create_user("root", Some("a long password"), true, true)
        .await
        .unwrap();
    let new = s.users.create_session(&id, None, None).await.unwrap();
    s.users.authenticate(&new.access_token, None).await.unwrap()
}

/// Polls a job until it has ended.
async fn finished(s: &Services, who: &Session, kind: JobKind, id: &str) -> RoomJob {
    for _ in 0..500 {
        let j = s.admin.room_job(who, kind, id).await.unwrap();
        if !j.status.is_open() {
            return j;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("job {id} did not finish");
}

fn db_contains(d: &tempfile::TempDir, marker: &str) -> bool {
    let base = d.path().join("test.db");
    ["", "-wal"].iter().any(|suffix| {
        std::fs::read(format!("{}{suffix}", base.display()))
            .map(|b| b.windows(marker.len()).any(|w| w == marker.as_bytes()))
            .unwrap_or(false)
    })
}

#[tokio::test]
async fn room_jobs_are_admin_only() {
    let (s, _d) = crate::service::test_services();
    let (alice, _) = test_login(&s.users, "alice", "a long password").await;
    let room = test_util::room(&s, &alice.user_id, "ward", false).await;
    let forbidden = |e: crate::error::Error| assert!(is_kind(&e, ErrorKind::Forbidden), "{e:?}");
    forbidden(
        s.admin
            .delete_room(&alice, &room, DeleteRoomParams::default())
            .await
            .unwrap_err(),
    );
    forbidden(
        s.admin
            .delete_room_now(&alice, &room, DeleteRoomParams::default())
            .await
            .unwrap_err(),
    );
    forbidden(
        s.admin
            .purge_history(&alice, &room, PurgePoint::Ts(i64::MAX), true)
            .await
            .unwrap_err(),
    );
    forbidden(
        s.admin
            .set_room_blocked(&alice, &room, true)
            .await
            .unwrap_err(),
    );
    forbidden(s.admin.room_blocked(&alice, &room).await.unwrap_err());
    forbidden(s.admin.room_delete_jobs(&alice, &room).await.unwrap_err());
    forbidden(
        s.admin
            .room_job(&alice, JobKind::Delete, "x")
            .await
            .unwrap_err(),
    );
    assert!(s.rooms.blocked_rooms().blocked_by(&room).is_none());
    assert!(s.rooms.room_version(&room).await.is_ok());
    let log = s.audit.all().await.unwrap();
    assert_eq!(log.iter().filter(|r| r.action == action::DENIED).count(), 7);
}

#[tokio::test]
async fn delete_with_shutdown_moves_members_and_aliases_then_purges() {
    let (s, d) = crate::service::test_services();
    let root = admin(&s).await;
    let bob = test_util::user(&s, "bob").await;
    let alice = test_util::user(&s, "alice").await;
    let room = test_util::room(&s, &bob, "ward", false).await;
    test_util::join(&s, &room, &bob, &alice).await;
    let alias: OwnedRoomAliasId = "#ward7:localhost".try_into().unwrap();
    s.rooms.set_alias(&alias, &room, &bob).await.unwrap();
    test_util::text(&s, &room, &alice, "DELETE-MARKER bed 9").await;

    let p = DeleteRoomParams {
        new_room_user_id: Some(root.user_id.clone()),
        message: Some("This ward room was closed".into()),
        block: true,
        ..DeleteRoomParams::default()
    };
    let id = s.admin.delete_room(&root, &room, p).await.unwrap();
    let job = finished(&s, &root, JobKind::Delete, &id).await;
    assert_eq!(job.status, JobStatus::Complete, "{job:?}");
    let shut = job.shutdown.unwrap();
    let mut kicked = shut.kicked_users.clone();
    kicked.sort();
    assert_eq!(kicked, vec![alice.to_string(), bob.to_string()]);
    assert!(shut.failed_to_kick_users.is_empty());
    assert_eq!(shut.local_aliases, vec![alias.to_string()]);
    let new: OwnedRoomId = shut.new_room_id.unwrap().try_into().unwrap();

    // The members are in the new room, with the admin's message; the alias points there.
    for u in [&alice, &bob] {
        assert_eq!(
            s.rooms.membership_of(&new, u).await.unwrap().as_deref(),
            Some("join")
        );
    }
    assert_eq!(s.rooms.resolve_alias(&alias).await.unwrap(), new);
    let msgs = s
        .rooms
        .messages(
            &new,
            test_util::viewer(&alice),
            None,
            None,
            crate::store::rooms::Direction::Backward,
            20,
            &Default::default(),
        )
        .await
        .unwrap();
    assert!(
        msgs.chunk
            .iter()
            .any(|e| e["content"]["body"] == "This ward room was closed")
    );
    // The old room is gone, to the raw bytes, and blocked.
    assert!(s.rooms.room_version(&room).await.is_err());
    assert!(!db_contains(&d, "DELETE-MARKER"));
    assert_eq!(
        s.rooms.blocked_rooms().blocked_by(&room).as_deref(),
        Some(root.user_id.as_ref())
    );
    let all = s.admin.room_delete_jobs(&root, &room).await.unwrap();
    assert_eq!(all.len(), 1);
    let log = s.audit.all().await.unwrap();
    for a in [action::ROOM_DELETE, action::ROOM_DELETE_DONE] {
        assert!(
            log.iter()
                .any(|r| r.action == a && r.target.as_deref() == Some(room.as_str())),
            "{a} not audited"
        );
    }
}

#[tokio::test]
async fn purge_history_removes_old_messages_keeps_state_and_respects_holds() {
    let (s, d) = crate::service::test_services();
    let root = admin(&s).await;
    let bob = test_util::user(&s, "bob").await;
    let room = test_util::room(&s, &bob, "ward", false).await;
    test_util::text(&s, &room, &bob, "PURGE-OLD obs").await;
    tokio::time::sleep(Duration::from_millis(5)).await;
    let keep = test_util::text(&s, &room, &bob, "PURGE-KEEP obs").await;

    // A held room: refused, audited with the rule.
    s.retention
        .place_hold("admin-cli", HoldTarget::Room(room.to_string()), None)
        .await
        .unwrap();
    let err = s
        .admin
        .purge_history(&root, &room, PurgePoint::Event(keep.clone()), true)
        .await
        .unwrap_err();
    assert!(err.message().contains("legal_hold"), "{err:?}");
    let err = s
        .admin
        .delete_room(&root, &room, DeleteRoomParams::default())
        .await
        .unwrap_err();
    assert!(err.message().contains("legal_hold"), "{err:?}");
    assert!(db_contains(&d, "PURGE-OLD"));
    s.retention
        .release_hold("admin-cli", HoldTarget::Room(room.to_string()), None)
        .await
        .unwrap();

    // Local events stay unless asked for.
    let id = s
        .admin
        .purge_history(&root, &room, PurgePoint::Event(keep.clone()), false)
        .await
        .unwrap();
    let job = finished(&s, &root, JobKind::PurgeHistory, &id).await;
    assert_eq!(job.status, JobStatus::Complete);
    assert!(db_contains(&d, "PURGE-OLD"));

    let id = s
        .admin
        .purge_history(&root, &room, PurgePoint::Event(keep.clone()), true)
        .await
        .unwrap();
    let job = finished(&s, &root, JobKind::PurgeHistory, &id).await;
    assert_eq!(job.status, JobStatus::Complete, "{job:?}");
    assert!(!db_contains(&d, "PURGE-OLD"));
    assert!(db_contains(&d, "PURGE-KEEP"));
    // State stays: the room still works.
    assert!(s.rooms.current_state(&room).await.is_ok());
    test_util::text(&s, &room, &bob, "after the purge").await;
}

#[tokio::test]
async fn a_blocked_room_refuses_joins_and_invites_until_unblocked() {
    let (s, _d) = crate::service::test_services();
    let root = admin(&s).await;
    let bob = test_util::user(&s, "bob").await;
    let alice = test_util::user(&s, "alice").await;
    let room = test_util::room(&s, &bob, "ward", true).await;
    assert!(s.admin.set_room_blocked(&root, &room, true).await.unwrap());
    assert_eq!(
        s.admin.room_blocked(&root, &room).await.unwrap(),
        Some(root.user_id.clone())
    );
    let err = s.rooms.join(&room, &alice, None).await.unwrap_err();
    assert!(err.message().contains("room_blocked"), "{err:?}");
    let err = s
        .rooms
        .invite(&room, &bob, &alice, None, false)
        .await
        .unwrap_err();
    assert!(err.message().contains("room_blocked"), "{err:?}");
    // Over federation: another server's make_join for its user is refused too.
    let remote = ruma::user_id!("@carol:other.example");
    let err = s
        .rooms
        .make_membership(
            remote.server_name(),
            &room,
            remote,
            crate::service::rooms::federation::Membership::Join,
            crate::service::rooms::SUPPORTED_ROOM_VERSIONS,
        )
        .await
        .unwrap_err();
    assert!(err.message().contains("room_blocked"), "{err:?}");
    let log = s.audit.all().await.unwrap();
    let refusals: Vec<_> = (log.iter())
        .filter(|r| r.rule.as_deref() == Some("room_blocked"))
        .map(|r| r.details["hook"].clone())
        .collect();
    assert_eq!(
        refusals,
        vec![
            serde_json::json!("join"),
            serde_json::json!("invite"),
            serde_json::json!("federation.make_join")
        ]
    );
    // A room this server has never seen can be blocked too.
    let unknown: OwnedRoomId = "!elsewhere:remote.example".try_into().unwrap();
    s.admin
        .set_room_blocked(&root, &unknown, true)
        .await
        .unwrap();
    assert!(s.rooms.blocked_rooms().blocked_by(&unknown).is_some());

    assert!(!s.admin.set_room_blocked(&root, &room, false).await.unwrap());
    s.rooms.join(&room, &alice, None).await.unwrap();
}

#[tokio::test]
async fn a_job_a_restart_interrupted_is_resumed_and_its_status_kept() {
    let (s, d) = crate::service::test_services();
    let root = admin(&s).await;
    let bob = test_util::user(&s, "bob").await;
    let room = test_util::room(&s, &bob, "ward", false).await;
    test_util::text(&s, &room, &bob, "RESUME-MARKER").await;
    // As a stopped server left it: accepted, marked active, nothing done yet.
    let now = crate::store::now_ms();
    let row = RoomJobRow {
        job_id: "interrupted1".into(),
        kind: JobKind::Delete,
        room_id: room.to_string(),
        requested_by: root.user_id.to_string(),
        params: serde_json::to_string(&DeleteRoomParams::default()).unwrap(),
        status: JobStatus::Active,
        error: None,
        result: None,
        created_ts: now,
        updated_ts: now,
    };
    s.admin.jobs.insert_job(row).unwrap();
    assert_eq!(s.admin.resume_room_jobs().await.unwrap(), 1);
    let job = finished(&s, &root, JobKind::Delete, "interrupted1").await;
    assert_eq!(job.status, JobStatus::Complete, "{job:?}");
    assert_eq!(job.shutdown.unwrap().kicked_users, vec![bob.to_string()]);
    assert!(s.rooms.room_version(&room).await.is_err());
    assert!(!db_contains(&d, "RESUME-MARKER"));
}
