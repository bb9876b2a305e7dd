//! Walks back through a room's DAG along `prev_events`, for /backfill and
//! /get_missing_events. Pure graph logic over a `fetch` function (ids -> stored events), so it
//! is tested without a database; the caller runs it off the async executor.
//!
//! Events of other rooms are never followed or returned, and an event the store no longer has
//! (purged by retention) ends its branch of the walk.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet};

use ruma::{OwnedEventId, RoomId};
use serde::Deserialize;

use crate::error::Result;
use crate::store::federation_events::FedEvent;

#[derive(Deserialize)]
struct Prevs {
    #[serde(default)]
    prev_events: Vec<String>,
}

/// The event's `prev_events` (ids that do not parse are skipped).
pub fn prev_events(ev: &FedEvent) -> Vec<OwnedEventId> {
    serde_json::from_str::<Prevs>(&ev.json)
        .map(|p| {
            p.prev_events
                .into_iter()
                .filter_map(|id| id.try_into().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// Ordering for the walks: depth, then stream position, then id (outliers last at equal depth).
fn key(ev: &FedEvent) -> (i64, i64, OwnedEventId) {
    (ev.depth, ev.pos.unwrap_or(-1), ev.event_id.clone())
}

/// /backfill: the `from` events and those before them, highest depth first, at most `limit`.
/// A max-heap on depth always takes the newest event not yet taken, so the answer is the
/// `limit` most recent events behind `from` even where the DAG branches.
pub fn backfill(
    room_id: &RoomId,
    from: &[OwnedEventId],
    limit: usize,
    mut fetch: impl FnMut(&[OwnedEventId]) -> Result<Vec<FedEvent>>,
) -> Result<Vec<FedEvent>> {
    let mut seen: HashSet<OwnedEventId> = from.iter().cloned().collect();
    let mut heap = BinaryHeap::new();
    let mut found: HashMap<OwnedEventId, FedEvent> = HashMap::new();
    let add = |evs: Vec<FedEvent>, heap: &mut BinaryHeap<_>, found: &mut HashMap<_, _>| {
        for ev in evs.into_iter().filter(|e| e.room_id == room_id) {
            heap.push(key(&ev));
            found.insert(ev.event_id.clone(), ev);
        }
    };
    add(fetch(from)?, &mut heap, &mut found);
    let mut out = Vec::new();
    while out.len() < limit {
        let Some((_, _, id)) = heap.pop() else { break };
        let Some(ev) = found.remove(&id) else {
            continue;
        };
        let prevs: Vec<OwnedEventId> = prev_events(&ev)
            .into_iter()
            .filter(|p| seen.insert(p.clone()))
            .collect();
        out.push(ev);
        if !prevs.is_empty() && out.len() < limit {
            add(fetch(&prevs)?, &mut heap, &mut found);
        }
    }
    Ok(out)
}

/// /get_missing_events: a breadth-first walk back from `latest` (not included), never into or
/// past `earliest`, skipping events below `min_depth`, at most `limit`. When a level holds more
/// than the limit allows, the newest of it are kept. Returned oldest first (by depth), the
/// order a receiver can apply them in.
pub fn missing_events(
    room_id: &RoomId,
    earliest: &[OwnedEventId],
    latest: &[OwnedEventId],
    limit: usize,
    min_depth: i64,
    mut fetch: impl FnMut(&[OwnedEventId]) -> Result<Vec<FedEvent>>,
) -> Result<Vec<FedEvent>> {
    let mut seen: HashSet<OwnedEventId> = earliest.iter().chain(latest).cloned().collect();
    let mut front: Vec<FedEvent> = fetch(latest)?
        .into_iter()
        .filter(|e| e.room_id == room_id)
        .collect();
    let mut out: Vec<FedEvent> = Vec::new();
    while !front.is_empty() && out.len() < limit {
        let prevs: Vec<OwnedEventId> = front
            .iter()
            .flat_map(prev_events)
            .filter(|p| seen.insert(p.clone()))
            .collect();
        if prevs.is_empty() {
            break;
        }
        let mut level: Vec<FedEvent> = fetch(&prevs)?
            .into_iter()
            .filter(|e| e.room_id == room_id && e.depth >= min_depth)
            .collect();
        level.sort_by_key(|e| Reverse(key(e)));
        level.truncate(limit - out.len());
        out.extend(level.iter().cloned());
        front = level;
    }
    out.sort_by_key(key);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A DAG: `(id, depth, prevs)`; all in room !r:h except ids starting with `$o`.
    fn dag(spec: &[(&str, i64, &[&str])]) -> HashMap<OwnedEventId, FedEvent> {
        spec.iter()
            .enumerate()
            .map(|(i, (id, depth, prevs))| {
                let room = if id.starts_with("$o") { "!o:h" } else { "!r:h" };
                let ev = FedEvent {
                    event_id: (*id).try_into().unwrap(),
                    room_id: room.try_into().unwrap(),
                    pos: Some(i as i64 + 1),
                    depth: *depth,
                    origin_server_ts: 0,
                    json: serde_json::json!({ "prev_events": prevs }).to_string(),
                    redacted: false,
                };
                (ev.event_id.clone(), ev)
            })
            .collect()
    }

    fn fetcher(
        g: &HashMap<OwnedEventId, FedEvent>,
        calls: &mut usize,
    ) -> impl FnMut(&[OwnedEventId]) -> Result<Vec<FedEvent>> {
        move |ids| {
            *calls += 1;
            Ok(ids.iter().filter_map(|i| g.get(i).cloned()).collect())
        }
    }

    fn ids(v: &[FedEvent]) -> Vec<&str> {
        v.iter().map(|e| e.event_id.as_str()).collect()
    }

    fn e(s: &str) -> OwnedEventId {
        s.try_into().unwrap()
    }

    fn room() -> &'static RoomId {
        <&RoomId>::try_from("!r:h").unwrap()
    }

    // 1 <- 2 <- {3a, 3b} <- 4 ; 3b also points at an event of another room and a purged one.
    fn fork() -> HashMap<OwnedEventId, FedEvent> {
        dag(&[
            ("$1", 1, &[]),
            ("$2", 2, &["$1"]),
            ("$3a", 3, &["$2"]),
            ("$3b", 3, &["$2", "$other", "$purged"]),
            ("$4", 4, &["$3a", "$3b"]),
            ("$other", 9, &[]),
        ])
    }

    #[test]
    fn backfill_takes_the_newest_first_through_forks() {
        let g = fork();
        let mut calls = 0;
        let out = backfill(room(), &[e("$4")], 3, fetcher(&g, &mut calls)).unwrap();
        assert_eq!(ids(&out), ["$4", "$3b", "$3a"]);
        let mut calls = 0;
        let out = backfill(room(), &[e("$4")], 100, fetcher(&g, &mut calls)).unwrap();
        assert_eq!(ids(&out), ["$4", "$3b", "$3a", "$2", "$1"]);
        // Starting from two events: both are included; unknown starting ids are ignored.
        let mut calls = 0;
        let out = backfill(
            room(),
            &[e("$3a"), e("$2"), e("$nope")],
            10,
            fetcher(&g, &mut calls),
        );
        assert_eq!(ids(&out.unwrap()), ["$3a", "$2", "$1"]);
        let mut calls = 0;
        assert!(
            backfill(room(), &[e("$4")], 0, fetcher(&g, &mut calls))
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn missing_events_stop_at_earliest_and_min_depth() {
        let g = fork();
        let mut calls = 0;
        let out = missing_events(
            room(),
            &[e("$2")],
            &[e("$4")],
            10,
            0,
            fetcher(&g, &mut calls),
        );
        assert_eq!(ids(&out.unwrap()), ["$3a", "$3b"]);
        let mut calls = 0;
        let out = missing_events(room(), &[], &[e("$4")], 10, 0, fetcher(&g, &mut calls));
        assert_eq!(ids(&out.unwrap()), ["$1", "$2", "$3a", "$3b"]);
        let mut calls = 0;
        let out = missing_events(room(), &[], &[e("$4")], 10, 2, fetcher(&g, &mut calls));
        assert_eq!(ids(&out.unwrap()), ["$2", "$3a", "$3b"]);
        // The limit keeps the newest of a level.
        let mut calls = 0;
        let out = missing_events(room(), &[], &[e("$4")], 1, 0, fetcher(&g, &mut calls));
        assert_eq!(ids(&out.unwrap()), ["$3b"]);
        // A latest event of another room is not followed.
        let mut calls = 0;
        let out = missing_events(room(), &[], &[e("$other")], 10, 0, fetcher(&g, &mut calls));
        assert!(out.unwrap().is_empty());
    }
}
