//! `POST /search` (room events): full-text search over unencrypted message bodies, room names
//! and topics in the searcher's rooms (the SQLite FTS5 index kept by triggers on `events`).
//!
//! What a hit may be is decided here, before the index is asked: the rooms the user has a
//! membership in (forgotten ones never), each narrowed to the positions history visibility
//! lets them read (`rooms/visibility.rs`, per event), and a patient-context room only while the
//! user is joined to it (docs/GOVERNANCE.md). Encrypted rooms carry `m.room.encrypted`, which
//! is never indexed: nothing of their messages can be found. Redacted and purged events leave
//! the index in the transaction that redacts or deletes them.

mod term;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use ruma::api::client::filter::{RoomEventFilter, UrlFilter};
use ruma::api::client::search::search_events::v3::{
    Criteria, EventContextResult, GroupingKey, OrderBy, ResultGroup, ResultGroupMap,
    ResultRoomEvents, SearchKeys, SearchResult, UserProfile,
};
use ruma::{OwnedRoomId, OwnedUserId, UInt};

use crate::error::{Error, Result};
use crate::service::blocking;
use crate::service::filter::room_matches;
use crate::service::rooms::RoomService;
use crate::service::rooms::format::{Viewer, to_raw};
use crate::service::rooms::read::{Window, token};
use crate::service::rooms::visibility::Visible;
use crate::store::rooms::{Direction, StoredEvent};
use crate::store::search::{SEARCH_KEYS, SearchOrder, SearchQuery, SearchStore};

/// Results per page when the filter names no `limit`, and the most it may ask for.
const DEFAULT_LIMIT: usize = 10;
const MAX_LIMIT: usize = 100;
/// Context events asked for on each side of a result, at most.
const MAX_CONTEXT: usize = 50;

/// The event type each search key is found in.
const KEY_TYPES: [(&str, &str); 3] = [
    ("content.body", "m.room.message"),
    ("content.name", "m.room.name"),
    ("content.topic", "m.room.topic"),
];

pub struct SearchService {
    rooms: Arc<RoomService>,
    store: Arc<dyn SearchStore>,
}

/// One room the searcher may find things in.
struct Scope {
    vis: Visible,
}

impl SearchService {
    pub fn new(rooms: Arc<RoomService>, store: Arc<dyn SearchStore>) -> Self {
        Self { rooms, store }
    }

    pub async fn room_events(
        &self,
        viewer: Viewer<'_>,
        c: &Criteria,
        next_batch: Option<&str>,
    ) -> Result<ResultRoomEvents> {
        let term = term::parse(&c.search_term)?;
        let order = match c.order_by {
            None | Some(OrderBy::Rank) => Order::Rank,
            Some(OrderBy::Recent) => Order::Recent,
            Some(ref o) => {
                return Err(Error::invalid_param(format!(
                    "Unknown order_by '{}': use 'rank' or 'recent'",
                    o.as_str()
                )));
            }
        };
        let cursor = order.parse_batch(next_batch)?;
        check_groupings(&c.groupings.group_by)?;
        let keys = keys(c.keys.as_deref(), &c.filter)?;
        let limit = c
            .filter
            .limit
            .map_or(DEFAULT_LIMIT, |l| u64::from(l) as usize)
            .clamp(1, MAX_LIMIT);
        let scopes = self.scopes(viewer.user_id, &c.filter).await?;
        let mut out = ResultRoomEvents::new();
        out.highlights = term.highlights;
        if keys.is_empty() || scopes.is_empty() {
            out.count = Some(UInt::MIN);
            return Ok(out);
        }
        let q = SearchQuery {
            fts: term.fts,
            keys,
            ranges: scopes
                .iter()
                .flat_map(|(r, s)| s.vis.0.iter().map(|(a, b)| (r.to_string(), *a, *b)))
                .collect(),
            senders: c
                .filter
                .senders
                .as_ref()
                .map(|v| v.iter().map(|u| u.to_string()).collect()),
            not_senders: c.filter.not_senders.iter().map(|u| u.to_string()).collect(),
            with_url: c
                .filter
                .url_filter
                .as_ref()
                .map(|f| matches!(f, UrlFilter::EventsWithUrl)),
            order: cursor,
            // One more than the page: `next_batch` only when there is more.
            limit: limit + 1,
        };
        let store = self.store.clone();
        let (mut hits, count) = blocking(move || Ok(store.search(&q)?)).await?;
        out.count = Some(UInt::new_saturating(count));
        if hits.len() > limit {
            hits.truncate(limit);
            out.next_batch = order.next_batch(cursor, hits.last().map(|h| &h.event), limit);
        }
        let mut rules = HashMap::new();
        for hit in &hits {
            let room = &hit.event.room_id;
            if !rules.contains_key(room) {
                rules.insert(room.clone(), self.rooms.rules(room).await?);
            }
            let vis = &scopes[room].vis;
            let mut result = SearchResult::new();
            let ev = self
                .rooms
                .format_timeline(
                    std::slice::from_ref(&hit.event),
                    &rules[room],
                    viewer,
                    vis,
                    true,
                )
                .await?
                .remove(0);
            result.result = Some(to_raw(&ev));
            result.rank = Some(hit.rank);
            result.context = self
                .context(viewer, &hit.event, vis, c, &rules[room])
                .await?;
            out.results.push(result);
        }
        out.groups = groups(&c.groupings.group_by, &hits, out.next_batch.as_deref());
        if c.include_state == Some(true) {
            for room in rules.keys() {
                let state = self.rooms.visible_state(room, viewer).await?;
                out.state
                    .insert(room.clone(), state.iter().map(to_raw).collect());
            }
        }
        Ok(out)
    }

    /// The rooms searched and what the user may read in each.
    async fn scopes(
        &self,
        user: &ruma::UserId,
        filter: &RoomEventFilter,
    ) -> Result<BTreeMap<OwnedRoomId, Scope>> {
        let mut out = BTreeMap::new();
        for m in self.rooms.memberships(user).await? {
            if m.forgotten || !room_matches(filter, &m.room_id) {
                continue;
            }
            // Patient-context rooms: members only, whatever their history would allow.
            if m.membership != "join" && self.rooms.is_patient_context_room(&m.room_id).await? {
                continue;
            }
            match self.rooms.visible_to(&m.room_id, user).await {
                Ok(vis) => {
                    out.insert(m.room_id, Scope { vis });
                }
                // Nothing readable (or the room is gone): nothing to find there.
                Err(e) if e.kind().is_some() => continue,
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }

    /// Events around a result (the search filter applies to them too) and, when asked, the
    /// senders' profiles as their member events stood at those events.
    async fn context(
        &self,
        viewer: Viewer<'_>,
        ev: &StoredEvent,
        vis: &Visible,
        c: &Criteria,
        rules: &ruma::room_version_rules::RoomVersionRules,
    ) -> Result<EventContextResult> {
        let mut out = EventContextResult::new();
        let before_n = (u64::from(c.event_context.before_limit) as usize).min(MAX_CONTEXT);
        let after_n = (u64::from(c.event_context.after_limit) as usize).min(MAX_CONTEXT);
        let pos = ev.pos.expect("search hits have a stream position");
        let room = &ev.room_id;
        let mut filter = c.filter.clone();
        filter.limit = None;
        let mut around = vec![ev.clone()];
        if before_n > 0 {
            let w = Window {
                from: pos - 1,
                dir: Direction::Backward,
                limit: before_n,
                to: None,
            };
            let (before, next) = self.rooms.page(room, vis, w, &filter).await?;
            out.start = Some(token(
                next.unwrap_or(before.last().map_or(pos, |e| e.pos.unwrap_or(pos)) - 1),
            ));
            out.events_before = (self.rooms)
                .format_timeline(&before, rules, viewer, vis, true)
                .await?
                .iter()
                .map(to_raw)
                .collect();
            around.extend(before);
        }
        if after_n > 0 {
            let w = Window {
                from: pos,
                dir: Direction::Forward,
                limit: after_n,
                to: None,
            };
            let (after, next) = self.rooms.page(room, vis, w, &filter).await?;
            out.end = Some(token(
                next.unwrap_or(after.last().and_then(|e| e.pos).unwrap_or(pos)),
            ));
            out.events_after = (self.rooms)
                .format_timeline(&after, rules, viewer, vis, true)
                .await?
                .iter()
                .map(to_raw)
                .collect();
            around.extend(after);
        }
        if c.event_context.include_profile {
            for member in self
                .rooms
                .member_events_for(room, &around, rules, viewer)
                .await?
            {
                let Some(user) = member["state_key"]
                    .as_str()
                    .and_then(|u| OwnedUserId::try_from(u).ok())
                else {
                    continue;
                };
                let content = &member["content"];
                let mut p = UserProfile::new();
                p.displayname = content["displayname"].as_str().map(str::to_owned);
                p.avatar_url = content["avatar_url"].as_str().map(Into::into);
                out.profile_info.insert(user, p);
            }
        }
        Ok(out)
    }
}

/// The keys searched: those asked for (all by default), narrowed to the event types the
/// filter admits.
fn keys(asked: Option<&[SearchKeys]>, filter: &RoomEventFilter) -> Result<Vec<&'static str>> {
    let mut out = Vec::new();
    for k in asked.map_or_else(
        || SEARCH_KEYS.iter().map(|k| SearchKeys::from(*k)).collect(),
        <[SearchKeys]>::to_vec,
    ) {
        let Some((key, kind)) = KEY_TYPES.iter().find(|(key, _)| *key == k.as_str()) else {
            return Err(Error::invalid_param(format!(
                "Unknown search key '{}': use content.body, content.name or content.topic",
                k.as_str()
            )));
        };
        let type_ok = !filter.not_types.iter().any(|p| type_matches(p, kind))
            && filter
                .types
                .as_ref()
                .is_none_or(|ts| ts.iter().any(|p| type_matches(p, kind)));
        if type_ok && !out.contains(key) {
            out.push(*key);
        }
    }
    Ok(out)
}

fn type_matches(pattern: &str, kind: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => kind.starts_with(prefix),
        None => pattern == kind,
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Order {
    Rank,
    Recent,
}

impl Order {
    /// `next_batch` tokens: `r<pos>` (recent: continue below that position) and `k<offset>`
    /// (rank: skip that many). A token of the other order is refused, not misread.
    fn parse_batch(self, t: Option<&str>) -> Result<SearchOrder> {
        let bad = || Error::invalid_param("Invalid next_batch for this search's order_by");
        Ok(match (self, t) {
            (Order::Recent, None) => SearchOrder::Recent { before: None },
            (Order::Rank, None) => SearchOrder::Rank { offset: 0 },
            (Order::Recent, Some(t)) => SearchOrder::Recent {
                before: Some(
                    t.strip_prefix('r')
                        .and_then(|n| n.parse().ok())
                        .ok_or_else(bad)?,
                ),
            },
            (Order::Rank, Some(t)) => SearchOrder::Rank {
                offset: t
                    .strip_prefix('k')
                    .and_then(|n| n.parse().ok())
                    .ok_or_else(bad)?,
            },
        })
    }

    fn next_batch(
        self,
        cursor: SearchOrder,
        last: Option<&StoredEvent>,
        taken: usize,
    ) -> Option<String> {
        match cursor {
            SearchOrder::Recent { .. } => last.and_then(|e| e.pos).map(|p| format!("r{p}")),
            SearchOrder::Rank { offset } => Some(format!("k{}", offset + taken as u64)),
        }
    }
}

/// `groups`: the page's results by room and/or sender, each group's `order` its rank on the
/// page (1 = holds the first result).
fn groups(
    by: &[ruma::api::client::search::search_events::v3::Grouping],
    hits: &[crate::store::search::SearchHit],
    next_batch: Option<&str>,
) -> ruma::api::client::search::search_events::v3::ResultGroupMapsByGroupingKey {
    let mut out = ruma::api::client::search::search_events::v3::ResultGroupMapsByGroupingKey::new();
    let group = |key: &dyn Fn(&StoredEvent) -> String| {
        let mut m: BTreeMap<String, ResultGroup> = BTreeMap::new();
        let mut next_order = 1u32;
        for h in hits {
            let g = m.entry(key(&h.event)).or_insert_with(|| {
                let mut g = ResultGroup::new();
                g.order = Some(UInt::from(next_order));
                next_order += 1;
                g.next_batch = next_batch.map(str::to_owned);
                g
            });
            g.results.push(h.event.event_id.clone());
        }
        m
    };
    for g in by {
        match g.key {
            Some(GroupingKey::RoomId) => {
                let m = group(&|e| e.room_id.to_string());
                out.insert(ResultGroupMap::RoomId(
                    m.into_iter()
                        .filter_map(|(k, v)| Some((OwnedRoomId::try_from(k).ok()?, v)))
                        .collect(),
                ));
            }
            Some(GroupingKey::Sender) => {
                let m = group(&|e| e.sender.to_string());
                out.insert(ResultGroupMap::Sender(
                    m.into_iter()
                        .filter_map(|(k, v)| Some((OwnedUserId::try_from(k).ok()?, v)))
                        .collect(),
                ));
            }
            // Refused before the search (`check_groupings`).
            _ => {}
        }
    }
    out
}

fn check_groupings(by: &[ruma::api::client::search::search_events::v3::Grouping]) -> Result<()> {
    for g in by {
        if !matches!(g.key, Some(GroupingKey::RoomId | GroupingKey::Sender)) {
            return Err(Error::invalid_param(
                "Unknown grouping key: use room_id or sender",
            ));
        }
    }
    Ok(())
}
