//! The other copies of content age out with their own `[retention]` lifetimes: queued
//! federation payloads, cached remote media, content report reasons. "Gone" is checked on the
//! raw bytes of the database files and on the media directory, as for events.

use super::tests::{DAY, Fx, thirty_days};
use crate::store::outbox::{OutboxKind, OutboxStore};
use crate::store::remote_media::{RemoteMediaRecord, RemoteMediaStore};
use crate::store::reports::{Report, ReportStore};

fn count(f: &Fx, sql: &str) -> i64 {
    f.store
        .db
        .read(|c| Ok(c.query_row(sql, [], |r| r.get(0))?))
        .unwrap()
}

#[tokio::test]
async fn queued_payloads_cached_remote_media_and_report_reasons_expire() {
    let f = Fx::new(thirty_days()).await;
    let now = crate::store::now_ms();
    // A message queued for a server that never comes back.
    let pdu = r#"{"type":"m.room.message","content":{"body":"MARKER-queued-for-down-server"}}"#;
    f.store
        .enqueue(&["down.example".into()], OutboxKind::Pdu, pdu, now)
        .unwrap();
    // Another server's file, cached here for a local user's download.
    let local_id = "cachedREMOTE0001";
    let path = f.dir.path().join("media/remote/ca/ch").join(local_id);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, b"MARKER-remote-file-bytes").unwrap();
    f.store
        .insert_remote_media(&RemoteMediaRecord {
            origin: "remote.example".into(),
            media_id: "abc".into(),
            variant: String::new(),
            local_id: local_id.into(),
            content_type: Some("MARKER-remote-media-type".into()),
            filename: Some("MARKER-remote-name.pdf".into()),
            size: 24,
            sha256: "00".into(),
            fetched_ts: now,
            requested_by: f.alice.to_string(),
        })
        .unwrap();
    // A report whose reason quotes the message.
    f.store
        .add_report(&Report {
            reporter: f.alice.clone(),
            room_id: Some(f.room.clone()),
            event_id: None,
            target_user: None,
            reason: Some("MARKER-report-reason".into()),
            score: None,
            ts: now,
        })
        .unwrap();

    // Within every lifetime: nothing goes.
    f.advance(6 * DAY);
    let r = f.retention.purge("test", false).await.unwrap();
    assert_eq!(
        (
            r.outbox_deleted,
            r.remote_media_deleted,
            r.report_reasons_erased
        ),
        (0, 0, 0)
    );

    // 8 days: the queue entry (7 days) goes with its payload.
    f.advance(2 * DAY);
    let dry = f.retention.purge("test", true).await.unwrap();
    assert_eq!(dry.outbox_deleted, 1, "{dry:?}");
    assert!(f.db_contains("MARKER-queued-for-down-server"));
    let r = f.retention.purge("test", false).await.unwrap();
    assert_eq!(r.outbox_deleted, 1, "{r:?}");
    assert!(!f.db_contains("MARKER-queued-for-down-server"));
    assert_eq!(
        count(&f, "SELECT COUNT(*) FROM federation_outbox_payloads"),
        0
    );
    assert!(path.exists());

    // 31 days: the cached copy (30 days), its file and its row.
    f.advance(23 * DAY);
    let r = f.retention.purge("test", false).await.unwrap();
    assert_eq!(r.remote_media_deleted, 1, "{r:?}");
    assert!(!path.exists());
    assert!(!f.db_contains("MARKER-remote-name.pdf"));
    assert!(!f.db_contains("MARKER-remote-media-type"));
    assert!(f.db_contains("MARKER-report-reason"));

    // 366 days: the report's reason (365 days); the report itself stays as evidence.
    f.advance(335 * DAY);
    let r = f.retention.purge("test", false).await.unwrap();
    assert_eq!(r.report_reasons_erased, 1, "{r:?}");
    assert!(!f.db_contains("MARKER-report-reason"));
    assert_eq!(count(&f, "SELECT COUNT(*) FROM reports"), 1);
}

/// An invite from another server to `room` for `user`, its preview carrying `marker`.
fn remote_invite(f: &Fx, room: &str, user: &ruma::UserId, marker: &str) {
    use crate::store::federated_rooms::FederatedRoomStore;
    let ts = crate::store::now_ms();
    let id = format!("$invite-{}", &room[1..7]);
    let json = serde_json::json!({
        "type": "m.room.member", "room_id": room, "sender": "@carol:remote.example",
        "state_key": user, "content": { "membership": "invite" },
        "origin_server_ts": ts, "depth": 5, "prev_events": [], "auth_events": [],
    });
    let invite = crate::store::rooms::NewEvent {
        event_id: id.as_str().try_into().unwrap(),
        room_id: room.try_into().unwrap(),
        sender: "@carol:remote.example".try_into().unwrap(),
        kind: "m.room.member".into(),
        state_key: Some(user.to_string()),
        depth: 5,
        origin_server_ts: ts,
        json: json.to_string(),
        unsigned: None,
        prev_events: vec![],
        txn: None,
        membership: Some("invite".into()),
        relation: None,
        redacts: None,
        resolved_state: vec![],
        deliveries: vec![],
    };
    let state = serde_json::json!([{ "type": "m.room.name", "content": { "name": marker } }]);
    f.store
        .store_remote_invite(
            crate::store::rooms::NewRoom {
                room_id: room.try_into().unwrap(),
                version: "12".into(),
                creator: "@carol:remote.example".try_into().unwrap(),
                is_public: false,
            },
            invite,
            state.to_string(),
        )
        .unwrap();
}

#[tokio::test]
async fn remote_invite_previews_go_once_answered_or_expired() {
    let f = Fx::new(Default::default()).await;
    remote_invite(
        &f,
        "!pending:remote.example",
        &f.alice,
        "MARKER-pending-preview",
    );
    remote_invite(
        &f,
        "!answered:remote.example",
        &f.alice,
        "MARKER-answered-preview",
    );
    // Alice declined the second one.
    f.store
        .db
        .write(|ctx| {
            ctx.tx.execute(
                "UPDATE memberships SET membership = 'leave' WHERE room_id = '!answered:remote.example'",
                [],
            )?;
            Ok(())
        })
        .unwrap();
    let r = f.retention.purge("test", false).await.unwrap();
    assert_eq!(r.remote_invites_deleted, 1, "{r:?}");
    assert!(!f.db_contains("MARKER-answered-preview"));
    assert!(f.db_contains("MARKER-pending-preview"));

    f.advance(31 * DAY);
    let r = f.retention.purge("test", false).await.unwrap();
    assert_eq!(r.remote_invites_deleted, 1, "{r:?}");
    assert!(!f.db_contains("MARKER-pending-preview"));
    assert_eq!(count(&f, "SELECT COUNT(*) FROM remote_invites"), 0);
}

/// An encrypted attachment: octet-stream bytes whose URL only the ciphertext carries.
async fn upload_blob(f: &Fx, marker: &str) -> String {
    let mxc =
        f.s.media
            .upload(
                &f.alice,
                marker.as_bytes().to_vec(),
                Some("application/octet-stream".into()),
                None,
            )
            .await
            .unwrap();
    mxc.media_id().unwrap().to_owned()
}

#[tokio::test]
async fn unreferenced_encrypted_attachments_age_out() {
    let f = Fx::new(thirty_days()).await;
    let attachment = upload_blob(&f, "MARKER-ciphertext-blob").await;
    let content = serde_json::json!({
        "algorithm": "m.megolm.v1.aes-sha2", "ciphertext": "b64-opaque", "sender_key": "k",
        "session_id": "s", "device_id": "D",
    });
    crate::service::test_util::send(
        &f.s,
        &f.room,
        &f.alice,
        ruma::events::TimelineEventType::RoomEncrypted,
        content,
    )
    .await;
    // Kept by a reference retention can see: a profile avatar.
    let avatar = upload_blob(&f, "MARKER-avatar-blob").await;
    f.store
        .db
        .write({
            let (user, mxc) = (f.alice.to_string(), format!("mxc://localhost/{avatar}"));
            move |ctx| {
                ctx.tx.execute(
                    "UPDATE users SET avatar_url = ?2 WHERE user_id = ?1",
                    [&user, &mxc],
                )?;
                Ok(())
            }
        })
        .unwrap();
    assert_eq!(f.media_files(&attachment).len(), 1);

    f.advance(29 * DAY);
    let r = f.retention.purge("test", false).await.unwrap();
    assert_eq!(r.unreferenced_media_deleted, 0, "{r:?}");

    f.advance(2 * DAY);
    let dry = f.retention.purge("test", true).await.unwrap();
    assert_eq!(dry.unreferenced_media_deleted, 1, "{dry:?}");
    let r = f.retention.purge("test", false).await.unwrap();
    assert_eq!(r.unreferenced_media_deleted, 1, "{r:?}");
    assert!(f.media_files(&attachment).is_empty());
    assert!(
        f.s.media
            .references(&attachment)
            .await
            .unwrap()
            .uploader
            .is_none()
    );
    assert_eq!(f.media_files(&avatar).len(), 1, "the avatar stays");
}
