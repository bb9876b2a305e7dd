//! Helpers for service tests: users, rooms and messages on a real store in a temp dir.

use ruma::events::{StateEventType, TimelineEventType};
use ruma::{OwnedEventId, OwnedRoomId, OwnedUserId, UserId};
use serde_json::{Value, json};

use super::Services;
use super::rooms::format::Viewer;
use super::rooms::{CreateRoomParams, EventSpec};

pub async fn user(s: &Services, name: &str) -> OwnedUserId {
    s.users
        .create_user(name, Some("a long password"), false, false)
        .await
        .unwrap()
}

/// A private room (invite only, shared history) created by `creator`.
pub async fn room(s: &Services, creator: &UserId, name: &str, is_public: bool) -> OwnedRoomId {
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
        creation_content: None,
        power_level_override: None,
    };
    s.rooms.create_room(creator, params).await.unwrap()
}

/// Invites `user` to the room and joins them.
pub async fn join(s: &Services, room: &OwnedRoomId, inviter: &UserId, user: &UserId) {
    s.rooms
        .invite(room, inviter, user, None, false)
        .await
        .unwrap();
    s.rooms.join(room, user, None).await.unwrap();
}

/// Sends a message-like event with a fresh transaction id.
pub async fn send(
    s: &Services,
    room: &OwnedRoomId,
    sender: &UserId,
    kind: TimelineEventType,
    content: Value,
) -> OwnedEventId {
    let dev: ruma::OwnedDeviceId = "TESTDEV".into();
    let txn = ruma::TransactionId::new();
    s.rooms
        .send_message(
            room,
            sender,
            EventSpec::new(kind, content, None),
            (&dev, txn.as_str()),
        )
        .await
        .unwrap()
}

pub async fn text(s: &Services, room: &OwnedRoomId, sender: &UserId, body: &str) -> OwnedEventId {
    let content = json!({ "msgtype": "m.text", "body": body });
    send(s, room, sender, TimelineEventType::RoomMessage, content).await
}

/// Sets the room's history visibility (`joined`, `invited`, `shared`, `world_readable`).
pub async fn history_visibility(s: &Services, room: &OwnedRoomId, sender: &UserId, v: &str) {
    let spec = EventSpec::state(
        StateEventType::RoomHistoryVisibility,
        "",
        json!({ "history_visibility": v }),
    );
    s.rooms.send_state(room, sender, spec).await.unwrap();
}

pub fn viewer(user: &UserId) -> Viewer<'_> {
    Viewer {
        user_id: user,
        device_id: None,
    }
}

pub fn is_kind(e: &crate::error::Error, kind: ruma::api::error::ErrorKind) -> bool {
    e.kind() == Some(&kind)
}

/// A user of another server joins a public room (as if their join had arrived over
/// federation): the room then has a member, and a joined server, elsewhere.
pub async fn remote_join(s: &Services, room: &OwnedRoomId, user: &UserId) {
    let spec = EventSpec::state(
        StateEventType::RoomMember,
        user.as_str(),
        json!({ "membership": "join" }),
    );
    s.rooms.send(room, user, spec, None).await.unwrap();
}
