//! Relation queries for `RoomStore` (/relations, /threads, bundled thread aggregation) and the
//! timestamp lookup of /timestamp_to_event. The trait impl in `rooms.rs` delegates here.

use ruma::OwnedEventId;
use rusqlite::{Connection, OptionalExtension, params};

use super::rooms::{EVENT_COLS, EVENT_FROM, REDACTION_JOIN, collect, event_from_row};
use crate::store::rooms::{Direction, RelationQuery, StoredEvent, ThreadSummary};
use crate::store::{StoreError, StoreResult};

pub(super) fn relations(c: &Connection, q: &RelationQuery<'_>) -> StoreResult<Vec<StoredEvent>> {
    // Each event relates to at most one parent (event_id is the key), so the walk is a tree and
    // every child is reached once; `max_depth` bounds it even if a cycle were ever stored.
    let (cmp, order) = match q.dir {
        Direction::Backward => ("e.pos <= ?6", "DESC"),
        Direction::Forward => ("e.pos > ?6", "ASC"),
    };
    let sql = format!(
        "WITH RECURSIVE rel(event_id, rel_type, depth) AS (
            SELECT event_id, rel_type, 1 FROM event_relations WHERE relates_to = ?2
            UNION ALL
            SELECT r.event_id, r.rel_type, rel.depth + 1 FROM event_relations r
              JOIN rel ON r.relates_to = rel.event_id WHERE rel.depth < ?3)
         SELECT {EVENT_COLS} FROM rel JOIN events e ON e.event_id = rel.event_id {REDACTION_JOIN}
         WHERE e.room_id = ?1 AND e.pos IS NOT NULL AND e.pos <= ?7 AND {cmp}
           AND (?4 IS NULL OR rel.rel_type = ?4) AND (?5 IS NULL OR e.type = ?5)
         ORDER BY e.pos {order} LIMIT ?8"
    );
    let mut stmt = c.prepare_cached(&sql)?;
    collect(stmt.query_map(
        params![
            q.room_id,
            q.event_id,
            q.max_depth.max(1),
            q.rel_type,
            q.event_type,
            q.from,
            q.upto,
            q.limit as i64
        ],
        event_from_row,
    )?)
}

pub(super) fn thread_roots(
    c: &Connection,
    room_id: &str,
    before: i64,
    upto: i64,
    participant: Option<&str>,
    limit: usize,
) -> StoreResult<Vec<(OwnedEventId, i64)>> {
    let mut stmt = c.prepare_cached(
        "SELECT r.relates_to, MAX(e.pos) AS latest FROM event_relations r
           JOIN events e ON e.event_id = r.event_id
         WHERE r.rel_type = 'm.thread' AND e.room_id = ?1 AND e.pos IS NOT NULL AND e.pos <= ?2
         GROUP BY r.relates_to
         HAVING latest < ?3 AND (?4 IS NULL OR SUM(e.sender = ?4) > 0
           OR EXISTS (SELECT 1 FROM events t WHERE t.event_id = r.relates_to AND t.sender = ?4))
         ORDER BY latest DESC LIMIT ?5",
    )?;
    let rows = collect(stmt.query_map(
        params![room_id, upto, before, participant, limit as i64],
        |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)),
    )?)?;
    rows.into_iter()
        .map(|(id, pos)| {
            Ok((
                OwnedEventId::try_from(id).map_err(|e| StoreError::Corrupt(e.to_string()))?,
                pos,
            ))
        })
        .collect()
}

pub(super) fn thread_summary(
    c: &Connection,
    root_id: &str,
    user_id: &str,
    upto: i64,
) -> StoreResult<ThreadSummary> {
    let (count, latest_pos, replied): (i64, Option<i64>, Option<i64>) = c
        .prepare_cached(
            "SELECT COUNT(*), MAX(e.pos), SUM(e.sender = ?2) FROM event_relations r
               JOIN events e ON e.event_id = r.event_id
             WHERE r.relates_to = ?1 AND r.rel_type = 'm.thread' AND e.pos IS NOT NULL
               AND e.pos <= ?3",
        )?
        .query_row(params![root_id, user_id, upto], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })?;
    let latest = match latest_pos {
        Some(pos) => c
            .query_row(
                &format!("SELECT {EVENT_COLS} FROM {EVENT_FROM} WHERE e.pos = ?1"),
                [pos],
                event_from_row,
            )
            .optional()?,
        None => None,
    };
    Ok(ThreadSummary {
        count: count as u64,
        latest,
        user_replied: replied.unwrap_or(0) > 0,
    })
}

pub(super) fn events_by_ts(
    c: &Connection,
    room_id: &str,
    (ts, pos): (i64, i64),
    dir: Direction,
    limit: usize,
    upto: i64,
) -> StoreResult<Vec<StoredEvent>> {
    // Row-value comparison walks the (room_id, origin_server_ts) index from the cursor.
    let (cmp, order) = match dir {
        Direction::Forward => (">", "ASC"),
        Direction::Backward => ("<", "DESC"),
    };
    let sql = format!(
        "SELECT {EVENT_COLS} FROM {EVENT_FROM}
         WHERE e.room_id = ?1 AND e.pos IS NOT NULL AND e.pos <= ?4
           AND (e.origin_server_ts, e.pos) {cmp} (?2, ?3)
         ORDER BY e.origin_server_ts {order}, e.pos {order} LIMIT ?5"
    );
    let mut stmt = c.prepare_cached(&sql)?;
    collect(stmt.query_map(
        params![room_id, ts, pos, upto, limit as i64],
        event_from_row,
    )?)
}

/// For each event id, its latest `m.replace` edit by the same sender that is not redacted
/// (the spec's bundled `m.replace` aggregation). Events without edits are absent.
pub(super) fn latest_edits(
    c: &Connection,
    event_ids: &[OwnedEventId],
    upto: i64,
) -> StoreResult<Vec<(OwnedEventId, StoredEvent)>> {
    // One statement for the whole page; SQLite takes the bare `rel.event_id` from the row
    // holding MAX(pos), the newest edit of each target at or before `upto`.
    let mut stmt = c.prepare_cached(&format!(
        "SELECT {EVENT_COLS}, w.target FROM (
            SELECT rel.relates_to AS target, rel.event_id AS eid, MAX(x.pos)
              FROM event_relations rel JOIN events x ON x.event_id = rel.event_id
              JOIN events o ON o.event_id = rel.relates_to
             WHERE rel.relates_to IN (SELECT value FROM json_each(?1)) AND rel.rel_type = 'm.replace'
               AND x.sender = o.sender AND x.redacted_by IS NULL AND x.pos IS NOT NULL AND x.pos <= ?2
             GROUP BY rel.relates_to) w
         JOIN events e ON e.event_id = w.eid {REDACTION_JOIN}"
    ))?;
    let ids = serde_json::to_string(&event_ids.iter().map(|i| i.as_str()).collect::<Vec<_>>())?;
    collect(stmt.query_map(params![ids, upto], |r| {
        let target: String = r.get(13)?;
        let target = OwnedEventId::try_from(target).map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(13, rusqlite::types::Type::Text, e.into())
        })?;
        Ok((target, event_from_row(r)?))
    })?)
}
