//! A room's summary (the spec's `room_summary.yaml`) from its current state, the valid
//! `m.space.child` events of a space in the spec's order, and who may see a room.

use std::collections::HashSet;

use ruma::events::StateEventType;
use ruma::events::room::join_rules::RoomJoinRulesEventContent;
use ruma::events::space::child::HierarchySpaceChildEvent;
use ruma::room::{JoinRuleSummary, RoomSummary, RoomType};
use ruma::serde::Raw;
use ruma::{OwnedRoomId, OwnedServerName, UInt};
use serde_json::{Value, json};

use crate::service::rooms::state::RoomState;

/// Longest valid `order` of an `m.space.child` (spec).
const MAX_ORDER_CHARS: usize = 50;

pub fn summarize(state: &RoomState) -> RoomSummary {
    let s = |kind: StateEventType, field: &str| {
        state
            .content_json(&kind, "")
            .and_then(|v| v[field].as_str().map(str::to_owned))
    };
    let joined = state
        .state
        .keys()
        .filter(|(k, _)| *k == StateEventType::RoomMember)
        .filter_map(|(_, u)| u.parse::<ruma::OwnedUserId>().ok())
        .filter(|u| state.membership_of(u).as_deref() == Some("join"))
        .count();
    let join_rule = state
        .get(&StateEventType::RoomJoinRules, "")
        .and_then(|p| p.content_as::<RoomJoinRulesEventContent>())
        .map(|c| JoinRuleSummary::from(c.join_rule))
        // No join rules event: the room is invite-only (the auth rules' default).
        .unwrap_or(JoinRuleSummary::Invite);
    let world_readable = s(StateEventType::RoomHistoryVisibility, "history_visibility").as_deref()
        == Some("world_readable");
    let guest_can_join =
        s(StateEventType::RoomGuestAccess, "guest_access").as_deref() == Some("can_join");
    let mut sum = RoomSummary::new(
        state.room_id.clone(),
        join_rule,
        guest_can_join,
        UInt::new_saturating(joined as u64),
        world_readable,
    );
    sum.name = s(StateEventType::RoomName, "name");
    sum.topic = s(StateEventType::RoomTopic, "topic");
    sum.canonical_alias =
        s(StateEventType::RoomCanonicalAlias, "alias").and_then(|a| a.try_into().ok());
    sum.avatar_url = s(StateEventType::RoomAvatar, "url").map(Into::into);
    sum.room_type = s(StateEventType::RoomCreate, "type").map(Into::into);
    sum.encryption = s(StateEventType::RoomEncryption, "algorithm").map(Into::into);
    sum.room_version = Some(state.version.clone());
    sum
}

pub fn is_space(sum: &RoomSummary) -> bool {
    sum.room_type == Some(RoomType::Space)
}

/// Anyone may see the room: it can be joined or knocked on by anyone, or peeked.
pub fn open_to_all(sum: &RoomSummary) -> bool {
    sum.world_readable
        || matches!(
            sum.join_rule,
            JoinRuleSummary::Public | JoinRuleSummary::Knock | JoinRuleSummary::KnockRestricted(_)
        )
}

/// The rooms whose members may join a restricted room.
pub fn allowed_rooms(sum: &RoomSummary) -> &[OwnedRoomId] {
    match &sum.join_rule {
        JoinRuleSummary::Restricted(r) | JoinRuleSummary::KnockRestricted(r) => &r.allowed_room_ids,
        _ => &[],
    }
}

/// Whether a user joined to `joined` may see a room they are not a member of.
pub fn open_to(sum: &RoomSummary, joined: &HashSet<OwnedRoomId>) -> bool {
    open_to_all(sum) || allowed_rooms(sum).iter().any(|r| joined.contains(r))
}

/// One valid `m.space.child` of a space.
#[derive(Debug, Clone)]
pub struct Child {
    pub room_id: OwnedRoomId,
    pub via: Vec<OwnedServerName>,
    pub order: Option<String>,
    pub suggested: bool,
    pub ts: u64,
    /// The stripped event with `origin_server_ts`, as `children_state` carries it.
    pub event: Raw<HierarchySpaceChildEvent>,
}

impl Child {
    /// `None` unless the event is valid: a room id as state key and a non-empty `via` of server
    /// names (an event without `via` is how a child is removed).
    pub fn parse(state_key: &str, sender: &str, content: &Value, ts: u64) -> Option<Self> {
        let room_id: OwnedRoomId = state_key.parse().ok()?;
        let via: Vec<OwnedServerName> = content["via"]
            .as_array()?
            .iter()
            .filter_map(|v| v.as_str()?.parse().ok())
            .collect();
        if via.is_empty() {
            return None;
        }
        // An invalid order is treated as absent (spec).
        let order = content["order"].as_str().filter(|o| {
            o.chars().count() <= MAX_ORDER_CHARS && o.chars().all(|c| (' '..='~').contains(&c))
        });
        let event = json!({
            "type": "m.space.child",
            "state_key": state_key,
            "sender": sender,
            "content": content,
            "origin_server_ts": ts,
        });
        Some(Self {
            room_id,
            via,
            order: order.map(str::to_owned),
            suggested: content["suggested"].as_bool() == Some(true),
            ts,
            event: Raw::from_json(serde_json::value::to_raw_value(&event).ok()?),
        })
    }

    /// From an event of `children_state` (another server's answer).
    pub fn from_stripped(raw: &Raw<HierarchySpaceChildEvent>) -> Option<Self> {
        let v: Value = raw.deserialize_as().ok()?;
        Self::parse(
            v["state_key"].as_str()?,
            v["sender"].as_str().unwrap_or_default(),
            &v["content"],
            v["origin_server_ts"].as_u64().unwrap_or(0),
        )
    }
}

/// The spec's order: children with an `order` first, by `order`; then by the child event's
/// `origin_server_ts`; then by room id.
pub fn sort_children(children: &mut [Child]) {
    children.sort_by(|a, b| {
        (a.order.is_none(), &a.order, a.ts, &a.room_id).cmp(&(
            b.order.is_none(),
            &b.order,
            b.ts,
            &b.room_id,
        ))
    });
}

/// The valid children of a space in order (none for a room that is not a space).
pub fn children_of(state: &RoomState, sum: &RoomSummary) -> Vec<Child> {
    if !is_space(sum) {
        return Vec::new();
    }
    let mut out: Vec<Child> = state
        .state
        .iter()
        .filter(|((k, _), _)| *k == StateEventType::SpaceChild)
        .filter_map(|((_, key), pdu)| {
            let content: Value = serde_json::from_str(pdu.content.get()).ok()?;
            Child::parse(
                key,
                pdu.sender.as_str(),
                &content,
                pdu.origin_server_ts.get().into(),
            )
        })
        .collect();
    sort_children(&mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn child(key: &str, content: Value, ts: u64) -> Option<Child> {
        Child::parse(key, "@a:l", &content, ts)
    }

    #[test]
    fn invalid_children_are_ignored() {
        assert!(child("!r:l", json!({}), 1).is_none());
        assert!(child("!r:l", json!({ "via": [] }), 1).is_none());
        assert!(child("!r:l", json!({ "via": "l" }), 1).is_none());
        assert!(child("!r:l", json!({ "via": ["not a server!"] }), 1).is_none());
        assert!(child("not-a-room", json!({ "via": ["l"] }), 1).is_none());
        let c = child("!r:l", json!({ "via": ["l"], "suggested": true }), 1).unwrap();
        assert!(c.suggested);
        let v: Value = c.event.deserialize_as().unwrap();
        assert_eq!(v["origin_server_ts"], 1);
        assert_eq!(v["type"], "m.space.child");
    }

    #[test]
    fn children_sort_by_order_then_timestamp_then_room_id() {
        let long = "a".repeat(MAX_ORDER_CHARS + 1);
        let mut cs: Vec<Child> = [
            child("!e:l", json!({ "via": ["l"] }), 5),
            child("!d:l", json!({ "via": ["l"] }), 5),
            child("!c:l", json!({ "via": ["l"] }), 1),
            child("!b:l", json!({ "via": ["l"], "order": "b" }), 9),
            child("!a:l", json!({ "via": ["l"], "order": "a" }), 9),
            // Invalid orders count as none.
            child("!f:l", json!({ "via": ["l"], "order": long }), 0),
            child("!g:l", json!({ "via": ["l"], "order": "caf\u{e9}" }), 2),
        ]
        .into_iter()
        .map(Option::unwrap)
        .collect();
        sort_children(&mut cs);
        let ids: Vec<&str> = cs.iter().map(|c| c.room_id.as_str()).collect();
        assert_eq!(
            ids,
            ["!a:l", "!b:l", "!f:l", "!c:l", "!g:l", "!d:l", "!e:l"]
        );
    }
}
