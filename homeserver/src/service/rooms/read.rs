//! Reading rooms: single events, /messages pagination, /context, state and members. Every read
//! first computes what the viewer may see (history visibility), so no path can leak history.

use ruma::api::client::filter::RoomEventFilter;
use ruma::events::StateEventType;
use ruma::{EventId, RoomId, UserId};
use serde_json::Value;

use super::RoomService;
use super::format::{Viewer, client_event};
use super::state::rules_for;
use super::visibility::Visible;
use crate::error::{Error, Result};
use crate::service::blocking;
use crate::service::filter::event_matches;
use crate::store::rooms::{Direction, StoredEvent};

pub struct Messages {
    pub chunk: Vec<Value>,
    pub start: String,
    pub end: Option<String>,
    pub state: Vec<Value>,
}

/// Room facts for summaries (joined_members, /sync).
pub struct RoomSummary {
    pub joined: Vec<(String, Value)>,
}

/// Where a page starts, which way it goes, how many events it takes and where it must stop.
#[derive(Debug, Clone, Copy)]
pub struct Window {
    /// Backward: events at or before `from`; forward: events after it.
    pub from: i64,
    pub dir: Direction,
    pub limit: usize,
    /// Stop before crossing this position (backward: `pos <= to`; forward: `pos > to`).
    pub to: Option<i64>,
}

pub fn token(pos: i64) -> String {
    format!("t{pos}")
}

impl RoomService {
    /// The highest committed stream position: reads never look past it.
    pub fn current_pos(&self) -> i64 {
        self.store.current_pos()
    }

    pub async fn get_event(
        &self,
        room_id: &RoomId,
        event_id: &EventId,
        viewer: Viewer<'_>,
    ) -> Result<Value> {
        let vis = self.visible_to(room_id, viewer.user_id).await?;
        let store = self.store.clone();
        let id = event_id.to_owned();
        let ev = blocking(move || Ok(store.get_event(id.as_str())?)).await?;
        let ev = ev
            .filter(|e| e.room_id == room_id && e.pos.is_some_and(|p| vis.contains(p)))
            .ok_or_else(|| Error::not_found("Event not found"))?;
        let rules = rules_for(&self.room_version(room_id).await?)?;
        let mut out = self
            .format_timeline(std::slice::from_ref(&ev), &rules, viewer, &vis, true)
            .await?;
        Ok(out.pop().expect("one event in, one out"))
    }

    /// Pages through visible, filter-matching events; also returns the cursor to continue from,
    /// `None` once history in that direction is exhausted.
    pub(crate) async fn page(
        &self,
        room_id: &RoomId,
        vis: &Visible,
        w: Window,
        filter: &RoomEventFilter,
    ) -> Result<(Vec<StoredEvent>, Option<i64>)> {
        let Window {
            from,
            dir,
            limit,
            to,
        } = w;
        let upto = vis.upper().unwrap_or(0).min(self.current_pos());
        let lowest = vis.0.iter().map(|(a, _)| *a).min().unwrap_or(0);
        let mut out = Vec::new();
        let mut cursor = from;
        // Where to continue once `limit` events are taken; reported only if one more matching
        // event exists, so a page that happens to end exactly at the end says "no more".
        let mut resume = None;
        loop {
            let batch = (limit * 2).clamp(20, 500);
            let store = self.store.clone();
            let r = room_id.to_owned();
            let evs =
                blocking(move || Ok(store.timeline(r.as_str(), cursor, dir, batch, upto)?)).await?;
            let exhausted = evs.len() < batch;
            for ev in evs {
                let pos = ev.pos.unwrap_or(0);
                let past_to = match (dir, to) {
                    (Direction::Backward, Some(t)) => pos <= t,
                    (Direction::Forward, Some(t)) => pos > t,
                    _ => false,
                };
                if past_to || (dir == Direction::Backward && pos < lowest) {
                    return Ok((out, None));
                }
                cursor = match dir {
                    Direction::Backward => pos - 1,
                    Direction::Forward => pos,
                };
                if vis.contains(pos) && event_matches(filter, &ev) {
                    if out.len() >= limit {
                        return Ok((out, resume));
                    }
                    out.push(ev);
                    if out.len() == limit {
                        resume = Some(cursor);
                    }
                }
            }
            if exhausted {
                return Ok((out, None));
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    pub async fn messages(
        &self,
        room_id: &RoomId,
        viewer: Viewer<'_>,
        from: Option<i64>,
        to: Option<i64>,
        dir: Direction,
        limit: usize,
        filter: &RoomEventFilter,
    ) -> Result<Messages> {
        let vis = self.visible_to(room_id, viewer.user_id).await?;
        let start = from.unwrap_or(match dir {
            Direction::Backward => self.current_pos(),
            Direction::Forward => 0,
        });
        let window = Window {
            from: start,
            dir,
            limit: limit.clamp(1, 1000),
            to,
        };
        let (mut evs, mut next) = self.page(room_id, &vis, window, filter).await?;
        // Reached the oldest event we hold of a room joined over federation: fetch older
        // history from a server in the room, then read again.
        if dir == Direction::Backward
            && next.is_none()
            && to.is_none()
            && self
                .backfill(room_id, limit.clamp(1, 100))
                .await
                .unwrap_or(0)
                > 0
        {
            (evs, next) = self.page(room_id, &vis, window, filter).await?;
        }
        let rules = rules_for(&self.room_version(room_id).await?)?;
        let state = if !filter.lazy_load_options.is_disabled() {
            self.member_events_for(room_id, &evs, &rules, viewer)
                .await?
        } else {
            vec![]
        };
        Ok(Messages {
            chunk: self
                .format_timeline(&evs, &rules, viewer, &vis, true)
                .await?,
            start: token(start),
            end: next.map(token),
            state,
        })
    }

    /// The member events of the senders of `evs` (lazy-loading members), each as it stood at
    /// that sender's newest event in `evs`: never a later change (the viewer may have left).
    pub(crate) async fn member_events_for(
        &self,
        room_id: &RoomId,
        evs: &[StoredEvent],
        rules: &ruma::room_version_rules::RoomVersionRules,
        viewer: Viewer<'_>,
    ) -> Result<Vec<Value>> {
        let mut at: std::collections::HashMap<String, i64> = Default::default();
        for e in evs {
            let pos = e.pos.unwrap_or(i64::MIN);
            let p = at.entry(e.sender.to_string()).or_insert(pos);
            *p = (*p).max(pos);
        }
        if at.is_empty() {
            return Ok(vec![]);
        }
        let store = self.store.clone();
        let r = room_id.to_owned();
        let wants: Vec<(String, i64)> = at.into_iter().collect();
        let events = blocking(move || Ok(store.members_at(r.as_str(), &wants)?)).await?;
        Ok(events
            .iter()
            .map(|e| client_event(e, rules, Some(viewer), true))
            .collect())
    }

    /// /context: the event, up to `limit` events around it, and the state at it.
    pub async fn context(
        &self,
        room_id: &RoomId,
        event_id: &EventId,
        viewer: Viewer<'_>,
        limit: usize,
        filter: &RoomEventFilter,
    ) -> Result<(Value, Messages, Messages)> {
        let vis = self.visible_to(room_id, viewer.user_id).await?;
        let store = self.store.clone();
        let id = event_id.to_owned();
        let ev = blocking(move || Ok(store.get_event(id.as_str())?)).await?;
        let ev = ev
            .filter(|e| e.room_id == room_id && e.pos.is_some_and(|p| vis.contains(p)))
            .ok_or_else(|| Error::not_found("Event not found"))?;
        let pos = ev.pos.expect("filtered above");
        let rules = rules_for(&self.room_version(room_id).await?)?;
        let before_n = limit / 2;
        let after_n = limit - before_n;
        let (before, b_next) = if before_n > 0 {
            self.page(
                room_id,
                &vis,
                Window {
                    from: pos - 1,
                    dir: Direction::Backward,
                    limit: before_n,
                    to: None,
                },
                filter,
            )
            .await?
        } else {
            (vec![], Some(pos - 1))
        };
        let (after, a_next) = if after_n > 0 {
            self.page(
                room_id,
                &vis,
                Window {
                    from: pos,
                    dir: Direction::Forward,
                    limit: after_n,
                    to: None,
                },
                filter,
            )
            .await?
        } else {
            (vec![], Some(pos))
        };
        let store = self.store.clone();
        let r = room_id.to_owned();
        let state = blocking(move || Ok(store.state_at(r.as_str(), pos)?)).await?;
        let fmt = |v: &[StoredEvent]| {
            v.iter()
                .map(|e| client_event(e, &rules, Some(viewer), true))
                .collect::<Vec<_>>()
        };
        let event = self
            .format_timeline(std::slice::from_ref(&ev), &rules, viewer, &vis, true)
            .await?
            .remove(0);
        let before = Messages {
            chunk: self
                .format_timeline(&before, &rules, viewer, &vis, true)
                .await?,
            start: token(b_next.unwrap_or(0)),
            end: None,
            state: fmt(&state),
        };
        let after = Messages {
            chunk: self
                .format_timeline(&after, &rules, viewer, &vis, true)
                .await?,
            start: token(a_next.unwrap_or(self.current_pos())),
            end: None,
            state: vec![],
        };
        Ok((event, before, after))
    }

    /// State visible to the viewer: current if joined, as of their leaving otherwise.
    pub async fn visible_state(&self, room_id: &RoomId, viewer: Viewer<'_>) -> Result<Vec<Value>> {
        let (evs, rules) = self.visible_state_events(room_id, viewer.user_id).await?;
        Ok(evs
            .iter()
            .map(|e| client_event(e, &rules, Some(viewer), true))
            .collect())
    }

    pub(crate) async fn visible_state_events(
        &self,
        room_id: &RoomId,
        user: &UserId,
    ) -> Result<(Vec<StoredEvent>, ruma::room_version_rules::RoomVersionRules)> {
        let vis = self.visible_to(room_id, user).await?;
        let at = vis.upper().unwrap_or(0);
        let store = self.store.clone();
        let r = room_id.to_owned();
        let evs = blocking(move || Ok(store.state_at(r.as_str(), at)?)).await?;
        let rules = rules_for(&self.room_version(room_id).await?)?;
        Ok((evs, rules))
    }

    /// One state event; `M_NOT_FOUND` if the room has none of that type and key.
    pub async fn state_event(
        &self,
        room_id: &RoomId,
        user: &UserId,
        kind: &str,
        key: &str,
    ) -> Result<Value> {
        let (evs, rules) = self.visible_state_events(room_id, user).await?;
        let ev = evs
            .iter()
            .find(|e| e.kind == kind && e.state_key.as_deref() == Some(key))
            .ok_or_else(|| Error::not_found(format!("No {kind} state event with key '{key}'")))?;
        Ok(client_event(ev, &rules, None, true))
    }

    /// Member events, optionally at a pagination token and filtered by membership.
    pub async fn member_events(
        &self,
        room_id: &RoomId,
        viewer: Viewer<'_>,
        at: Option<i64>,
        membership: Option<&str>,
        not_membership: Option<&str>,
    ) -> Result<Vec<Value>> {
        let vis = self.visible_to(room_id, viewer.user_id).await?;
        let upper = vis.upper().unwrap_or(0);
        let at = at.map_or(upper, |a| a.min(upper));
        let store = self.store.clone();
        let r = room_id.to_owned();
        let evs = blocking(move || Ok(store.state_at(r.as_str(), at)?)).await?;
        let rules = rules_for(&self.room_version(room_id).await?)?;
        Ok(evs
            .iter()
            .filter(|e| e.kind == "m.room.member")
            .map(|e| client_event(e, &rules, Some(viewer), true))
            .filter(|v| {
                let m = v["content"]["membership"].as_str().unwrap_or("");
                membership.is_none_or(|want| m == want) && not_membership.is_none_or(|no| m != no)
            })
            .collect())
    }

    /// Joined members with their display names and avatars.
    pub async fn joined_members(&self, room_id: &RoomId, user: &UserId) -> Result<RoomSummary> {
        self.require_joined(room_id, user).await?;
        let state = self.current_state(room_id).await?;
        let joined = state
            .state
            .iter()
            .filter(|((k, _), _)| *k == StateEventType::RoomMember)
            .filter_map(|((_, key), pdu)| {
                let c: Value = serde_json::from_str(pdu.content.get()).ok()?;
                (c["membership"] == "join").then(|| (key.clone(), c))
            })
            .collect();
        Ok(RoomSummary { joined })
    }
}

impl RoomService {
    /// State events at a position, from the store.
    pub(crate) async fn state_at_pos(
        &self,
        room_id: &RoomId,
        pos: i64,
    ) -> Result<Vec<StoredEvent>> {
        let store = self.store.clone();
        let r = room_id.to_owned();
        blocking(move || Ok(store.state_at(r.as_str(), pos)?)).await
    }

    /// State events whose key changed in `(after, upto]`, as of `upto`.
    pub(crate) async fn state_changed(
        &self,
        room_id: &RoomId,
        after: i64,
        upto: i64,
    ) -> Result<Vec<StoredEvent>> {
        let store = self.store.clone();
        let r = room_id.to_owned();
        blocking(move || Ok(store.state_changed_between(r.as_str(), after, upto)?)).await
    }

    /// The latest event position of each room (sliding sync's recency order), in one call.
    pub(crate) async fn latest_positions(
        &self,
        rooms: Vec<ruma::OwnedRoomId>,
    ) -> Result<std::collections::HashMap<ruma::OwnedRoomId, i64>> {
        let store = self.store.clone();
        blocking(move || {
            let mut out = std::collections::HashMap::new();
            for r in rooms {
                if let Some(p) = store.room_max_pos(r.as_str())? {
                    out.insert(r, p);
                }
            }
            Ok(out)
        })
        .await
    }

    pub async fn rules(
        &self,
        room_id: &RoomId,
    ) -> Result<ruma::room_version_rules::RoomVersionRules> {
        rules_for(&self.room_version(room_id).await?)
    }
}

impl RoomService {
    /// Formats timeline events for a client, bundling each one's latest edit
    /// (`unsigned.m.relations.m.replace`, spec v1.7+) so clients show edited text. Only an edit
    /// the viewer may see itself is bundled (`vis`): one sent after they left stays hidden.
    pub(crate) async fn format_timeline(
        &self,
        evs: &[StoredEvent],
        rules: &ruma::room_version_rules::RoomVersionRules,
        viewer: Viewer<'_>,
        vis: &Visible,
        with_room_id: bool,
    ) -> Result<Vec<Value>> {
        let ids: Vec<_> = evs
            .iter()
            .filter(|e| e.state_key.is_none() && e.redacted_because.is_none())
            .map(|e| e.event_id.clone())
            .collect();
        let upto = vis.upper().unwrap_or(i64::MIN).min(self.current_pos());
        let edits: std::collections::HashMap<_, _> = if ids.is_empty() || vis.is_empty() {
            Default::default()
        } else {
            let store = self.store.clone();
            blocking(move || Ok(store.latest_edits(&ids, upto)?))
                .await?
                .into_iter()
                // An edit in a gap of what the viewer may see is dropped, not replaced by an
                // older one: the original shows, and nothing hidden does.
                .filter(|(_, edit)| edit.pos.is_some_and(|p| vis.contains(p)))
                .collect()
        };
        Ok(evs
            .iter()
            .map(|e| {
                let mut v = client_event(e, rules, Some(viewer), with_room_id);
                if let Some(edit) = edits.get(&e.event_id) {
                    v["unsigned"]["m.relations"]["m.replace"] =
                        client_event(edit, rules, Some(viewer), true);
                }
                v
            })
            .collect())
    }
}
