use ruma::OwnedEventId;
use rusqlite::{OptionalExtension, params};

use super::SqliteStore;
use super::db::WriteCtx;
use super::rooms::insert_event;
use crate::store::federated_rooms::{FederatedRoomStore, ImportedRoom, Outlier};
use crate::store::rooms::NewRoom;
use crate::store::{StoreError, StoreResult, now_ms};

fn insert_outliers(ctx: &mut WriteCtx<'_>, events: &[Outlier]) -> StoreResult<()> {
    let mut stmt = ctx.tx.prepare_cached(
        "INSERT OR IGNORE INTO events (event_id, pos, room_id, sender, type, state_key, depth, origin_server_ts, json)
         VALUES (?1, NULL, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?;
    for e in events {
        stmt.execute(params![
            e.event_id.as_str(),
            e.room_id.as_str(),
            e.sender,
            e.kind,
            e.state_key,
            e.depth,
            e.origin_server_ts,
            e.json
        ])?;
    }
    Ok(())
}

fn insert_room(ctx: &mut WriteCtx<'_>, room: &NewRoom) -> StoreResult<()> {
    ctx.tx.execute(
        "INSERT OR IGNORE INTO rooms (room_id, room_version, creator, is_public, created_ts) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![room.room_id.as_str(), room.version, room.creator.as_str(), room.is_public, now_ms()],
    )?;
    Ok(())
}

impl FederatedRoomStore for SqliteStore {
    fn add_outliers(&self, events: Vec<Outlier>) -> StoreResult<()> {
        if events.is_empty() {
            return Ok(());
        }
        self.db.write(move |ctx| insert_outliers(ctx, &events))
    }

    fn known_events(&self, ids: &[OwnedEventId]) -> StoreResult<Vec<OwnedEventId>> {
        self.db.read(|c| {
            let mut stmt = c.prepare_cached("SELECT 1 FROM events WHERE event_id = ?1")?;
            let mut out = Vec::new();
            for id in ids {
                if stmt.exists([id.as_str()])? {
                    out.push(id.clone());
                }
            }
            Ok(out)
        })
    }

    fn import_room(&self, import: ImportedRoom) -> StoreResult<i64> {
        self.db.write(move |ctx| {
            let ImportedRoom {
                room,
                outliers,
                state,
                join,
            } = &import;
            insert_room(ctx, room)?;
            insert_outliers(ctx, outliers)?;
            // The state before the join takes one position of its own, so "state before the
            // join event" (state at join pos - 1) is exactly the imported state.
            let pos = ctx.next_pos();
            let tx = ctx.tx;
            {
                let mut delta = tx.prepare_cached(
                    "INSERT OR REPLACE INTO state_deltas (room_id, type, state_key, pos, event_id) VALUES (?1, ?2, ?3, ?4, ?5)",
                )?;
                let mut member = tx.prepare_cached(
                    "INSERT INTO memberships (room_id, user_id, membership, event_id, pos, forgotten) VALUES (?1, ?2, ?3, ?4, ?5, 0)
                     ON CONFLICT (room_id, user_id) DO UPDATE SET membership = excluded.membership,
                       event_id = excluded.event_id, pos = excluded.pos, forgotten = 0",
                )?;
                for s in state {
                    delta.execute(params![
                        room.room_id.as_str(),
                        s.kind,
                        s.state_key,
                        pos,
                        s.event_id.as_str()
                    ])?;
                    if let Some(m) = &s.membership {
                        member.execute(params![
                            room.room_id.as_str(),
                            s.state_key,
                            m,
                            s.event_id.as_str(),
                            pos
                        ])?;
                    }
                }
            }
            tx.execute(
                "DELETE FROM forward_extremities WHERE room_id = ?1",
                [room.room_id.as_str()],
            )?;
            // An earlier copy of the join (e.g. an outlier) would block the timeline insert.
            tx.execute(
                "DELETE FROM events WHERE event_id = ?1 AND pos IS NULL",
                [join.event_id.as_str()],
            )?;
            insert_event(ctx, join)
        })
    }

    fn store_remote_invite(
        &self,
        room: NewRoom,
        invite: NewEvent,
        invite_state_json: String,
    ) -> StoreResult<i64> {
        self.db.write(move |ctx| {
            insert_room(ctx, &room)?;
            let user = invite
                .state_key
                .clone()
                .ok_or_else(|| StoreError::Corrupt("invite without state_key".into()))?;
            ctx.tx.execute(
                "INSERT OR REPLACE INTO remote_invites (room_id, user_id, event_id, invite_state) VALUES (?1, ?2, ?3, ?4)",
                params![room.room_id.as_str(), user, invite.event_id.as_str(), invite_state_json],
            )?;
            let exists: bool = ctx
                .tx
                .prepare_cached("SELECT 1 FROM events WHERE event_id = ?1")?
                .exists([invite.event_id.as_str()])?;
            if exists {
                return Err(StoreError::Conflict("invite event"));
            }
            insert_event(ctx, &invite)
        })
    }

    fn timeline_start(&self, room_id: &str) -> StoreResult<(Option<OwnedEventId>, bool)> {
        self.db.read(|c| {
            let first: Option<String> = c
                .query_row(
                    "SELECT event_id FROM events WHERE room_id = ?1 AND pos IS NOT NULL ORDER BY pos ASC LIMIT 1",
                    [room_id],
                    |r| r.get(0),
                )
                .optional()?;
            let create_in_timeline = c
                .prepare_cached(
                    "SELECT 1 FROM events WHERE room_id = ?1 AND type = 'm.room.create' AND pos IS NOT NULL",
                )?
                .exists([room_id])?;
            let first = first
                .map(OwnedEventId::try_from)
                .transpose()
                .map_err(|e| StoreError::Corrupt(e.to_string()))?;
            Ok((first, create_in_timeline))
        })
    }

    fn insert_backfilled(&self, events: Vec<NewEvent>) -> StoreResult<usize> {
        self.db.write(move |ctx| {
            let tx = ctx.tx;
            let min: Option<i64> = tx.query_row("SELECT MIN(pos) FROM events", [], |r| r.get(0))?;
            let mut pos = min.unwrap_or(0).min(0);
            let mut n = 0;
            for ev in &events {
                // An outlier copy (e.g. an auth event) becomes a timeline event.
                let updated = tx.execute(
                    "UPDATE events SET pos = ?2 WHERE event_id = ?1 AND pos IS NULL",
                    params![ev.event_id.as_str(), pos - 1],
                )?;
                if updated == 0 {
                    let inserted = tx.execute(
                        "INSERT OR IGNORE INTO events (event_id, pos, room_id, sender, type, state_key, depth, origin_server_ts, json, unsigned)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                        params![
                            ev.event_id.as_str(), pos - 1, ev.room_id.as_str(), ev.sender.as_str(), ev.kind,
                            ev.state_key, ev.depth, ev.origin_server_ts, ev.json, ev.unsigned
                        ],
                    )?;
                    if inserted == 0 {
                        continue;
                    }
                }
                pos -= 1;
                n += 1;
                if let Some((target, rel_type)) = &ev.relation {
                    tx.execute(
                        "INSERT OR IGNORE INTO event_relations (event_id, relates_to, rel_type) VALUES (?1, ?2, ?3)",
                        params![ev.event_id.as_str(), target.as_str(), rel_type],
                    )?;
                }
            }
            Ok(n)
        })
    }

    fn remote_invite_state(&self, room_id: &str, user_id: &str) -> StoreResult<Option<String>> {
        self.db.read(|c| {
            Ok(c.query_row(
                "SELECT invite_state FROM remote_invites WHERE room_id = ?1 AND user_id = ?2",
                [room_id, user_id],
                |r| r.get(0),
            )
            .optional()?)
        })
    }
}

use crate::store::rooms::NewEvent;
