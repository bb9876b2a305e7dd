//! The `rooms.join` section for one room: timeline (limited + prev_batch), state, ephemeral
//! (typing, receipts), unread counts and the room summary.

use std::collections::HashSet;

use ruma::UInt;
use ruma::api::client::sync::sync_events::UnreadNotificationsCount;
use ruma::api::client::sync::sync_events::v3::{
    Ephemeral, JoinedRoom, RoomSummary, State, StateEvents, Timeline,
};
use ruma::events::StateEventType;
use serde_json::{Value, json};

use super::{SyncRequest, SyncService};
use crate::error::Result;
use crate::service::rooms::format::{Viewer, client_event, to_raw};
use crate::service::rooms::read::Window;
use crate::service::users::Session;
use crate::store::rooms::{Direction, MembershipRow, StoredEvent};

/// Default timeline length when the filter sets none (Synapse's default too).
const DEFAULT_TIMELINE_LIMIT: usize = 10;

impl SyncService {
    pub(super) async fn joined_room(
        &self,
        session: &Session,
        req: &SyncRequest,
        m: &MembershipRow,
        since: i64,
        upto: i64,
        account_data: Vec<ruma::serde::Raw<ruma::events::AnyRoomAccountDataEvent>>,
    ) -> Result<Option<JoinedRoom>> {
        let room_id = &m.room_id;
        let user = &session.user_id;
        // A room joined after `since` is sent whole, as in an initial sync.
        let fresh = req.since.is_none() || req.full_state || m.pos > since;
        let lower = if fresh { -1 } else { since };
        let filter = &req.filter.room;
        let limit = filter
            .timeline
            .limit
            .map_or(DEFAULT_TIMELINE_LIMIT, |l| u64::from(l) as usize)
            .clamp(1, 500);

        let vis = self.rooms.visible_to(room_id, user).await?;
        let (mut evs, more) = self
            .rooms
            .page(
                room_id,
                &vis,
                Window {
                    from: upto,
                    dir: Direction::Backward,
                    limit,
                    to: Some(lower),
                },
                &filter.timeline,
            )
            .await?;
        evs.reverse();
        let limited = more.is_some();
        let first_pos = evs.first().and_then(|e| e.pos);
        let before_timeline = first_pos.map_or(upto, |p| p - 1);

        let state_evs: Vec<StoredEvent> = if req.use_state_after {
            if fresh {
                self.rooms.state_at_pos(room_id, upto).await?
            } else {
                self.rooms.state_changed(room_id, since, upto).await?
            }
        } else if fresh {
            self.rooms.state_at_pos(room_id, before_timeline).await?
        } else if limited {
            self.rooms
                .state_changed(room_id, since, before_timeline)
                .await?
        } else {
            vec![]
        };
        let state_evs = lazy_load(
            state_evs,
            &evs,
            user.as_str(),
            !filter.state.lazy_load_options.is_disabled(),
        );

        let viewer = Viewer {
            user_id: user,
            device_id: Some(&session.device_id),
        };
        let rules = self.rooms.rules(room_id).await?;

        let mut ephemeral: Vec<Value> = Vec::new();
        if let Some(typing) = self.typing.typing_since(room_id, since) {
            ephemeral.push(json!({ "type": "m.typing", "content": { "user_ids": typing } }));
        }
        if let Some(receipts) = self
            .receipts
            .receipt_event(room_id, user, if fresh { 0 } else { since }, upto)
            .await?
        {
            ephemeral.push(receipts);
        }

        if !fresh
            && evs.is_empty()
            && state_evs.is_empty()
            && ephemeral.is_empty()
            && account_data.is_empty()
        {
            return Ok(None);
        }

        let mut room = JoinedRoom::new();
        let mut timeline = Timeline::new();
        timeline.limited = limited;
        timeline.prev_batch = Some(format!("t{before_timeline}"));
        timeline.events = self
            .rooms
            .format_timeline(&evs, &rules, viewer, &vis, false)
            .await?
            .iter()
            .map(to_raw)
            .collect();
        room.timeline = timeline;
        let mut state = StateEvents::new();
        state.events = state_evs
            .iter()
            .map(|e| to_raw(&client_event(e, &rules, Some(viewer), false)))
            .collect();
        room.state = if req.use_state_after {
            State::After(state)
        } else {
            State::Before(state)
        };
        let mut eph = Ephemeral::new();
        eph.events = ephemeral.iter().map(to_raw).collect();
        room.ephemeral = eph;
        room.account_data.events = account_data;

        // Push-rule based: rows of this user's notifying events after their read boundary.
        let unread = self.push.unread_counts(room_id, user, upto).await?;
        let mut counts = UnreadNotificationsCount::new();
        counts.notification_count = Some(UInt::new_saturating(unread.notifications));
        counts.highlight_count = Some(UInt::new_saturating(unread.highlights));
        room.unread_notifications = counts;
        room.summary = self.summary(room_id, user).await?;
        Ok(Some(room))
    }

    /// Member counts and "heroes" (other members) that clients use to name unnamed rooms.
    async fn summary(&self, room_id: &ruma::RoomId, user: &ruma::UserId) -> Result<RoomSummary> {
        let state = self.rooms.current_state(room_id).await?;
        let (mut joined, mut invited, mut heroes) = (0u64, 0u64, Vec::new());
        let mut members: Vec<_> = state
            .state
            .iter()
            .filter(|((k, _), _)| *k == StateEventType::RoomMember)
            .collect();
        members.sort_by(|a, b| a.0.1.cmp(&b.0.1));
        for ((_, key), pdu) in members {
            let c: Value = serde_json::from_str(pdu.content.get()).unwrap_or_default();
            match c["membership"].as_str() {
                Some("join") => joined += 1,
                Some("invite") => invited += 1,
                _ => continue,
            }
            if key != user.as_str()
                && heroes.len() < 5
                && let Ok(u) = key.parse()
            {
                heroes.push(u);
            }
        }
        let mut s = RoomSummary::new();
        s.joined_member_count = Some(UInt::new_saturating(joined));
        s.invited_member_count = Some(UInt::new_saturating(invited));
        s.heroes = heroes;
        Ok(s)
    }
}

/// With lazy-loading, only the member events of timeline senders (and the user) are sent.
pub(super) fn lazy_load(
    state: Vec<StoredEvent>,
    timeline: &[StoredEvent],
    user: &str,
    enabled: bool,
) -> Vec<StoredEvent> {
    if !enabled {
        return state;
    }
    let senders: HashSet<&str> = timeline
        .iter()
        .map(|e| e.sender.as_str())
        .chain([user])
        .collect();
    state
        .into_iter()
        .filter(|e| {
            e.kind != "m.room.member" || e.state_key.as_deref().is_some_and(|k| senders.contains(k))
        })
        .collect()
}
