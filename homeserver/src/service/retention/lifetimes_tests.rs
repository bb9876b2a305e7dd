//! MSC1763 `min_lifetime` and files still referred to by remaining events.

use ruma::events::{StateEventType, TimelineEventType};
use ruma::{OwnedRoomId, UserId};
use serde_json::json;

use super::tests::{DAY, Fx};
use crate::service::rooms::EventSpec;
use crate::service::test_util::{join, room, send, text, user};
use crate::store::media::MediaStore;

async fn set_retention(f: &Fx, room: &OwnedRoomId, content: serde_json::Value) {
    let spec = EventSpec::state(StateEventType::from("m.room.retention"), "", content);
    f.s.rooms.send_state(room, &f.alice, spec).await.unwrap();
}

/// Sends `mxc://localhost/<media>` as an image into `room`.
async fn share(f: &Fx, room: &OwnedRoomId, sender: &UserId, media: &str, body: &str) {
    let content =
        json!({ "msgtype": "m.image", "body": body, "url": format!("mxc://localhost/{media}") });
    send(&f.s, room, sender, TimelineEventType::RoomMessage, content).await;
}

fn bound_room(f: &Fx, media: &str) -> Option<String> {
    f.store.media_access(media).unwrap().bound_room
}

#[tokio::test]
async fn min_lifetime_raises_a_shorter_max_lifetime() {
    let f = Fx::new(Default::default()).await;
    set_retention(
        &f,
        &f.room,
        json!({ "max_lifetime": DAY, "min_lifetime": 30 * DAY }),
    )
    .await;
    let r = f.retention.effective(f.room.as_str()).await.unwrap();
    assert_eq!(r.max_lifetime, Some(30 * DAY as u64), "{r:?}");
    text(&f.s, &f.room, &f.alice, "MARKER-min-lifetime").await;
    f.topic("last").await;
    f.advance(2 * DAY);
    let r = f.retention.purge("test", false).await.unwrap();
    assert_eq!(r.events_deleted, 0, "{r:?}");
    assert!(f.db_contains("MARKER-min-lifetime"));
    f.advance(29 * DAY);
    let r = f.retention.purge("test", false).await.unwrap();
    assert!(r.events_deleted >= 1, "{r:?}");
    assert!(!f.db_contains("MARKER-min-lifetime"));
}

#[tokio::test]
async fn redacted_originals_wait_for_min_lifetime() {
    let f = Fx::new(Default::default()).await;
    set_retention(&f, &f.room, json!({ "min_lifetime": 30 * DAY })).await;
    let ev = text(&f.s, &f.room, &f.alice, "MARKER-redacted-but-kept").await;
    let dev: ruma::OwnedDeviceId = "TESTDEV".into();
    f.s.rooms
        .redact(&f.room, &f.alice, &ev, None, (&dev, "r1"))
        .await
        .unwrap();
    // Past the 7-day grace, inside the 30-day minimum: kept, and counted.
    f.advance(8 * DAY);
    let r = f.retention.purge("test", false).await.unwrap();
    assert_eq!(r.redacted_erased, 0, "{r:?}");
    assert_eq!(r.min_lifetime_kept, 1, "{r:?}");
    assert!(f.db_contains("MARKER-redacted-but-kept"));
    f.advance(23 * DAY);
    let r = f.retention.purge("test", false).await.unwrap();
    assert_eq!(r.redacted_erased, 1, "{r:?}");
    assert!(!f.db_contains("MARKER-redacted-but-kept"));
}

#[tokio::test]
async fn forgotten_rooms_wait_for_the_server_min_lifetime() {
    let f = Fx::new(handover_policy::RetentionBounds {
        default_lifetime: None,
        min_lifetime: Some(10 * DAY as u64),
        max_lifetime: None,
    })
    .await;
    text(&f.s, &f.room, &f.alice, "MARKER-forgotten-young").await;
    f.s.rooms.leave(&f.room, &f.alice, None).await.unwrap();
    f.s.rooms.forget(&f.room, &f.alice).await.unwrap();
    let r = f.retention.purge("test", false).await.unwrap();
    assert_eq!(r.rooms_deleted, 0, "{r:?}");
    assert_eq!(r.min_lifetime_kept, 1, "{r:?}");
    assert!(f.db_contains("MARKER-forgotten-young"));
    f.advance(11 * DAY);
    let r = f.retention.purge("test", false).await.unwrap();
    assert_eq!(r.rooms_deleted, 1, "{r:?}");
    assert!(!f.db_contains("MARKER-forgotten-young"));
}

#[tokio::test]
async fn a_file_another_remaining_event_refers_to_is_kept_and_rebound() {
    let f = Fx::new(Default::default()).await;
    set_retention(&f, &f.room, json!({ "max_lifetime": 7 * DAY })).await;
    let media = f.image_message("MARKER-first-share").await;
    assert_eq!(bound_room(&f, &media).as_deref(), Some(f.room.as_str()));
    // Alice shares the same file in a room that keeps its messages.
    let archive = room(&f.s, &f.alice, "archive", false).await;
    share(&f, &archive, &f.alice, &media, "again").await;
    f.topic("last").await; // the first room's latest event stays a state event

    f.advance(8 * DAY);
    let dry = f.retention.purge("test", true).await.unwrap();
    assert!(dry.media_ids.is_empty(), "{dry:?}");
    assert_eq!(dry.media_kept_referenced, 1, "{dry:?}");
    let r = f.retention.purge("test", false).await.unwrap();
    assert!(r.events_deleted >= 1, "{r:?}");
    assert_eq!(r.media_deleted, 0, "{r:?}");
    assert_eq!(r.media_kept_referenced, 1, "{r:?}");
    assert!(!f.db_contains("MARKER-first-share"));
    assert_eq!(f.media_files(&media).len(), 2, "file and thumbnail kept");
    // Only the archive refers to it now: its members may fetch it, the first room's may not.
    assert_eq!(bound_room(&f, &media).as_deref(), Some(archive.as_str()));

    // Once the last reference goes, so does the file.
    set_retention(&f, &archive, json!({ "max_lifetime": DAY })).await;
    f.topic("later").await;
    f.advance(2 * DAY);
    let r = f.retention.purge("test", false).await.unwrap();
    assert_eq!(r.media_deleted, 1, "{r:?}");
    assert!(f.media_files(&media).is_empty());
}

#[tokio::test]
async fn a_file_kept_by_someone_elses_reference_is_unbound() {
    let f = Fx::new(Default::default()).await;
    set_retention(&f, &f.room, json!({ "max_lifetime": 7 * DAY })).await;
    let bob = user(&f.s, "bob").await;
    join(&f.s, &f.room, &f.alice, &bob).await;
    let media = f.image_message("MARKER-photo").await;
    // Bob forwards Alice's file into his own room: that reference keeps the file, but it never
    // binds someone else's file, so once the first room no longer refers to it only Alice may
    // fetch it (not the first room's members, whose copy of the message has expired).
    let clinic = room(&f.s, &bob, "clinic", false).await;
    share(&f, &clinic, &bob, &media, "fwd").await;
    f.topic("last").await;
    f.advance(8 * DAY);
    let r = f.retention.purge("test", false).await.unwrap();
    assert_eq!(r.media_deleted, 0, "{r:?}");
    assert_eq!(f.media_files(&media).len(), 2);
    assert_eq!(bound_room(&f, &media), None);
}

#[tokio::test]
async fn an_edit_binds_and_keeps_its_new_file() {
    let f = Fx::new(Default::default()).await;
    set_retention(&f, &f.room, json!({ "max_lifetime": 7 * DAY })).await;
    let first = f.image_message("MARKER-before-edit").await;
    // An edit that swaps the attachment: the new file is bound to the room from the edit.
    let png = {
        let img = image::RgbImage::from_fn(8, 8, |x, _| image::Rgb([x as u8, 1, 2]));
        let mut out = std::io::Cursor::new(Vec::new());
        image::DynamicImage::ImageRgb8(img)
            .write_to(&mut out, image::ImageFormat::Png)
            .unwrap();
        out.into_inner()
    };
    let mxc =
        f.s.media
            .upload(&f.alice, png, Some("image/png".into()), None)
            .await
            .unwrap();
    let second = mxc.media_id().unwrap().to_owned();
    assert_eq!(bound_room(&f, &second), None);
    let archive = room(&f.s, &f.alice, "archive", false).await;
    let edit = json!({
        // The new file only inside `m.new_content`: the fallback text carries none.
        "msgtype": "m.text", "body": "* corrected",
        "m.new_content": { "msgtype": "m.image", "body": "corrected", "url": mxc.to_string() },
        "m.relates_to": { "rel_type": "m.replace", "event_id": "$original" }
    });
    send(
        &f.s,
        &archive,
        &f.alice,
        TimelineEventType::RoomMessage,
        edit,
    )
    .await;
    assert_eq!(bound_room(&f, &second).as_deref(), Some(archive.as_str()));
    f.topic("last").await;
    f.advance(8 * DAY);
    let r = f.retention.purge("test", false).await.unwrap();
    // The first file expires with its message; the edit's file is referred to by the archive.
    assert_eq!(r.media_deleted, 1, "{r:?}");
    assert!(f.media_files(&first).is_empty());
    assert!(!f.media_files(&second).is_empty());
}
