//! One room of a sliding-sync response: a first ("initial") send with the latest timeline and
//! the required state, or an update with what happened since the connection last sent it.
//! Name, avatar, heroes, member counts, unread counts and the bump stamp ride along.

use std::collections::HashSet;

use ruma::api::client::sync::sync_events::UnreadNotificationsCount;
use ruma::api::client::sync::sync_events::v5::response::{self, Hero};
use ruma::events::StateEventType;
use ruma::{JsOption, UInt, UserId};
use serde_json::Value;

use super::SlidingSyncService;
use super::connection::SentRoom;
use super::lists::{Candidate, RoomConfig};
use super::required_state;
use crate::error::Result;
use crate::service::rooms::format::{Viewer, client_event, to_raw};
use crate::service::rooms::read::{Window, token};
use crate::service::rooms::state::RoomState;
use crate::service::rooms::visibility::Visible;
use crate::service::users::Session;
use crate::store::rooms::{Direction, StoredEvent};

/// Heroes sent for a room without a name (as in /sync v3's summary).
const MAX_HEROES: usize = 5;

impl SlidingSyncService {
    /// The room as the client should now see it, or `None` if nothing changed since `sent`.
    pub(super) async fn room(
        &self,
        session: &Session,
        cand: &Candidate,
        config: &RoomConfig,
        sent: Option<&SentRoom>,
        upto: i64,
    ) -> Result<Option<response::Room>> {
        if cand.membership == "invite" {
            // An invite does not change until the membership does (then it is no invite).
            let fresh = sent.is_none_or(|s| s.membership != "invite");
            return Ok(if fresh {
                Some(self.invited_room(session, cand).await?)
            } else {
                None
            });
        }
        // A room seen only as an invite is sent whole once joined.
        let fresh = sent.is_none_or(|s| s.membership == "invite" && cand.membership == "join");
        let new_config = sent.is_some_and(|s| s.required_state != config.required_state);
        let since = match sent {
            Some(s) if !fresh => s.pos,
            _ => -1,
        };
        if !fresh
            && !new_config
            && cand.bump <= since
            && !self.read_since(session, cand, (since, upto)).await?
        {
            return Ok(None);
        }
        let joined = cand.membership == "join";
        // A room left is shown up to the leave, never after it.
        let end = if joined { upto } else { cand.membership_pos };
        self.room_body(session, cand, config, (since, end), fresh, new_config)
            .await
            .map(Some)
    }

    async fn room_body(
        &self,
        session: &Session,
        cand: &Candidate,
        config: &RoomConfig,
        (since, end): (i64, i64),
        fresh: bool,
        new_config: bool,
    ) -> Result<response::Room> {
        let room_id = &cand.room_id;
        let user = &session.user_id;
        let mut room = response::Room::new();
        let vis = self.rooms.visible_to(room_id, user).await.ok();
        let (mut evs, more) = match &vis {
            Some(vis) if config.timeline_limit > 0 => {
                let w = Window {
                    from: end,
                    dir: Direction::Backward,
                    limit: config.timeline_limit,
                    to: Some(since),
                };
                self.rooms
                    .page(room_id, vis, w, &Default::default())
                    .await?
            }
            _ => (vec![], None),
        };
        evs.reverse();
        let senders: HashSet<&str> = evs.iter().map(|e| e.sender.as_str()).collect();
        let state = match &vis {
            // Never joined (a rejected invite): only their own membership, nothing of the room.
            None => own_member(self.rooms.state_at_pos(room_id, end).await?, user),
            Some(_) => {
                self.required_state(
                    session,
                    cand,
                    config,
                    (since, end),
                    &senders,
                    fresh || new_config,
                )
                .await?
            }
        };
        let rules = self.rooms.rules(room_id).await?;
        let viewer = Viewer {
            user_id: user,
            device_id: Some(&session.device_id),
        };
        room.timeline = self
            .rooms
            .format_timeline(
                &evs,
                &rules,
                viewer,
                vis.as_ref().unwrap_or(&Visible(vec![])),
                false,
            )
            .await?
            .iter()
            .map(to_raw)
            .collect();
        room.required_state = state
            .iter()
            .map(|e| to_raw(&client_event(e, &rules, Some(viewer), false)))
            .collect();
        // A pagination token only where there is a timeline to continue from.
        if vis.is_some() && (fresh || !evs.is_empty()) {
            let before = evs.first().and_then(|e| e.pos).map_or(end, |p| p - 1);
            room.prev_batch = Some(token(before));
        }
        room.limited = more.is_some() || (config.timeline_limit == 0 && cand.bump > since);
        if !fresh {
            room.num_live = Some(UInt::new_saturating(evs.len() as u64));
        }
        room.initial = fresh.then_some(true);
        room.is_dm = Some(cand.is_dm);
        room.bump_stamp = Some(UInt::new_saturating(cand.bump.max(0) as u64));
        if cand.membership == "join" {
            self.describe(&mut room, &self.rooms.current_state(room_id).await?, user);
            let unread = self.push.unread_counts(room_id, user, end).await?;
            let mut counts = UnreadNotificationsCount::new();
            counts.notification_count = Some(UInt::new_saturating(unread.notifications));
            counts.highlight_count = Some(UInt::new_saturating(unread.highlights));
            room.unread_notifications = counts;
        }
        Ok(room)
    }

    /// Whether the user moved their own read receipt in the room after `since` (e.g. on another
    /// device): the room is re-sent so its unread counts drop.
    async fn read_since(
        &self,
        session: &Session,
        cand: &Candidate,
        (since, upto): (i64, i64),
    ) -> Result<bool> {
        if cand.membership != "join" {
            return Ok(false);
        }
        let me = session.user_id.as_str();
        Ok(self
            .receipts
            .receipt_event(&cand.room_id, &session.user_id, since, upto)
            .await?
            .is_some_and(|ev| {
                ev["content"]
                    .as_object()
                    .into_iter()
                    .flat_map(|by_event| by_event.values())
                    .filter_map(|by_type| by_type.as_object())
                    .flat_map(|by_type| by_type.values())
                    .any(|users| users.get(me).is_some())
            }))
    }

    /// The state `config` asks for: all of it at `end` on a first send (or a new config),
    /// otherwise what changed since, plus the members of new timeline senders for `$LAZY`.
    async fn required_state(
        &self,
        session: &Session,
        cand: &Candidate,
        config: &RoomConfig,
        (since, end): (i64, i64),
        senders: &HashSet<&str>,
        whole: bool,
    ) -> Result<Vec<StoredEvent>> {
        let room_id = &cand.room_id;
        let me = session.user_id.as_str();
        let wanted = &config.required_state;
        if whole {
            let all = self.rooms.state_at_pos(room_id, end).await?;
            return Ok(required_state::select(all, wanted, me, senders));
        }
        let changed = self.rooms.state_changed(room_id, since, end).await?;
        let mut out = required_state::select(changed, wanted, me, senders);
        if required_state::is_lazy(wanted) && !senders.is_empty() {
            let have: HashSet<_> = out.iter().map(|e| e.event_id.clone()).collect();
            let members: Vec<StoredEvent> = self
                .rooms
                .state_at_pos(room_id, end)
                .await?
                .into_iter()
                .filter(|e| {
                    e.kind == "m.room.member"
                        && e.state_key.as_deref().is_some_and(|k| senders.contains(k))
                        && !have.contains(&e.event_id)
                })
                .collect();
            out.extend(members);
        }
        Ok(out)
    }

    async fn invited_room(&self, session: &Session, cand: &Candidate) -> Result<response::Room> {
        let user = &session.user_id;
        let state = self.rooms.current_state(&cand.room_id).await?;
        let stripped = crate::service::sync::invite_state(&self.rooms, &cand.room_id, user).await?;
        let mut room = response::Room::new();
        room.invite_state = Some(stripped.iter().map(to_raw).collect());
        room.initial = Some(true);
        room.is_dm = Some(cand.is_dm);
        room.bump_stamp = Some(UInt::new_saturating(cand.membership_pos.max(0) as u64));
        // Before joining, the invitee sees the room's description and the inviter, no members.
        let inviter = state
            .get(&StateEventType::RoomMember, user.as_str())
            .map(|me| me.sender.clone());
        let stripped_name = stripped
            .iter()
            .find(|e| e["type"] == "m.room.name")
            .and_then(|e| e["content"]["name"].as_str())
            .filter(|n| !n.is_empty())
            .map(str::to_owned);
        room.name = explicit_name(&state).or(stripped_name).or_else(|| {
            inviter.map(|i| {
                member_content(&state, i.as_str())
                    .and_then(|c| c["displayname"].as_str().map(str::to_owned))
                    .unwrap_or_else(|| i.to_string())
            })
        });
        room.avatar = avatar(&state);
        Ok(room)
    }

    /// Name (explicit, else computed from the heroes), avatar, heroes and member counts.
    fn describe(&self, room: &mut response::Room, state: &RoomState, user: &UserId) {
        let mut members: Vec<(&String, Value)> = state
            .state
            .iter()
            .filter(|((k, _), _)| *k == StateEventType::RoomMember)
            .filter_map(|((_, key), pdu)| {
                Some((key, serde_json::from_str(pdu.content.get()).ok()?))
            })
            .collect();
        members.sort_by(|a, b| a.0.cmp(b.0));
        let count = |m: &str| members.iter().filter(|(_, c)| c["membership"] == m).count();
        let (joined, invited) = (count("join"), count("invite"));
        room.joined_count = Some(UInt::new_saturating(joined as u64));
        room.invited_count = Some(UInt::new_saturating(invited as u64));
        room.avatar = avatar(state);
        let explicit = explicit_name(state);
        if explicit.is_some() {
            room.name = explicit;
            return;
        }
        let heroes: Vec<Hero> = members
            .iter()
            .filter(|(k, c)| {
                k.as_str() != user.as_str()
                    && matches!(c["membership"].as_str(), Some("join" | "invite"))
            })
            .take(MAX_HEROES)
            .filter_map(|(k, c)| {
                let mut h = Hero::new(k.parse().ok()?);
                h.name = c["displayname"].as_str().map(str::to_owned);
                h.avatar = c["avatar_url"].as_str().map(Into::into);
                Some(h)
            })
            .collect();
        let others = (joined + invited).saturating_sub(1);
        room.name = Some(name_from_heroes(&heroes, others));
        room.heroes = Some(heroes);
    }
}

/// `m.room.name`, else the canonical alias: the names a room gives itself.
fn explicit_name(state: &RoomState) -> Option<String> {
    let non_empty = |v: Option<Value>, field: &str| {
        v.and_then(|c| c[field].as_str().map(str::to_owned))
            .filter(|s| !s.is_empty())
    };
    non_empty(state.content_json(&StateEventType::RoomName, ""), "name").or_else(|| {
        non_empty(
            state.content_json(&StateEventType::RoomCanonicalAlias, ""),
            "alias",
        )
    })
}

/// The spec's naming of an unnamed room from its heroes ("Alice and Bob", "Alice, Bob and 3
/// others"); `others` counts every other joined or invited member.
pub(super) fn name_from_heroes(heroes: &[Hero], others: usize) -> String {
    let names: Vec<String> = heroes
        .iter()
        .map(|h| h.name.clone().unwrap_or_else(|| h.user_id.to_string()))
        .collect();
    match names.as_slice() {
        [] => "Empty Room".to_owned(),
        [one] if others <= 1 => one.clone(),
        _ if others > names.len() => {
            format!("{} and {} others", names.join(", "), others - names.len())
        }
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

fn avatar(state: &RoomState) -> JsOption<ruma::OwnedMxcUri> {
    match state.content_json(&StateEventType::RoomAvatar, "") {
        None => JsOption::Undefined,
        Some(c) => c["url"]
            .as_str()
            .filter(|u| !u.is_empty())
            .map_or(JsOption::Null, |u| JsOption::Some(u.into())),
    }
}

fn member_content(state: &RoomState, user: &str) -> Option<Value> {
    state.content_json(&StateEventType::RoomMember, user)
}

fn own_member(state: Vec<StoredEvent>, user: &UserId) -> Vec<StoredEvent> {
    state
        .into_iter()
        .filter(|e| e.kind == "m.room.member" && e.state_key.as_deref() == Some(user.as_str()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hero(name: &str) -> Hero {
        let mut h = Hero::new(format!("@{}:x", name.to_lowercase()).try_into().unwrap());
        h.name = Some(name.into());
        h
    }

    #[test]
    fn names_from_heroes() {
        assert_eq!(name_from_heroes(&[], 0), "Empty Room");
        assert_eq!(name_from_heroes(&[hero("Alice")], 1), "Alice");
        assert_eq!(
            name_from_heroes(&[hero("Alice"), hero("Bob")], 2),
            "Alice and Bob"
        );
        assert_eq!(
            name_from_heroes(&[hero("Alice"), hero("Bob")], 5),
            "Alice, Bob and 3 others"
        );
        let unnamed = Hero::new("@carol:x".try_into().unwrap());
        assert_eq!(name_from_heroes(&[unnamed], 1), "@carol:x");
    }
}
