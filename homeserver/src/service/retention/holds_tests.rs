//! Legal holds: held rooms and held users' events and uploads survive expiry; holds are audited.

use ruma::events::TimelineEventType;
use serde_json::json;

use super::HoldTarget;
use super::tests::{DAY, Fx, thirty_days};
use crate::service::test_util::{room, send, text, user};

#[tokio::test]
async fn held_rooms_and_held_users_keep_everything() {
    let f = Fx::new(thirty_days()).await;
    text(&f.s, &f.room, &f.alice, "MARKER-held-room").await;
    let media = f.image_message("MARKER-held-image").await;
    let target = HoldTarget::parse("room", f.room.as_str()).unwrap();
    assert!(
        f.retention
            .place_hold("admin-cli", target, None)
            .await
            .unwrap()
    );

    // A second room whose only sender is held.
    let bob = user(&f.s, "bob").await;
    let other = room(&f.s, &bob, "clinic", false).await;
    text(&f.s, &other, &bob, "MARKER-held-user").await;
    let hold_bob = HoldTarget::parse("user", bob.as_str()).unwrap();
    f.retention
        .place_hold("admin-cli", hold_bob.clone(), Some("case 42".into()))
        .await
        .unwrap();

    f.advance(31 * DAY);
    let r = f.retention.purge("test", false).await.unwrap();
    assert_eq!(r.rooms_held, 1);
    for marker in ["MARKER-held-room", "MARKER-held-image", "MARKER-held-user"] {
        assert!(f.db_contains(marker), "{marker} purged despite a hold");
    }
    assert_eq!(f.media_files(&media).len(), 2);

    // Released: the next run purges.
    let target = HoldTarget::parse("room", f.room.as_str()).unwrap();
    assert!(
        f.retention
            .release_hold("admin-cli", target, None)
            .await
            .unwrap()
    );
    assert!(
        f.retention
            .release_hold("admin-cli", hold_bob, None)
            .await
            .unwrap()
    );
    f.retention.purge("test", false).await.unwrap();
    for marker in ["MARKER-held-room", "MARKER-held-image", "MARKER-held-user"] {
        assert!(!f.db_contains(marker), "{marker} kept after release");
    }
    assert!(f.media_files(&media).is_empty());
    let actions = f.actions().await;
    assert_eq!(actions.iter().filter(|a| *a == "retention.hold").count(), 2);
    assert_eq!(
        actions.iter().filter(|a| *a == "retention.release").count(),
        2
    );
}

#[tokio::test]
async fn media_uploaded_by_a_held_user_survives_other_senders_expiry() {
    let f = Fx::new(thirty_days()).await;
    let bob = user(&f.s, "bob").await;
    let mxc =
        f.s.media
            .upload(&bob, b"scan".to_vec(), None, None)
            .await
            .unwrap();
    let id = mxc.media_id().unwrap().to_owned();
    let content =
        json!({ "msgtype": "m.file", "body": "MARKER-forwarded", "url": mxc.to_string() });
    send(
        &f.s,
        &f.room,
        &f.alice,
        TimelineEventType::RoomMessage,
        content,
    )
    .await;
    f.topic("tip").await;
    let hold = HoldTarget::parse("user", bob.as_str()).unwrap();
    f.retention
        .place_hold("admin-cli", hold, None)
        .await
        .unwrap();
    f.advance(31 * DAY);
    let r = f.retention.purge("test", false).await.unwrap();
    assert_eq!(r.media_deleted, 0, "{r:?}");
    assert!(!f.db_contains("MARKER-forwarded"));
    assert_eq!(f.media_files(&id).len(), 1);
}
