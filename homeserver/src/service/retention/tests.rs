//! Retention on a real store and media directory, with an injected clock moved past expiry.
//! "Gone" is checked on the raw bytes of the database files (main file and WAL).

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use ruma::events::{StateEventType, TimelineEventType};
use ruma::{OwnedRoomId, OwnedUserId, uint};
use serde_json::json;

use super::*;
use crate::service::Services;
use crate::service::rooms::EventSpec;
use crate::service::test_util::{room, send, text, user};
use crate::store::StoreError;
use crate::store::rooms::RoomStore;
use crate::store::sqlite::SqliteStore;

pub(super) const DAY: i64 = 86_400_000;

pub(super) struct TestClock(AtomicI64);

impl Clock for TestClock {
    fn now_ms(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}

pub(super) struct Fx {
    pub(super) s: Services,
    pub(super) store: SqliteStore,
    pub(super) dir: tempfile::TempDir,
    pub(super) clock: Arc<TestClock>,
    pub(super) retention: RetentionService,
    pub(super) alice: OwnedUserId,
    pub(super) room: OwnedRoomId,
}

impl Fx {
    pub(super) async fn new(bounds: RetentionBounds) -> Self {
        let (s, store, dir) = crate::service::test_services_and_store();
        let clock = Arc::new(TestClock(AtomicI64::new(crate::store::now_ms())));
        let retention = RetentionService::new(RetentionDeps {
            server_name: s.rooms.server_name().to_owned(),
            store: Arc::new(store.clone()),
            policy: s.policy.clone(),
            audit: s.audit.clone(),
            media: s.media.clone(),
            rooms: s.rooms.clone(),
            clock: clock.clone(),
            settings: RetentionSettings {
                bounds,
                redacted_grace_ms: 7 * DAY as u64,
                to_device_lifetime_ms: Some(30 * DAY as u64),
                copies: crate::config::CopyLifetimes {
                    outbox_ms: Some(7 * DAY as u64),
                    remote_media_ms: Some(30 * DAY as u64),
                    report_reason_ms: Some(365 * DAY as u64),
                    remote_invite_ms: Some(30 * DAY as u64),
                    unreferenced_media_ms: Some(30 * DAY as u64),
                },
                batch_size: 2, // several batches even in small tests
            },
        });
        let alice = user(&s, "alice").await;
        let room = room(&s, &alice, "ward 7", false).await;
        Fx {
            s,
            store,
            dir,
            clock,
            retention,
            alice,
            room,
        }
    }

    pub(super) fn advance(&self, ms: i64) {
        self.clock.0.fetch_add(ms, Ordering::SeqCst);
    }

    /// Whether `marker` occurs anywhere in the database file or its WAL.
    pub(super) fn db_contains(&self, marker: &str) -> bool {
        let base = self.dir.path().join("test.db");
        ["", "-wal"].iter().any(|suffix| {
            let p = format!("{}{suffix}", base.display());
            std::fs::read(&p)
                .map(|b| b.windows(marker.len()).any(|w| w == marker.as_bytes()))
                .unwrap_or(false)
        })
    }

    /// Files under the media directory whose path names the media id (original, thumbnails).
    pub(super) fn media_files(&self, media_id: &str) -> Vec<std::path::PathBuf> {
        fn walk(d: &Path, out: &mut Vec<std::path::PathBuf>) {
            for e in std::fs::read_dir(d).into_iter().flatten().flatten() {
                let p = e.path();
                if p.is_dir() {
                    walk(&p, out);
                } else {
                    out.push(p);
                }
            }
        }
        let mut all = vec![];
        walk(&self.dir.path().join("media"), &mut all);
        all.into_iter()
            .filter(|p| p.to_string_lossy().contains(media_id))
            .collect()
    }

    /// An image upload with a generated thumbnail, sent in a message carrying `marker`.
    pub(super) async fn image_message(&self, marker: &str) -> String {
        let png = {
            let img = image::RgbImage::from_fn(64, 64, |x, y| image::Rgb([x as u8, y as u8, 7]));
            let mut out = std::io::Cursor::new(Vec::new());
            image::DynamicImage::ImageRgb8(img)
                .write_to(&mut out, image::ImageFormat::Png)
                .unwrap();
            out.into_inner()
        };
        let mxc = self
            .s
            .media
            .upload(&self.alice, png, Some("image/png".into()), None)
            .await
            .unwrap();
        let id = mxc.media_id().unwrap().to_owned();
        self.s
            .media
            .thumbnail(
                &self.alice,
                ruma::server_name!("localhost"),
                &id,
                (uint!(32), uint!(32)),
                Some(&ruma::media::Method::Crop),
                Duration::from_millis(50),
            )
            .await
            .unwrap();
        let content = json!({ "msgtype": "m.image", "body": marker, "url": mxc.to_string() });
        send(
            &self.s,
            &self.room,
            &self.alice,
            TimelineEventType::RoomMessage,
            content,
        )
        .await;
        id
    }

    pub(super) async fn topic(&self, topic: &str) -> ruma::OwnedEventId {
        let spec = EventSpec::state(StateEventType::RoomTopic, "", json!({ "topic": topic }));
        self.s
            .rooms
            .send_state(&self.room, &self.alice, spec)
            .await
            .unwrap()
    }

    pub(super) async fn actions(&self) -> Vec<String> {
        self.s
            .audit
            .all()
            .await
            .unwrap()
            .into_iter()
            .map(|r| r.action)
            .collect()
    }
}

pub(super) fn thirty_days() -> RetentionBounds {
    RetentionBounds {
        default_lifetime: Some(30 * DAY as u64),
        min_lifetime: None,
        max_lifetime: None,
    }
}

#[tokio::test]
async fn expired_messages_and_media_are_erased_from_disk() {
    let f = Fx::new(thirty_days()).await;
    let msg = text(&f.s, &f.room, &f.alice, "MARKER-ward7-bed3-plan").await;
    let media = f.image_message("MARKER-xray-image").await;
    let old_topic = f.topic("MARKER-topic-old").await;
    f.topic("current topic").await;
    assert_eq!(f.media_files(&media).len(), 2, "original and thumbnail");
    assert!(f.db_contains("MARKER-ward7-bed3-plan"));

    // Not expired yet: nothing goes.
    let r = f.retention.purge("test", false).await.unwrap();
    assert_eq!(r.events_deleted + r.events_minimised + r.media_deleted, 0);

    f.advance(31 * DAY);
    // A dry run reports, changes nothing.
    let dry = f.retention.purge("test", true).await.unwrap();
    assert!(dry.events_deleted >= 2, "{dry:?}");
    assert!(dry.event_ids.iter().any(|e| e == msg.as_str()));
    assert_eq!(dry.media_ids, vec![media.clone()]);
    assert!(f.db_contains("MARKER-ward7-bed3-plan"));
    assert_eq!(f.media_files(&media).len(), 2);
    assert!(f.store.get_event(msg.as_str()).unwrap().is_some());

    let r = f.retention.purge("test", false).await.unwrap();
    assert_eq!(r.events_deleted, dry.events_deleted, "{r:?}");
    assert_eq!(r.media_deleted, 1);
    assert!(r.space_reclaimed);
    assert!(f.store.get_event(msg.as_str()).unwrap().is_none());
    for marker in [
        "MARKER-ward7-bed3-plan",
        "MARKER-xray-image",
        "MARKER-topic-old",
    ] {
        assert!(
            !f.db_contains(marker),
            "{marker} still in the database files"
        );
    }
    assert!(f.media_files(&media).is_empty(), "media files left on disk");
    let rows: i64 = f
        .store
        .db
        .read(|c| Ok(c.query_row("SELECT COUNT(*) FROM media", [], |r| r.get(0))?))
        .unwrap();
    assert_eq!(rows, 0);

    // The superseded state event is kept, minimised; current state is untouched.
    let kept = f.store.get_event(old_topic.as_str()).unwrap().unwrap();
    let v: serde_json::Value = serde_json::from_str(&kept.json).unwrap();
    assert_eq!(v["content"], json!({}));
    assert_eq!(v["type"], "m.room.topic");

    // The room still works after the purge, and a second run does not redo anything: only the
    // new message (sent at real time, so expired by the test clock) is minimised, being the
    // room's latest event (the next event's prev_events).
    let after = text(&f.s, &f.room, &f.alice, "after the purge").await;
    assert!(f.store.get_event(after.as_str()).unwrap().is_some());
    let viewer = crate::service::rooms::format::Viewer {
        user_id: &f.alice,
        device_id: None,
    };
    let page =
        f.s.rooms
            .messages(
                &f.room,
                viewer,
                None,
                None,
                crate::store::rooms::Direction::Backward,
                50,
                &Default::default(),
            )
            .await
            .unwrap();
    let history = serde_json::to_string(&page.chunk).unwrap();
    assert!(history.contains("after the purge"), "{history}");
    assert!(!history.contains("MARKER"), "{history}");
    // The minimised topic is served as an empty state event, not a hole.
    assert!(
        page.chunk
            .iter()
            .any(|e| e["event_id"] == old_topic.as_str())
    );
    let again = f.retention.purge("test", false).await.unwrap();
    assert_eq!(again.events_deleted, 0, "{again:?}");
    assert_eq!(again.events_minimised, 1, "{again:?}");
    let purges = f
        .actions()
        .await
        .iter()
        .filter(|a| *a == "retention.purge")
        .count();
    assert_eq!(purges, 4);
}

#[tokio::test]
async fn room_retention_is_clamped_to_server_bounds() {
    let f = Fx::new(RetentionBounds {
        default_lifetime: None,
        min_lifetime: Some(DAY as u64),
        max_lifetime: Some(365 * DAY as u64),
    })
    .await;
    let rid = f.room.as_str();
    // No m.room.retention: the server maximum still applies.
    assert_eq!(
        f.retention.effective(rid).await.unwrap().max_lifetime,
        Some(365 * DAY as u64)
    );
    let set = |max: i64| {
        EventSpec::state(
            StateEventType::from("m.room.retention"),
            "",
            json!({ "max_lifetime": max, "min_lifetime": 1 }),
        )
    };
    f.s.rooms
        .send_state(&f.room, &f.alice, set(1000))
        .await
        .unwrap();
    let r = f.retention.effective(rid).await.unwrap();
    assert_eq!(r.max_lifetime, Some(DAY as u64));
    assert_eq!(r.min_lifetime, Some(DAY as u64));
    f.s.rooms
        .send_state(&f.room, &f.alice, set(10_000 * DAY))
        .await
        .unwrap();
    let r = f.retention.effective(rid).await.unwrap();
    assert_eq!(r.max_lifetime, Some(365 * DAY as u64));
    f.s.rooms
        .send_state(&f.room, &f.alice, set(7 * DAY))
        .await
        .unwrap();
    assert_eq!(
        f.retention.effective(rid).await.unwrap().max_lifetime,
        Some(7 * DAY as u64)
    );
    // Members may ask; others may not.
    let eve = user(&f.s, "eve").await;
    assert!(
        f.retention
            .effective_for_user(&eve, false, &f.room)
            .await
            .is_err()
    );
    assert!(
        f.retention
            .effective_for_user(&f.alice, false, &f.room)
            .await
            .is_ok()
    );
    // The room's 7 days apply: after 8 days its messages go.
    text(&f.s, &f.room, &f.alice, "MARKER-seven-days").await;
    f.topic("last").await;
    f.advance(8 * DAY);
    let r = f.retention.purge("test", false).await.unwrap();
    assert!(r.events_deleted >= 1, "{r:?}");
    assert!(!f.db_contains("MARKER-seven-days"));
}

#[tokio::test]
async fn redacted_originals_are_erased_after_the_grace_period() {
    let f = Fx::new(RetentionBounds::default()).await;
    let ev = text(&f.s, &f.room, &f.alice, "MARKER-redacted-original").await;
    let dev: ruma::OwnedDeviceId = "TESTDEV".into();
    f.s.rooms
        .redact(&f.room, &f.alice, &ev, None, (&dev, "r1"))
        .await
        .unwrap();
    f.advance(6 * DAY);
    let r = f.retention.purge("test", false).await.unwrap();
    assert_eq!(r.redacted_erased, 0);
    assert!(f.db_contains("MARKER-redacted-original"));
    f.advance(2 * DAY);
    let r = f.retention.purge("test", false).await.unwrap();
    assert_eq!(r.redacted_erased, 1, "{r:?}");
    assert!(!f.db_contains("MARKER-redacted-original"));
    // The row stays (the timeline shows a redacted event), its content gone.
    let kept = f.store.get_event(ev.as_str()).unwrap().unwrap();
    assert!(!kept.json.contains("body"));
}

#[tokio::test]
async fn rooms_forgotten_by_every_local_member_are_deleted() {
    let f = Fx::new(RetentionBounds::default()).await;
    text(&f.s, &f.room, &f.alice, "MARKER-forgotten-room").await;
    f.s.rooms.leave(&f.room, &f.alice, None).await.unwrap();
    // Left but not forgotten: kept.
    let r = f.retention.purge("test", false).await.unwrap();
    assert_eq!(r.rooms_deleted, 0);
    f.s.rooms.forget(&f.room, &f.alice).await.unwrap();
    let r = f.retention.purge("test", false).await.unwrap();
    assert_eq!(r.rooms_deleted, 1, "{r:?}");
    assert!(!f.db_contains("MARKER-forgotten-room"));
    assert!(f.store.room_version(f.room.as_str()).unwrap().is_none());
    let left: Result<i64, StoreError> = f.store.db.read(|c| {
        Ok(c.query_row(
            "SELECT (SELECT COUNT(*) FROM events) + (SELECT COUNT(*) FROM state_deltas)
               + (SELECT COUNT(*) FROM memberships)",
            [],
            |r| r.get(0),
        )?)
    });
    assert_eq!(left.unwrap(), 0);
}

#[tokio::test]
async fn undelivered_to_device_messages_expire() {
    use crate::store::to_device::ToDeviceStore;
    let f = Fx::new(RetentionBounds::default()).await;
    let bob = user(&f.s, "bob").await;
    f.s.users.create_session(&bob, None, None).await.unwrap();
    f.s.users
        .create_session(&f.alice, Some("ADEV".into()), None)
        .await
        .unwrap();
    let content = json!({ "secret": "MARKER-room-key" }).to_string();
    f.store
        .queue_to_device(
            f.alice.as_str(),
            "ADEV",
            "t1",
            "m.room_key",
            vec![(bob.to_string(), None, content)],
        )
        .unwrap();
    f.advance(29 * DAY);
    assert_eq!(
        f.retention
            .purge("test", false)
            .await
            .unwrap()
            .to_device_deleted,
        0
    );
    f.advance(2 * DAY);
    assert_eq!(
        f.retention
            .purge("test", true)
            .await
            .unwrap()
            .to_device_deleted,
        1
    );
    assert!(f.db_contains("MARKER-room-key"));
    assert_eq!(
        f.retention
            .purge("test", false)
            .await
            .unwrap()
            .to_device_deleted,
        1
    );
    assert!(!f.db_contains("MARKER-room-key"));
}
