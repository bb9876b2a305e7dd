use ruma::{OwnedEventId, OwnedRoomId, OwnedUserId};
use rusqlite::{Connection, OptionalExtension, Row, params};

use super::SqliteStore;
use super::db::WriteCtx;
use super::relations;
use super::visibility;
use crate::store::rooms::{
    Direction, MembershipRow, NewEvent, NewRoom, RelationQuery, RoomStore, StoredEvent,
    ThreadSummary, VisibilityHistory,
};
use crate::store::{StoreError, StoreResult, now_ms};

/// Columns read into a `StoredEvent`; `e` is the event, `r` its redaction (LEFT JOIN).
pub(super) const EVENT_COLS: &str =
    "e.event_id, e.room_id, e.pos, e.sender, e.type, e.state_key, e.origin_server_ts,
     e.json, e.unsigned, r.event_id, r.json, e.txn_device, e.txn_id";
pub(super) const EVENT_FROM: &str = "events e LEFT JOIN events r ON r.event_id = e.redacted_by";
pub(super) const REDACTION_JOIN: &str = "LEFT JOIN events r ON r.event_id = e.redacted_by";

fn corrupt<E: std::fmt::Display>(col: usize) -> impl FnOnce(E) -> rusqlite::Error {
    move |e| {
        rusqlite::Error::FromSqlConversionFailure(
            col,
            rusqlite::types::Type::Text,
            e.to_string().into(),
        )
    }
}

pub(super) fn event_from_row(r: &Row<'_>) -> rusqlite::Result<StoredEvent> {
    let redaction: Option<(String, String)> = match (
        r.get::<_, Option<String>>(9)?,
        r.get::<_, Option<String>>(10)?,
    ) {
        (Some(id), Some(json)) => Some((id, json)),
        _ => None,
    };
    let txn = match (
        r.get::<_, Option<String>>(11)?,
        r.get::<_, Option<String>>(12)?,
    ) {
        (Some(d), Some(t)) => Some((d, t)),
        _ => None,
    };
    Ok(StoredEvent {
        event_id: r.get::<_, String>(0)?.try_into().map_err(corrupt(0))?,
        room_id: r.get::<_, String>(1)?.try_into().map_err(corrupt(1))?,
        pos: r.get(2)?,
        sender: r.get::<_, String>(3)?.try_into().map_err(corrupt(3))?,
        kind: r.get(4)?,
        state_key: r.get(5)?,
        origin_server_ts: r.get(6)?,
        json: r.get(7)?,
        unsigned: r.get(8)?,
        redacted_because: redaction
            .map(|(id, json)| {
                Ok::<_, rusqlite::Error>((OwnedEventId::try_from(id).map_err(corrupt(9))?, json))
            })
            .transpose()?,
        txn,
    })
}

fn membership_from_row(r: &Row<'_>) -> rusqlite::Result<MembershipRow> {
    Ok(MembershipRow {
        room_id: r.get::<_, String>(0)?.try_into().map_err(corrupt(0))?,
        user_id: r.get::<_, String>(1)?.try_into().map_err(corrupt(1))?,
        membership: r.get(2)?,
        event_id: r.get::<_, String>(3)?.try_into().map_err(corrupt(3))?,
        pos: r.get(4)?,
        forgotten: r.get(5)?,
    })
}

const MEMBERSHIP_COLS: &str = "room_id, user_id, membership, event_id, pos, forgotten";

/// `Conflict(what)` when `e` is a uniqueness violation of `column` (`table.column`, as SQLite
/// names it); any other error as it is.
pub(super) fn conflict_on(e: rusqlite::Error, column: &str, what: &'static str) -> StoreError {
    match &e {
        rusqlite::Error::SqliteFailure(f, Some(msg))
            if f.code == rusqlite::ErrorCode::ConstraintViolation && msg.contains(column) =>
        {
            StoreError::Conflict(what)
        }
        _ => e.into(),
    }
}

pub(super) fn collect<T>(rows: impl Iterator<Item = rusqlite::Result<T>>) -> StoreResult<Vec<T>> {
    Ok(rows.collect::<Result<Vec<_>, _>>()?)
}

/// Appends one event inside the current write transaction.
pub(super) fn insert_event(ctx: &mut WriteCtx<'_>, ev: &NewEvent) -> StoreResult<i64> {
    let pos = ctx.next_pos();
    let tx = ctx.tx;
    let (txn_device, txn_id) = match &ev.txn {
        Some((_, d, t)) => (Some(d.as_str()), Some(t.as_str())),
        None => (None, None),
    };
    // An event id is a hash: the same id twice is a collision (or a replay) that the caller
    // decides about; the stored event is never overwritten.
    tx.execute(
        "INSERT INTO events (event_id, pos, room_id, sender, type, state_key, depth, origin_server_ts, json, unsigned, txn_device, txn_id)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
        params![
            ev.event_id.as_str(), pos, ev.room_id.as_str(), ev.sender.as_str(), ev.kind, ev.state_key, ev.depth,
            ev.origin_server_ts, ev.json, ev.unsigned, txn_device, txn_id
        ],
    )
    .map_err(|e| conflict_on(e, "events.event_id", "event"))?;
    if let Some((user, device, txn)) = &ev.txn {
        tx.execute(
            "INSERT INTO txn_ids (user_id, device_id, txn_id, event_id) VALUES (?1, ?2, ?3, ?4)",
            params![user.as_str(), device, txn, ev.event_id.as_str()],
        )?;
    }
    {
        let mut del = tx.prepare_cached(
            "DELETE FROM forward_extremities WHERE room_id = ?1 AND event_id = ?2",
        )?;
        for prev in &ev.prev_events {
            del.execute(params![ev.room_id.as_str(), prev.as_str()])?;
        }
    }
    tx.execute(
        "INSERT OR IGNORE INTO forward_extremities (room_id, event_id) VALUES (?1, ?2)",
        params![ev.room_id.as_str(), ev.event_id.as_str()],
    )?;
    if let Some(key) = &ev.state_key {
        tx.execute(
            "INSERT INTO state_deltas (room_id, type, state_key, pos, event_id) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![ev.room_id.as_str(), ev.kind, key, pos, ev.event_id.as_str()],
        )?;
        if let Some(m) = &ev.membership {
            tx.execute(
                "INSERT INTO memberships (room_id, user_id, membership, event_id, pos, forgotten) VALUES (?1, ?2, ?3, ?4, ?5, 0)
                 ON CONFLICT (room_id, user_id) DO UPDATE SET membership = excluded.membership,
                   event_id = excluded.event_id, pos = excluded.pos, forgotten = 0",
                params![ev.room_id.as_str(), key, m, ev.event_id.as_str(), pos],
            )?;
        }
    }
    for (kind, key, event_id, membership) in &ev.resolved_state {
        tx.execute(
            "INSERT OR REPLACE INTO state_deltas (room_id, type, state_key, pos, event_id) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![ev.room_id.as_str(), kind, key, pos, event_id.as_str()],
        )?;
        if let Some(m) = membership {
            tx.execute(
                "INSERT INTO memberships (room_id, user_id, membership, event_id, pos, forgotten) VALUES (?1, ?2, ?3, ?4, ?5, 0)
                 ON CONFLICT (room_id, user_id) DO UPDATE SET membership = excluded.membership,
                   event_id = excluded.event_id, pos = excluded.pos, forgotten = 0",
                params![ev.room_id.as_str(), key, m, event_id.as_str(), pos],
            )?;
        }
    }
    if let Some((target, rel_type)) = &ev.relation {
        tx.execute(
            "INSERT OR IGNORE INTO event_relations (event_id, relates_to, rel_type) VALUES (?1, ?2, ?3)",
            params![ev.event_id.as_str(), target.as_str(), rel_type],
        )?;
    }
    if let Some(target) = &ev.redacts {
        tx.execute(
            "UPDATE events SET redacted_by = ?2 WHERE event_id = ?1 AND redacted_by IS NULL AND room_id = ?3",
            params![target.as_str(), ev.event_id.as_str(), ev.room_id.as_str()],
        )?;
    }
    super::deliveries::insert_deliveries(ctx, ev, pos)?;
    Ok(pos)
}

fn state_at(c: &Connection, room_id: &str, pos: i64) -> StoreResult<Vec<StoredEvent>> {
    // SQLite takes bare columns from the row holding MAX(pos): the latest delta per key.
    let mut stmt = c.prepare_cached(&format!(
        "SELECT {EVENT_COLS} FROM (SELECT event_id, MAX(pos) FROM state_deltas WHERE room_id = ?1 AND pos <= ?2
           GROUP BY type, state_key) d JOIN events e ON e.event_id = d.event_id {REDACTION_JOIN}"
    ))?;
    collect(stmt.query_map(params![room_id, pos], event_from_row)?)
}

impl RoomStore for SqliteStore {
    fn current_pos(&self) -> i64 {
        self.db.current_pos()
    }

    fn create_room(&self, room: NewRoom, events: Vec<NewEvent>) -> StoreResult<Vec<i64>> {
        self.db.write(move |ctx| {
            // A v12 room id is the create event's hash: an existing room is never taken over.
            ctx.tx
                .execute(
                    "INSERT INTO rooms (room_id, room_version, creator, is_public, created_ts) VALUES (?1, ?2, ?3, ?4, ?5)",
                    params![room.room_id.as_str(), room.version, room.creator.as_str(), room.is_public, now_ms()],
                )
                .map_err(|e| conflict_on(e, "rooms.room_id", "room"))?;
            events.iter().map(|ev| insert_event(ctx, ev)).collect()
        })
    }

    fn append_event(&self, event: NewEvent) -> StoreResult<i64> {
        self.db.write(move |ctx| insert_event(ctx, &event))
    }

    fn room_version(&self, room_id: &str) -> StoreResult<Option<String>> {
        self.db.read(|c| {
            Ok(c.query_row(
                "SELECT room_version FROM rooms WHERE room_id = ?1",
                [room_id],
                |r| r.get(0),
            )
            .optional()?)
        })
    }

    fn current_state(&self, room_id: &str) -> StoreResult<Vec<StoredEvent>> {
        self.db.read(|c| state_at(c, room_id, i64::MAX))
    }

    fn forward_extremities(&self, room_id: &str) -> StoreResult<(Vec<OwnedEventId>, i64)> {
        self.db.read(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT f.event_id, e.depth FROM forward_extremities f JOIN events e ON e.event_id = f.event_id WHERE f.room_id = ?1",
            )?;
            let rows = collect(stmt.query_map([room_id], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?)?;
            let depth = rows.iter().map(|(_, d)| *d).max().unwrap_or(0);
            let ids = rows
                .into_iter()
                .map(|(id, _)| OwnedEventId::try_from(id).map_err(|e| StoreError::Corrupt(e.to_string())))
                .collect::<Result<_, _>>()?;
            Ok((ids, depth))
        })
    }

    fn get_event(&self, event_id: &str) -> StoreResult<Option<StoredEvent>> {
        self.db.read(|c| {
            Ok(c.query_row(
                &format!("SELECT {EVENT_COLS} FROM {EVENT_FROM} WHERE e.event_id = ?1"),
                [event_id],
                event_from_row,
            )
            .optional()?)
        })
    }

    fn txn_event(
        &self,
        user_id: &str,
        device_id: &str,
        txn_id: &str,
    ) -> StoreResult<Option<OwnedEventId>> {
        self.db.read(|c| {
            let id: Option<String> = c
                .query_row(
                    "SELECT event_id FROM txn_ids WHERE user_id = ?1 AND device_id = ?2 AND txn_id = ?3",
                    [user_id, device_id, txn_id],
                    |r| r.get(0),
                )
                .optional()?;
            id.map(|i| OwnedEventId::try_from(i).map_err(|e| StoreError::Corrupt(e.to_string()))).transpose()
        })
    }

    fn state_at(&self, room_id: &str, pos: i64) -> StoreResult<Vec<StoredEvent>> {
        self.db.read(|c| state_at(c, room_id, pos))
    }

    fn state_changed_between(
        &self,
        room_id: &str,
        after: i64,
        upto: i64,
    ) -> StoreResult<Vec<StoredEvent>> {
        self.db.read(|c| {
            let mut stmt = c.prepare_cached(&format!(
                "SELECT {EVENT_COLS} FROM (SELECT event_id, MAX(pos) FROM state_deltas
                   WHERE room_id = ?1 AND pos <= ?3 AND (type, state_key) IN
                     (SELECT type, state_key FROM state_deltas WHERE room_id = ?1 AND pos > ?2 AND pos <= ?3)
                   GROUP BY type, state_key) d JOIN events e ON e.event_id = d.event_id {REDACTION_JOIN}"
            ))?;
            collect(stmt.query_map(params![room_id, after, upto], event_from_row)?)
        })
    }

    fn timeline(
        &self,
        room_id: &str,
        from: i64,
        dir: Direction,
        limit: usize,
        upto: i64,
    ) -> StoreResult<Vec<StoredEvent>> {
        self.db.read(|c| {
            let sql = match dir {
                Direction::Backward => format!(
                    "SELECT {EVENT_COLS} FROM {EVENT_FROM} WHERE e.room_id = ?1 AND e.pos <= ?2 AND e.pos <= ?4
                     ORDER BY e.pos DESC LIMIT ?3"
                ),
                Direction::Forward => format!(
                    "SELECT {EVENT_COLS} FROM {EVENT_FROM} WHERE e.room_id = ?1 AND e.pos > ?2 AND e.pos <= ?4
                     ORDER BY e.pos ASC LIMIT ?3"
                ),
            };
            let mut stmt = c.prepare_cached(&sql)?;
            collect(stmt.query_map(params![room_id, from, limit as i64, upto], event_from_row)?)
        })
    }

    fn room_max_pos(&self, room_id: &str) -> StoreResult<Option<i64>> {
        self.db.read(|c| {
            Ok(c.query_row(
                "SELECT MAX(pos) FROM events WHERE room_id = ?1",
                [room_id],
                |r| r.get(0),
            )?)
        })
    }

    fn memberships_of_user(&self, user_id: &str) -> StoreResult<Vec<MembershipRow>> {
        self.db.read(|c| {
            let mut stmt = c.prepare_cached(&format!(
                "SELECT {MEMBERSHIP_COLS} FROM memberships WHERE user_id = ?1"
            ))?;
            collect(stmt.query_map([user_id], membership_from_row)?)
        })
    }

    fn membership(&self, room_id: &str, user_id: &str) -> StoreResult<Option<MembershipRow>> {
        self.db.read(|c| {
            Ok(c.query_row(
                &format!(
                    "SELECT {MEMBERSHIP_COLS} FROM memberships WHERE room_id = ?1 AND user_id = ?2"
                ),
                [room_id, user_id],
                membership_from_row,
            )
            .optional()?)
        })
    }

    fn members(&self, room_id: &str) -> StoreResult<Vec<MembershipRow>> {
        self.db.read(|c| {
            let mut stmt = c.prepare_cached(&format!(
                "SELECT {MEMBERSHIP_COLS} FROM memberships WHERE room_id = ?1 ORDER BY user_id"
            ))?;
            collect(stmt.query_map([room_id], membership_from_row)?)
        })
    }

    fn members_at(&self, room_id: &str, wants: &[(String, i64)]) -> StoreResult<Vec<StoredEvent>> {
        self.db.read(|c| visibility::members_at(c, room_id, wants))
    }

    fn visibility_history(&self, room_id: &str, user_id: &str) -> StoreResult<VisibilityHistory> {
        self.db
            .read(|c| visibility::visibility_history(c, room_id, user_id))
    }

    fn forget(&self, room_id: &str, user_id: &str) -> StoreResult<()> {
        let (r, u) = (room_id.to_owned(), user_id.to_owned());
        self.db.write(move |ctx| {
            ctx.tx.execute(
                "UPDATE memberships SET forgotten = 1 WHERE room_id = ?1 AND user_id = ?2",
                [r, u],
            )?;
            Ok(())
        })
    }

    fn event_pos(&self, event_id: &str) -> StoreResult<Option<i64>> {
        self.db.read(|c| {
            Ok(c.query_row(
                "SELECT pos FROM events WHERE event_id = ?1",
                [event_id],
                |r| r.get(0),
            )
            .optional()?
            .flatten())
        })
    }

    fn set_alias(&self, alias: &str, room_id: &str, creator: &str) -> StoreResult<()> {
        let (a, r, c) = (alias.to_owned(), room_id.to_owned(), creator.to_owned());
        self.db.write(move |ctx| {
            let n = ctx.tx.execute(
                "INSERT OR IGNORE INTO room_aliases (alias, room_id, creator, created_ts) VALUES (?1, ?2, ?3, ?4)",
                params![a, r, c, now_ms()],
            )?;
            if n == 0 { Err(StoreError::Conflict("alias")) } else { Ok(()) }
        })
    }

    fn get_alias(&self, alias: &str) -> StoreResult<Option<(OwnedRoomId, OwnedUserId)>> {
        self.db.read(|c| {
            c.query_row(
                "SELECT room_id, creator FROM room_aliases WHERE alias = ?1",
                [alias],
                |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)),
            )
            .optional()?
            .map(|(r, u)| {
                Ok((
                    OwnedRoomId::try_from(r).map_err(|e| StoreError::Corrupt(e.to_string()))?,
                    OwnedUserId::try_from(u).map_err(|e| StoreError::Corrupt(e.to_string()))?,
                ))
            })
            .transpose()
        })
    }

    fn delete_alias(&self, alias: &str) -> StoreResult<bool> {
        let a = alias.to_owned();
        self.db.write(move |ctx| {
            Ok(ctx
                .tx
                .execute("DELETE FROM room_aliases WHERE alias = ?1", [a])?
                > 0)
        })
    }

    fn aliases_for_room(&self, room_id: &str) -> StoreResult<Vec<String>> {
        self.db.read(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT alias FROM room_aliases WHERE room_id = ?1 ORDER BY alias",
            )?;
            collect(stmt.query_map([room_id], |r| r.get(0))?)
        })
    }

    fn move_aliases(&self, from: &str, to: &str) -> StoreResult<Vec<String>> {
        let (f, t) = (from.to_owned(), to.to_owned());
        self.db.write(move |ctx| {
            let mut stmt = ctx.tx.prepare_cached(
                "UPDATE room_aliases SET room_id = ?2 WHERE room_id = ?1 RETURNING alias",
            )?;
            let mut moved: Vec<String> = stmt
                .query_map(params![f, t], |r| r.get(0))?
                .collect::<Result<_, _>>()?;
            moved.sort();
            Ok(moved)
        })
    }

    fn set_room_public(&self, room_id: &str, public: bool) -> StoreResult<()> {
        let r = room_id.to_owned();
        self.db.write(move |ctx| {
            ctx.tx.execute(
                "UPDATE rooms SET is_public = ?2 WHERE room_id = ?1",
                params![r, public],
            )?;
            Ok(())
        })
    }

    fn is_room_public(&self, room_id: &str) -> StoreResult<bool> {
        self.db.read(|c| {
            Ok(c.query_row(
                "SELECT is_public FROM rooms WHERE room_id = ?1",
                [room_id],
                |r| r.get(0),
            )
            .optional()?
            .unwrap_or(false))
        })
    }

    fn public_rooms(&self) -> StoreResult<Vec<OwnedRoomId>> {
        self.db.read(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT room_id FROM rooms WHERE is_public = 1 ORDER BY created_ts",
            )?;
            let ids: Vec<String> = collect(stmt.query_map([], |r| r.get(0))?)?;
            ids.into_iter()
                .map(|i| OwnedRoomId::try_from(i).map_err(|e| StoreError::Corrupt(e.to_string())))
                .collect()
        })
    }

    fn relations(&self, q: &RelationQuery<'_>) -> StoreResult<Vec<StoredEvent>> {
        self.db.read(|c| relations::relations(c, q))
    }

    fn latest_edits(
        &self,
        event_ids: &[OwnedEventId],
        upto: i64,
    ) -> StoreResult<Vec<(OwnedEventId, StoredEvent)>> {
        self.db
            .read(|c| relations::latest_edits(c, event_ids, upto))
    }

    fn thread_roots(
        &self,
        room_id: &str,
        before: i64,
        upto: i64,
        participant: Option<&str>,
        limit: usize,
    ) -> StoreResult<Vec<(OwnedEventId, i64)>> {
        self.db
            .read(|c| relations::thread_roots(c, room_id, before, upto, participant, limit))
    }

    fn thread_summary(
        &self,
        root_id: &str,
        user_id: &str,
        upto: i64,
    ) -> StoreResult<ThreadSummary> {
        self.db
            .read(|c| relations::thread_summary(c, root_id, user_id, upto))
    }

    fn events_by_ts(
        &self,
        room_id: &str,
        cursor: (i64, i64),
        dir: Direction,
        limit: usize,
        upto: i64,
    ) -> StoreResult<Vec<StoredEvent>> {
        self.db
            .read(|c| relations::events_by_ts(c, room_id, cursor, dir, limit, upto))
    }
}
