//! The public room directory: rooms on this server marked public, summarised from their state,
//! optionally filtered by a search term and room types (POST /publicRooms).

use ruma::directory::{PublicRoomsChunk, PublicRoomsChunkInit, RoomTypeFilter};
use ruma::events::StateEventType;
use ruma::room::JoinRuleKind;
use ruma::{OwnedRoomId, RoomId, UInt};

use super::RoomService;
use crate::error::Result;

pub struct PublicRooms {
    pub chunk: Vec<PublicRoomsChunk>,
    pub next_batch: Option<String>,
    pub total: usize,
}

/// POST /publicRooms's `filter`; the default matches every room.
#[derive(Debug, Clone, Default)]
pub struct PublicRoomsFilter {
    /// Case-insensitive substring of the name, topic or canonical alias.
    pub search: Option<String>,
    /// Room types to include (`Default` is a room without a type); empty means all.
    pub room_types: Vec<RoomTypeFilter>,
}

impl PublicRoomsFilter {
    fn is_empty(&self) -> bool {
        self.search.as_deref().is_none_or(|s| s.trim().is_empty()) && self.room_types.is_empty()
    }

    fn matches(&self, c: &PublicRoomsChunk) -> bool {
        let term = self
            .search
            .as_deref()
            .map(|s| s.trim().to_lowercase())
            .unwrap_or_default();
        let text_ok = term.is_empty()
            || [
                c.name.as_deref(),
                c.topic.as_deref(),
                c.canonical_alias.as_ref().map(|a| a.as_str()),
            ]
            .into_iter()
            .flatten()
            .any(|s| s.to_lowercase().contains(&term));
        let kind = c.room_type.as_ref().map(|t| t.as_str());
        let type_ok =
            self.room_types.is_empty() || self.room_types.iter().any(|t| t.as_str() == kind);
        text_ok && type_ok
    }
}

impl RoomService {
    /// One page of the directory. `since` is the `next_batch` of the previous page (an offset
    /// into the filtered list).
    pub async fn public_rooms_chunk(
        &self,
        limit: Option<usize>,
        since: Option<&str>,
        filter: &PublicRoomsFilter,
    ) -> Result<PublicRooms> {
        let ids: Vec<OwnedRoomId> = self.public_room_ids().await?;
        let start: usize = since
            .and_then(|s| s.trim_start_matches('p').parse().ok())
            .unwrap_or(0);
        let limit = limit.unwrap_or(100).clamp(1, 500);
        let (chunk, total) = if filter.is_empty() {
            // Unfiltered: summarise only the requested page.
            let mut chunk = Vec::new();
            for room_id in ids.iter().skip(start).take(limit) {
                chunk.push(self.public_room_summary(room_id).await?);
            }
            (chunk, ids.len())
        } else {
            // Filtered: every public room must be summarised to know what matches.
            let mut matched = Vec::new();
            for room_id in &ids {
                let c = self.public_room_summary(room_id).await?;
                if filter.matches(&c) {
                    matched.push(c);
                }
            }
            let total = matched.len();
            (matched.into_iter().skip(start).take(limit).collect(), total)
        };
        let next = start + chunk.len();
        Ok(PublicRooms {
            chunk,
            next_batch: (next < total).then(|| format!("p{next}")),
            total,
        })
    }

    async fn public_room_summary(&self, room_id: &RoomId) -> Result<PublicRoomsChunk> {
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
            room_id: room_id.to_owned(),
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
        c.room_type = s(StateEventType::RoomCreate, "type").map(Into::into);
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
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use ruma::events::StateEventType;
    use serde_json::json;

    use super::*;
    use crate::service::rooms::EventSpec;
    use crate::service::test_services;
    use crate::service::test_util::{room, user};

    fn names(p: &PublicRooms) -> Vec<String> {
        p.chunk.iter().map(|c| c.name.clone().unwrap()).collect()
    }

    fn search(term: &str) -> PublicRoomsFilter {
        PublicRoomsFilter {
            search: Some(term.into()),
            ..Default::default()
        }
    }

    #[tokio::test]
    async fn search_matches_name_and_topic_case_insensitively_and_pages() {
        let (s, _d) = test_services();
        let a = user(&s, "alice").await;
        room(&s, &a, "Ward 7 Handover", true).await;
        let pharmacy = room(&s, &a, "Pharmacy", true).await;
        room(&s, &a, "Private ward chat", false).await;
        let topic = EventSpec::state(
            StateEventType::RoomTopic,
            "",
            json!({ "topic": "Ward round queries" }),
        );
        s.rooms.send_state(&pharmacy, &a, topic).await.unwrap();

        let all = s
            .rooms
            .public_rooms_chunk(None, None, &PublicRoomsFilter::default())
            .await
            .unwrap();
        assert_eq!(all.total, 2);

        let ward = s
            .rooms
            .public_rooms_chunk(None, None, &search("WARD"))
            .await
            .unwrap();
        assert_eq!(names(&ward), ["Ward 7 Handover", "Pharmacy"]);
        let none = s
            .rooms
            .public_rooms_chunk(None, None, &search("theatre"))
            .await
            .unwrap();
        assert!(none.chunk.is_empty() && none.total == 0);

        // Pages are taken from the filtered list.
        let p1 = s
            .rooms
            .public_rooms_chunk(Some(1), None, &search("ward"))
            .await
            .unwrap();
        assert_eq!(names(&p1), ["Ward 7 Handover"]);
        let p2 = s
            .rooms
            .public_rooms_chunk(Some(1), p1.next_batch.as_deref(), &search("ward"))
            .await
            .unwrap();
        assert_eq!(names(&p2), ["Pharmacy"]);
        assert_eq!(p2.next_batch, None);

        // Room types: no room here is a space.
        let spaces = PublicRoomsFilter {
            room_types: vec![RoomTypeFilter::Space],
            ..Default::default()
        };
        let got = s
            .rooms
            .public_rooms_chunk(None, None, &spaces)
            .await
            .unwrap();
        assert!(got.chunk.is_empty());
        let plain = PublicRoomsFilter {
            room_types: vec![RoomTypeFilter::Default],
            ..Default::default()
        };
        let got = s
            .rooms
            .public_rooms_chunk(None, None, &plain)
            .await
            .unwrap();
        assert_eq!(got.total, 2);
    }
}
