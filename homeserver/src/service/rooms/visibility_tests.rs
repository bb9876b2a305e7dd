//! History visibility through the read paths, against a real store: forgotten rooms, bundled
//! edits, lazy-loaded members and the setting in force at each event.

use ruma::api::client::filter::RoomEventFilter;
use ruma::api::error::ErrorKind;
use ruma::{EventId, OwnedRoomId, UserId};
use serde_json::Value;

use crate::service::Services;
use crate::service::test_services;
use crate::service::test_util::{is_kind, join, room, text, user, viewer};
use crate::store::rooms::Direction;

/// Bodies of the messages `user` gets from /messages (backwards from now), oldest first.
async fn bodies(s: &Services, r: &OwnedRoomId, u: &UserId) -> crate::error::Result<Vec<String>> {
    let page = s
        .rooms
        .messages(
            r,
            viewer(u),
            None,
            None,
            Direction::Backward,
            100,
            &RoomEventFilter::default(),
        )
        .await?;
    let mut out: Vec<String> = page
        .chunk
        .iter()
        .filter_map(|e| e["content"]["body"].as_str().map(str::to_owned))
        .collect();
    out.reverse();
    Ok(out)
}

async fn event(s: &Services, r: &OwnedRoomId, id: &EventId, u: &UserId) -> Option<Value> {
    s.rooms.get_event(r, id, viewer(u)).await.ok()
}

#[tokio::test]
async fn a_forgotten_room_is_no_longer_readable() {
    let (s, _d) = test_services();
    let (a, b) = (user(&s, "alice").await, user(&s, "bob").await);
    let r = room(&s, &a, "Ward 7", false).await;
    join(&s, &r, &a, &b).await;
    let msg = text(&s, &r, &a, "obs at 14:00").await;
    s.rooms.leave(&r, &b, None).await.unwrap();
    // Left: history up to the leave is still readable.
    assert!(event(&s, &r, &msg, &b).await.is_some());
    assert_eq!(bodies(&s, &r, &b).await.unwrap(), ["obs at 14:00"]);

    s.rooms.forget(&r, &b).await.unwrap();
    assert!(event(&s, &r, &msg, &b).await.is_none());
    let e = bodies(&s, &r, &b).await.unwrap_err();
    assert!(is_kind(&e, ErrorKind::Forbidden), "{e:?}");
    assert!(s.rooms.visible_state(&r, viewer(&b)).await.is_err());
    // A rejoin clears the flag: the room is readable again.
    join(&s, &r, &a, &b).await;
    assert!(event(&s, &r, &msg, &b).await.is_some());
}
