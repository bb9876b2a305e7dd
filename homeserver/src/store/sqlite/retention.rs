//! Retention and legal holds on SQLite. `secure_delete` is on for every connection (db.rs), so
//! deleted and overwritten cells are zeroed in the database pages; `reclaim_space` then returns
//! free pages (incremental vacuum) and truncates the WAL so no old page copy survives in either
//! file (`Db::reclaim`).

use rusqlite::{OptionalExtension, params};

use super::SqliteStore;
use super::rooms::collect;
use crate::store::StoreResult;
use crate::store::retention::{Candidate, Cursor, Hold, HoldKind, Minimised, RetentionStore};

/// Senders and rooms under a legal hold are never purged.
const NOT_HELD_SENDER: &str =
    "e.sender NOT IN (SELECT target FROM legal_holds WHERE kind = 'user')";
const NOT_MINIMISED: &str = "e.event_id NOT IN (SELECT event_id FROM retention_minimised)";
/// The row is needed: state (auth chains, history), a forward extremity (the next event's
/// prev_events), or the redaction of an event that is still stored.
const KEEP_ROW: &str = "(e.state_key IS NOT NULL
     OR EXISTS (SELECT 1 FROM forward_extremities f WHERE f.room_id = e.room_id AND f.event_id = e.event_id)
     OR (e.type = 'm.room.redaction' AND EXISTS (SELECT 1 FROM events t WHERE t.event_id =
         coalesce(json_extract(e.json, '$.content.redacts'), json_extract(e.json, '$.redacts')))))";

/// Not the room's current state: the latest state delta of its key does not name it. Unlike
/// comparing positions, this holds for backfilled (negative) and outlier (no) positions too.
const NOT_CURRENT_STATE: &str = "NOT EXISTS (SELECT 1 FROM state_deltas d
     WHERE d.room_id = e.room_id AND d.type = e.type AND d.state_key = e.state_key
       AND d.event_id = e.event_id
       AND NOT EXISTS (SELECT 1 FROM state_deltas d2 WHERE d2.room_id = d.room_id
           AND d2.type = d.type AND d2.state_key = d.state_key AND d2.pos > d.pos))";

/// Runs a paged scan from `after`: positioned events (`{AFTER}` is `e.pos > ?`, ordered by
/// position), then, once those are exhausted, outliers (`e.pos IS NULL AND e.event_id > ?`,
/// ordered by id). `run(sql_after, order, after_value, limit)` runs one phase.
fn scan<T>(
    after: &Cursor,
    limit: usize,
    mut run: impl FnMut(&str, &str, rusqlite::types::Value, usize) -> StoreResult<Vec<T>>,
) -> StoreResult<Vec<T>> {
    const OUTLIERS: (&str, &str) = ("e.pos IS NULL AND e.event_id > ?", "e.event_id");
    let mut out = match after {
        Cursor::Pos(p) => run("e.pos > ?", "e.pos", (*p).into(), limit)?,
        Cursor::Outlier(id) => {
            return run(OUTLIERS.0, OUTLIERS.1, id.clone().into(), limit);
        }
    };
    if out.len() < limit {
        let more = run(
            OUTLIERS.0,
            OUTLIERS.1,
            String::new().into(),
            limit - out.len(),
        )?;
        out.extend(more);
    }
    Ok(out)
}

fn candidate(r: &rusqlite::Row<'_>) -> rusqlite::Result<Candidate> {
    Ok(Candidate {
        event_id: r.get(0)?,
        pos: r.get(1)?,
        kind: r.get(2)?,
        state_key: r.get(3)?,
        json: r.get(4)?,
        unsigned: r.get(5)?,
        keep_row: r.get(6)?,
        room_id: r.get(7)?,
    })
}

fn hold_kind(s: &str) -> HoldKind {
    if s == "user" {
        HoldKind::User
    } else {
        HoldKind::Room
    }
}

impl RetentionStore for SqliteStore {
    fn rooms_with_versions(&self) -> StoreResult<Vec<(String, String)>> {
        self.db.read(|c| {
            let mut st = c.prepare("SELECT room_id, room_version FROM rooms ORDER BY room_id")?;
            collect(st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?)
        })
    }

    fn room_retention_content(&self, room_id: &str) -> StoreResult<Option<String>> {
        self.db.read(|c| {
            Ok(c.query_row(
                "SELECT json_extract(e.json, '$.content') FROM state_deltas d
                 JOIN events e ON e.event_id = d.event_id
                 WHERE d.room_id = ?1 AND d.type = 'm.room.retention' AND d.state_key = ''
                 ORDER BY d.pos DESC LIMIT 1",
                [room_id],
                |r| r.get(0),
            )
            .optional()?)
        })
    }

    fn expired_events(
        &self,
        room_id: &str,
        before_ts: i64,
        after: &Cursor,
        limit: usize,
    ) -> StoreResult<Vec<Candidate>> {
        self.db.read(|c| {
            scan(after, limit, |cond, order, value, limit| {
                let cond = cond.replace('?', "?2");
                let sql = format!(
                    "SELECT e.event_id, e.pos, e.type, e.state_key, e.json, e.unsigned, {KEEP_ROW}, e.room_id
                     FROM events e
                     WHERE e.room_id = ?1 AND {cond} AND e.origin_server_ts < ?3
                       -- Stop the pos-ordered scan at the newest expired event (index
                       -- events_room_ts), so a run over a room with nothing expired reads
                       -- almost nothing. Outliers have no position: not limited.
                       AND (e.pos IS NULL OR e.pos <= (SELECT MAX(x.pos) FROM events x
                             WHERE x.room_id = ?1 AND x.origin_server_ts < ?3))
                       AND {NOT_HELD_SENDER} AND {NOT_MINIMISED}
                       AND (e.state_key IS NULL OR {NOT_CURRENT_STATE})
                     ORDER BY {order} LIMIT ?4"
                );
                let mut st = c.prepare(&sql)?;
                collect(st.query_map(
                    params![room_id, value, before_ts, limit as i64],
                    candidate,
                )?)
            })
        })
    }

    fn redacted_originals(
        &self,
        before_ts: i64,
        after: &Cursor,
        limit: usize,
    ) -> StoreResult<Vec<(Candidate, String)>> {
        self.db.read(|c| {
            scan(after, limit, |cond, order, value, limit| {
                let cond = cond.replace('?', "?1");
                let sql = format!(
                    "SELECT e.event_id, e.pos, e.type, e.state_key, e.json, e.unsigned, 1, e.room_id, rm.room_version
                     FROM events e JOIN events r ON r.event_id = e.redacted_by
                     JOIN rooms rm ON rm.room_id = e.room_id
                     WHERE e.redacted_by IS NOT NULL AND {cond} AND r.origin_server_ts < ?2
                       AND {NOT_HELD_SENDER} AND {NOT_MINIMISED}
                       AND e.room_id NOT IN (SELECT target FROM legal_holds WHERE kind = 'room')
                     ORDER BY {order} LIMIT ?3"
                );
                let mut st = c.prepare(&sql)?;
                collect(
                    st.query_map(params![value, before_ts, limit as i64], |r| {
                        Ok((candidate(r)?, r.get(8)?))
                    })?,
                )
            })
        })
    }

    fn purge_events(
        &self,
        delete: Vec<String>,
        minimise: Vec<Minimised>,
        now: i64,
    ) -> StoreResult<(usize, usize)> {
        self.db.write(move |ctx| {
            let tx = ctx.tx;
            let ids = serde_json::to_string(&delete)?;
            tx.execute(
                "DELETE FROM event_push_actions WHERE event_id IN (SELECT value FROM json_each(?1))",
                [&ids],
            )?;
            tx.execute(
                "DELETE FROM receipts WHERE event_id IN (SELECT value FROM json_each(?1))",
                [&ids],
            )?;
            // Minimised content no longer names its files either.
            let all: Vec<&str> = delete
                .iter()
                .map(String::as_str)
                .chain(minimise.iter().map(|m| m.event_id.as_str()))
                .collect();
            tx.execute(
                "DELETE FROM media_refs WHERE event_id IN (SELECT value FROM json_each(?1))",
                [&serde_json::to_string(&all)?],
            )?;
            let mut deleted = 0;
            {
                let mut txn = tx.prepare_cached(
                    "DELETE FROM txn_ids WHERE (user_id, device_id, txn_id) =
                     (SELECT sender, txn_device, txn_id FROM events WHERE event_id = ?1)",
                )?;
                let mut rel = tx.prepare_cached("DELETE FROM event_relations WHERE event_id = ?1")?;
                let mut ev = tx.prepare_cached("DELETE FROM events WHERE event_id = ?1")?;
                for id in &delete {
                    txn.execute([id])?;
                    rel.execute([id])?;
                    deleted += ev.execute([id])?;
                }
            }
            let mut minimised = 0;
            {
                let mut up = tx.prepare_cached("UPDATE events SET json = ?2 WHERE event_id = ?1")?;
                // The state event that replaced it: the next delta of its key after its own
                // (by the delta's position: the event's may be negative or missing).
                let mut next = tx.prepare_cached(
                    "UPDATE events SET unsigned = json_set(unsigned, '$.prev_content', json(?5))
                     WHERE event_id = (SELECT event_id FROM state_deltas WHERE room_id = ?1
                         AND type = ?2 AND state_key = ?3 AND pos > (SELECT MAX(pos)
                             FROM state_deltas WHERE room_id = ?1 AND type = ?2
                             AND state_key = ?3 AND event_id = ?4)
                         ORDER BY pos LIMIT 1)
                       AND json_extract(unsigned, '$.prev_content') IS NOT NULL",
                )?;
                let mut mark = tx.prepare_cached(
                    "INSERT OR REPLACE INTO retention_minimised (event_id, ts) VALUES (?1, ?2)",
                )?;
                for m in &minimise {
                    minimised += up.execute(params![m.event_id, m.json])?;
                    if let Some((kind, key)) = &m.state {
                        next.execute(params![m.room_id, kind, key, m.event_id, m.content])?;
                    }
                    mark.execute(params![m.event_id, now])?;
                }
            }
            Ok((deleted, minimised))
        })
    }

    fn newest_event_ts(&self, room_id: &str) -> StoreResult<Option<i64>> {
        self.db.read(|c| {
            Ok(c.query_row(
                "SELECT MAX(origin_server_ts) FROM events WHERE room_id = ?1",
                [room_id],
                |r| r.get(0),
            )?)
        })
    }

    fn forgotten_rooms(&self, server_name: &str) -> StoreResult<Vec<String>> {
        let suffix = format!(":{server_name}");
        self.db.read(|c| {
            let mut st = c.prepare(
                "SELECT r.room_id FROM rooms r
                 WHERE EXISTS (SELECT 1 FROM memberships m WHERE m.room_id = r.room_id
                               AND substr(m.user_id, -length(?1)) = ?1)
                   AND NOT EXISTS (SELECT 1 FROM memberships m WHERE m.room_id = r.room_id
                               AND substr(m.user_id, -length(?1)) = ?1 AND m.forgotten = 0)
                   AND r.room_id NOT IN (SELECT target FROM legal_holds WHERE kind = 'room')
                   AND NOT EXISTS (SELECT 1 FROM events e JOIN legal_holds h
                               ON h.kind = 'user' AND h.target = e.sender WHERE e.room_id = r.room_id)
                 ORDER BY r.room_id",
            )?;
            collect(st.query_map([&suffix], |r| r.get(0))?)
        })
    }

    fn delete_room(&self, room_id: &str) -> StoreResult<usize> {
        let room_id = room_id.to_owned();
        self.db.write(move |ctx| {
            let tx = ctx.tx;
            for sql in [
                "DELETE FROM txn_ids WHERE event_id IN (SELECT event_id FROM events WHERE room_id = ?1)",
                "DELETE FROM event_relations WHERE event_id IN (SELECT event_id FROM events WHERE room_id = ?1)",
                "DELETE FROM retention_minimised WHERE event_id IN (SELECT event_id FROM events WHERE room_id = ?1)",
                "DELETE FROM event_push_actions WHERE room_id = ?1",
                "DELETE FROM receipts WHERE room_id = ?1",
                "DELETE FROM state_deltas WHERE room_id = ?1",
                "DELETE FROM memberships WHERE room_id = ?1",
                "DELETE FROM forward_extremities WHERE room_id = ?1",
                "DELETE FROM room_aliases WHERE room_id = ?1",
                "DELETE FROM account_data WHERE room_id = ?1",
                "DELETE FROM media_refs WHERE room_id = ?1",
            ] {
                tx.execute(sql, [&room_id])?;
            }
            let n = tx.execute("DELETE FROM events WHERE room_id = ?1", [&room_id])?;
            tx.execute("DELETE FROM rooms WHERE room_id = ?1", [&room_id])?;
            Ok(n)
        })
    }

    fn held_senders_in_room(&self, room_id: &str) -> StoreResult<Vec<String>> {
        self.db.read(|c| {
            let mut st = c.prepare(
                "SELECT DISTINCT h.target FROM legal_holds h
                 WHERE h.kind = 'user'
                   AND EXISTS (SELECT 1 FROM events e WHERE e.room_id = ?1 AND e.sender = h.target)
                 ORDER BY h.target",
            )?;
            collect(st.query_map([room_id], |r| r.get(0))?)
        })
    }

    fn expire_to_device(&self, before_ts: i64, dry_run: bool) -> StoreResult<usize> {
        const OLD: &str = "pos IN (SELECT pos FROM to_device_sent WHERE ts < ?1)";
        if dry_run {
            return self.db.read(|c| {
                let n: i64 = c.query_row(
                    &format!("SELECT COUNT(*) FROM to_device_messages WHERE {OLD}"),
                    [before_ts],
                    |r| r.get(0),
                )?;
                Ok(n as usize)
            });
        }
        self.db.write(move |ctx| {
            let n = ctx.tx.execute(
                &format!("DELETE FROM to_device_messages WHERE {OLD}"),
                [before_ts],
            )?;
            ctx.tx
                .execute("DELETE FROM to_device_sent WHERE ts < ?1", [before_ts])?;
            Ok(n)
        })
    }

    fn expire_outbox(&self, before_ts: i64, dry_run: bool) -> StoreResult<usize> {
        self.expire_outbox_rows(before_ts, dry_run)
    }

    fn erase_report_reasons(&self, before_ts: i64, dry_run: bool) -> StoreResult<usize> {
        self.erase_old_report_reasons(before_ts, dry_run)
    }

    fn expire_remote_invites(&self, before_ts: i64, dry_run: bool) -> StoreResult<usize> {
        self.expire_remote_invite_rows(before_ts, dry_run)
    }

    fn reclaim_space(&self) -> StoreResult<()> {
        self.db.reclaim()
    }

    fn holds(&self) -> StoreResult<Vec<Hold>> {
        self.db.read(|c| {
            let mut st = c.prepare(
                "SELECT kind, target, reason, placed_by, placed_ts FROM legal_holds ORDER BY kind, target",
            )?;
            collect(st.query_map([], |r| {
                Ok(Hold {
                    kind: hold_kind(&r.get::<_, String>(0)?),
                    target: r.get(1)?,
                    reason: r.get(2)?,
                    placed_by: r.get(3)?,
                    placed_ts: r.get(4)?,
                })
            })?)
        })
    }

    fn place_hold(&self, h: Hold) -> StoreResult<bool> {
        self.db.write(move |ctx| {
            Ok(ctx.tx.execute(
                "INSERT OR IGNORE INTO legal_holds (kind, target, reason, placed_by, placed_ts)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![
                    h.kind.as_str(),
                    h.target,
                    h.reason,
                    h.placed_by,
                    h.placed_ts
                ],
            )? == 1)
        })
    }

    fn release_hold(&self, kind: HoldKind, target: &str) -> StoreResult<bool> {
        let target = target.to_owned();
        self.db.write(move |ctx| {
            Ok(ctx.tx.execute(
                "DELETE FROM legal_holds WHERE kind = ?1 AND target = ?2",
                params![kind.as_str(), target],
            )? == 1)
        })
    }
}
