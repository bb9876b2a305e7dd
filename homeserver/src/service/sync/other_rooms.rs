//! The `rooms.invite` and `rooms.knock` (stripped state) and `rooms.leave` sections.

use ruma::api::client::sync::sync_events::v3::{
    InviteState, InvitedRoom, KnockState, KnockedRoom, LeftRoom, State, StateEvents, Timeline,
};
use ruma::events::StateEventType;
use ruma::{RoomId, UserId};
use serde_json::{Value, json};

use super::{SyncRequest, SyncService};
use crate::error::Result;
use crate::service::room_state::STRIPPED;
use crate::service::rooms::format::{Viewer, client_event, to_raw};
use crate::service::rooms::read::Window;
use crate::service::rooms::visibility::Visible;
use crate::service::users::Session;
use crate::store::rooms::{Direction, MembershipRow};

impl SyncService {
    pub(super) async fn invited_room(
        &self,
        room_id: &RoomId,
        user: &UserId,
    ) -> Result<InvitedRoom> {
        let events = invite_state(&self.rooms, room_id, user).await?;
        let mut invite_state = InviteState::new();
        invite_state.events = events.iter().map(to_raw).collect();
        let mut room = InvitedRoom::new();
        room.invite_state = invite_state;
        Ok(room)
    }

    /// A room the user knocked on: the same stripped state an invitee sees (spec).
    pub(super) async fn knocked_room(
        &self,
        room_id: &RoomId,
        user: &UserId,
    ) -> Result<KnockedRoom> {
        let state = self.rooms.current_state(room_id).await?;
        let mut knock_state = KnockState::new();
        knock_state.events = stripped_state(&state, user).iter().map(to_raw).collect();
        let mut room = KnockedRoom::new();
        room.knock_state = knock_state;
        Ok(room)
    }

    /// A room the user left: the timeline up to (and including) their leave event.
    pub(super) async fn left_room(
        &self,
        session: &Session,
        req: &SyncRequest,
        m: &MembershipRow,
    ) -> Result<LeftRoom> {
        let room_id = &m.room_id;
        let user = &session.user_id;
        let limit = req
            .filter
            .room
            .timeline
            .limit
            .map_or(10, |l| u64::from(l) as usize)
            .clamp(1, 100);
        let lower = req.since.filter(|_| !req.full_state).unwrap_or(-1);
        // Nothing visible: no timeline, and no edits to bundle either.
        let vis = self
            .rooms
            .visible_to(room_id, user)
            .await
            .unwrap_or(Visible(vec![]));
        let (mut evs, more) = if vis.is_empty() {
            (vec![], None)
        } else {
            self.rooms
                .page(
                    room_id,
                    &vis,
                    Window {
                        from: m.pos,
                        dir: Direction::Backward,
                        limit,
                        to: Some(lower),
                    },
                    &req.filter.room.timeline,
                )
                .await?
        };
        evs.reverse();
        let before = evs.first().and_then(|e| e.pos).map_or(m.pos, |p| p - 1);
        let rules = self.rooms.rules(room_id).await?;
        let viewer = Viewer {
            user_id: user,
            device_id: Some(&session.device_id),
        };
        let state_evs = if req.since.is_none() || req.full_state || more.is_some() {
            let all = self.rooms.state_at_pos(room_id, before).await?;
            super::joined::lazy_load(
                all,
                &evs,
                user.as_str(),
                !req.filter.room.state.lazy_load_options.is_disabled(),
            )
        } else {
            vec![]
        };
        let mut timeline = Timeline::new();
        timeline.limited = more.is_some();
        timeline.prev_batch = Some(format!("t{before}"));
        timeline.events = self
            .rooms
            .format_timeline(&evs, &rules, viewer, &vis, false)
            .await?
            .iter()
            .map(to_raw)
            .collect();
        let mut state = StateEvents::new();
        state.events = state_evs
            .iter()
            .map(|e| to_raw(&client_event(e, &rules, Some(viewer), false)))
            .collect();
        let mut room = LeftRoom::new();
        room.timeline = timeline;
        room.state = State::Before(state);
        Ok(room)
    }
}

/// What an invitee may see of a room before joining (spec: stripped state): the room's
/// description, the inviter's and the invitee's member events. Shared with sliding sync.
/// What an invitee sees of a room: stripped state from our copy of the room, or, for an
/// invite from another server to a room we are not in, the state that server sent with it.
pub(crate) async fn invite_state(
    rooms: &crate::service::rooms::RoomService,
    room_id: &RoomId,
    user: &UserId,
) -> Result<Vec<Value>> {
    let state = rooms.current_state(room_id).await?;
    let mut events = stripped_state(&state, user);
    if let Some(remote) = rooms.remote_invite_state(room_id, user).await? {
        // Our copy holds only the invite itself: the inviting server's view comes first.
        let mine: Vec<Value> = events
            .into_iter()
            .filter(|e| e["type"] == "m.room.member")
            .collect();
        events = remote
            .into_iter()
            .filter(|e| !(e["type"] == "m.room.member" && e["state_key"] == user.as_str()))
            .collect();
        events.extend(mine);
    }
    Ok(events)
}

pub(crate) fn stripped_state(
    state: &crate::service::rooms::state::RoomState,
    user: &UserId,
) -> Vec<Value> {
    let mut events: Vec<Value> = Vec::new();
    let strip = |p: &crate::service::rooms::pdu::Pdu| {
        json!({
            "type": p.kind.to_string(),
            "state_key": p.state_key.clone().unwrap_or_default(),
            "sender": p.sender,
            "content": serde_json::from_str::<Value>(p.content.get()).unwrap_or_default(),
        })
    };
    for kind in STRIPPED {
        if let Some(p) = state.get(kind, "") {
            events.push(strip(p));
        }
    }
    if let Some(me) = state.get(&StateEventType::RoomMember, user.as_str()) {
        // A knock is the user's own event: no second member event for its "inviter".
        if me.sender != user
            && let Some(inviter) = state.get(&StateEventType::RoomMember, me.sender.as_str())
        {
            events.push(strip(inviter));
        }
        events.push(strip(me));
    }
    events
}
