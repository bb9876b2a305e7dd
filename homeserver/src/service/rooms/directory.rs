//! The public room directory: rooms on this server marked public, summarised from their state.

use ruma::directory::{PublicRoomsChunk, PublicRoomsChunkInit};
use ruma::events::StateEventType;
use ruma::room::JoinRuleKind;
use ruma::{OwnedRoomId, UInt};

use super::RoomService;
use crate::error::Result;

pub struct PublicRooms {
    pub chunk: Vec<PublicRoomsChunk>,
    pub next_batch: Option<String>,
    pub total: usize,
}

impl RoomService {
    pub async fn public_rooms_chunk(
        &self,
        limit: Option<usize>,
        since: Option<&str>,
    ) -> Result<PublicRooms> {
        let ids: Vec<OwnedRoomId> = self.public_room_ids().await?;
        let total = ids.len();
        let start: usize = since
            .and_then(|s| s.trim_start_matches('p').parse().ok())
            .unwrap_or(0);
        let limit = limit.unwrap_or(100).clamp(1, 500);
        let mut chunk = Vec::new();
        for room_id in ids.iter().skip(start).take(limit) {
            let state = self.current_state(room_id).await?;
            let joined = state
                .state
                .keys()
                .filter(|(k, _)| *k == StateEventType::RoomMember)
                .filter(|(_, u)| {
                    u.parse::<ruma::OwnedUserId>()
                        .ok()
                        .is_some_and(|u| state.membership_of(&u).as_deref() == Some("join"))
                })
                .count();
            let mut c: PublicRoomsChunk = PublicRoomsChunkInit {
                num_joined_members: UInt::new_saturating(joined as u64),
                room_id: room_id.clone(),
                world_readable: false,
                guest_can_join: false,
            }
            .into();
            let s = |kind: StateEventType, field: &str| {
                state
                    .content_json(&kind, "")
                    .and_then(|v| v[field].as_str().map(str::to_owned))
            };
            c.name = s(StateEventType::RoomName, "name");
            c.topic = s(StateEventType::RoomTopic, "topic");
            c.canonical_alias =
                s(StateEventType::RoomCanonicalAlias, "alias").and_then(|a| a.try_into().ok());
            c.avatar_url = s(StateEventType::RoomAvatar, "url").map(Into::into);
            c.world_readable = s(StateEventType::RoomHistoryVisibility, "history_visibility")
                .as_deref()
                == Some("world_readable");
            c.guest_can_join =
                s(StateEventType::RoomGuestAccess, "guest_access").as_deref() == Some("can_join");
            c.join_rule = match s(StateEventType::RoomJoinRules, "join_rule").as_deref() {
                Some("public") => JoinRuleKind::Public,
                Some("knock") => JoinRuleKind::Knock,
                _ => JoinRuleKind::Invite,
            };
            chunk.push(c);
        }
        let next = start + chunk.len();
        Ok(PublicRooms {
            chunk,
            next_batch: (next < total).then(|| format!("p{next}")),
            total,
        })
    }
}
