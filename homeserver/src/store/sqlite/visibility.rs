//! History-visibility reads for `RoomStore`: the inputs of a user's visible ranges, and member
//! events at given positions (lazy loading). The trait impl in `rooms.rs` delegates here.

use rusqlite::{Connection, OptionalExtension, params};

use super::rooms::{EVENT_COLS, REDACTION_JOIN, collect, event_from_row};
use crate::store::StoreResult;
use crate::store::rooms::{StoredEvent, VisibilityHistory};

pub(super) fn members_at(
    c: &Connection,
    room_id: &str,
    wants: &[(String, i64)],
) -> StoreResult<Vec<StoredEvent>> {
    let wants = serde_json::to_string(wants)?;
    // Each lookup is a seek on the (room_id, type, state_key, pos) primary key.
    let mut stmt = c.prepare_cached(&format!(
        "SELECT {EVENT_COLS} FROM (
            SELECT (SELECT d.event_id FROM state_deltas d
                     WHERE d.room_id = ?1 AND d.type = 'm.room.member'
                       AND d.state_key = json_extract(w.value, '$[0]')
                       AND d.pos <= json_extract(w.value, '$[1]')
                     ORDER BY d.pos DESC LIMIT 1) AS eid
              FROM json_each(?2) w) m
         JOIN events e ON e.event_id = m.eid {REDACTION_JOIN}"
    ))?;
    collect(stmt.query_map(params![room_id, wants], event_from_row)?)
}

pub(super) fn visibility_history(
    c: &Connection,
    room_id: &str,
    user_id: &str,
) -> StoreResult<VisibilityHistory> {
    // Both histories come from the (room, type, state_key, pos) primary key of the deltas.
    // A membership that is not a string reads as `leave`; a setting, as "" (unknown: fail closed).
    let mut stmt = c.prepare_cached(
        "SELECT d.pos, CASE WHEN json_type(e.json, '$.content.membership') = 'text'
                            THEN json_extract(e.json, '$.content.membership') ELSE 'leave' END
           FROM state_deltas d JOIN events e ON e.event_id = d.event_id
          WHERE d.room_id = ?1 AND d.type = 'm.room.member' AND d.state_key = ?2 ORDER BY d.pos",
    )?;
    let pair = |r: &rusqlite::Row<'_>| Ok((r.get(0)?, r.get(1)?));
    let memberships = collect(stmt.query_map([room_id, user_id], pair)?)?;
    let mut stmt = c.prepare_cached(
        "SELECT d.pos, CASE WHEN json_type(e.json, '$.content.history_visibility') = 'text'
                            THEN json_extract(e.json, '$.content.history_visibility') ELSE '' END
           FROM state_deltas d JOIN events e ON e.event_id = d.event_id
          WHERE d.room_id = ?1 AND d.type = 'm.room.history_visibility' AND d.state_key = ''
          ORDER BY d.pos",
    )?;
    let settings = collect(stmt.query_map([room_id], pair)?)?;
    let forgotten = c
        .query_row(
            "SELECT forgotten FROM memberships WHERE room_id = ?1 AND user_id = ?2",
            [room_id, user_id],
            |r| r.get(0),
        )
        .optional()?
        .unwrap_or(false);
    Ok(VisibilityHistory {
        memberships,
        settings,
        forgotten,
    })
}
