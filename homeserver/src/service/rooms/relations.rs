//! /relations: the events relating to a parent event (edits, reactions, thread replies…), paged
//! by stream position and filtered by what the viewer may see.

use ruma::{EventId, RoomId};
use serde_json::Value;

use super::RoomService;
use super::format::{Viewer, client_event};
use super::read::token;
use crate::error::{Error, Result};
use crate::service::blocking;
use crate::store::rooms::{Direction, RelationQuery, StoredEvent};

/// How deep `recurse=true` follows relations of relations (spec: at least 3).
pub const MAX_RECURSION_DEPTH: u32 = 3;
const DEFAULT_LIMIT: usize = 50;
const MAX_LIMIT: usize = 1000;

/// The query of a /relations request, already parsed.
#[derive(Debug, Clone, Default)]
pub struct RelationsParams {
    pub rel_type: Option<String>,
    pub event_type: Option<String>,
    pub from: Option<i64>,
    pub to: Option<i64>,
    /// `true` for `dir=f`; the default is backwards (newest first).
    pub forward: bool,
    pub limit: Option<usize>,
    pub recurse: bool,
}

#[derive(Debug)]
pub struct RelationsPage {
    pub chunk: Vec<Value>,
    pub next_batch: Option<String>,
    pub prev_batch: Option<String>,
    pub recursion_depth: Option<u32>,
}

impl RoomService {
    /// The children of `event_id`. `M_NOT_FOUND` if the parent is unknown or not visible to the
    /// viewer (the spec does not distinguish the two).
    pub async fn relations(
        &self,
        room_id: &RoomId,
        event_id: &EventId,
        viewer: Viewer<'_>,
        p: RelationsParams,
    ) -> Result<RelationsPage> {
        let hidden = || Error::not_found("Event not found");
        let vis = self
            .visible_to(room_id, viewer.user_id)
            .await
            .map_err(|_| hidden())?;
        let store = self.store.clone();
        let id = event_id.to_owned();
        let parent = blocking(move || Ok(store.get_event(id.as_str())?)).await?;
        if !parent.is_some_and(|e| e.room_id == room_id && e.pos.is_some_and(|p| vis.contains(p))) {
            return Err(hidden());
        }

        let dir = if p.forward {
            Direction::Forward
        } else {
            Direction::Backward
        };
        let upto = vis.upper().unwrap_or(0).min(self.current_pos());
        let limit = p.limit.unwrap_or(DEFAULT_LIMIT).clamp(1, MAX_LIMIT);
        let max_depth = if p.recurse { MAX_RECURSION_DEPTH } else { 1 };
        let mut cursor = p.from.unwrap_or(match dir {
            Direction::Backward => upto,
            Direction::Forward => 0,
        });
        let mut out: Vec<StoredEvent> = Vec::new();
        let mut next = None;
        'pages: loop {
            let batch = (limit * 2).clamp(20, 500);
            let store = self.store.clone();
            let (r, e) = (room_id.to_owned(), event_id.to_owned());
            let (rel_type, event_type) = (p.rel_type.clone(), p.event_type.clone());
            let evs = blocking(move || {
                Ok(store.relations(&RelationQuery {
                    room_id: r.as_str(),
                    event_id: e.as_str(),
                    rel_type: rel_type.as_deref(),
                    event_type: event_type.as_deref(),
                    max_depth,
                    from: cursor,
                    dir,
                    limit: batch,
                    upto,
                })?)
            })
            .await?;
            let exhausted = evs.len() < batch;
            for ev in evs {
                let pos = ev.pos.unwrap_or(0);
                let past_to = match (dir, p.to) {
                    (Direction::Backward, Some(t)) => pos <= t,
                    (Direction::Forward, Some(t)) => pos > t,
                    _ => false,
                };
                if past_to {
                    break 'pages;
                }
                cursor = match dir {
                    Direction::Backward => pos - 1,
                    Direction::Forward => pos,
                };
                if vis.contains(pos) {
                    out.push(ev);
                    if out.len() >= limit {
                        next = Some(cursor);
                        break 'pages;
                    }
                }
            }
            if exhausted {
                break;
            }
        }
        let rules = self.rules(room_id).await?;
        Ok(RelationsPage {
            chunk: out
                .iter()
                .map(|e| client_event(e, &rules, Some(viewer), true))
                .collect(),
            next_batch: next.map(token),
            prev_batch: p.from.map(token),
            recursion_depth: p.recurse.then_some(MAX_RECURSION_DEPTH),
        })
    }
}
