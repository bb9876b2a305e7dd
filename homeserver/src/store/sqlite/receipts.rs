use rusqlite::{OptionalExtension, params};

use super::SqliteStore;
use crate::store::receipts::{ReceiptRow, ReceiptStore};
use crate::store::{StoreError, StoreResult};

impl ReceiptStore for SqliteStore {
    fn set_receipt(
        &self,
        room_id: &str,
        receipt_type: &str,
        user_id: &str,
        thread_id: &str,
        event_id: &str,
        ts: i64,
    ) -> StoreResult<Option<i64>> {
        let (r, t, u, th, e) = (
            room_id.to_owned(),
            receipt_type.to_owned(),
            user_id.to_owned(),
            thread_id.to_owned(),
            event_id.to_owned(),
        );
        self.db.write(move |ctx| {
            let new_pos: Option<i64> =
                ctx.tx.query_row("SELECT pos FROM events WHERE event_id = ?1 AND room_id = ?2", [&e, &r], |row| row.get(0)).optional()?.flatten();
            let Some(new_pos) = new_pos else { return Err(StoreError::Conflict("unknown event")) };
            let old_pos: Option<i64> = ctx
                .tx
                .query_row(
                    "SELECT e.pos FROM receipts c JOIN events e ON e.event_id = c.event_id
                     WHERE c.room_id = ?1 AND c.receipt_type = ?2 AND c.user_id = ?3 AND c.thread_id = ?4",
                    params![r, t, u, th],
                    |row| row.get(0),
                )
                .optional()?
                .flatten();
            if old_pos.is_some_and(|old| old >= new_pos) {
                return Ok(None);
            }
            let pos = ctx.next_pos();
            ctx.tx.execute(
                "INSERT INTO receipts (room_id, receipt_type, user_id, thread_id, event_id, ts, pos) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                 ON CONFLICT (room_id, receipt_type, user_id, thread_id)
                 DO UPDATE SET event_id = excluded.event_id, ts = excluded.ts, pos = excluded.pos",
                params![r, t, u, th, e, ts, pos],
            )?;
            Ok(Some(pos))
        })
    }

    fn receipts_since(&self, room_id: &str, since: i64, upto: i64) -> StoreResult<Vec<ReceiptRow>> {
        self.db.read(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT receipt_type, user_id, thread_id, event_id, ts FROM receipts
                 WHERE room_id = ?1 AND pos > ?2 AND pos <= ?3",
            )?;
            let rows = stmt
                .query_map(params![room_id, since, upto], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, String>(3)?,
                        r.get(4)?,
                    ))
                })?
                .collect::<Result<Vec<_>, _>>()?;
            rows.into_iter()
                .map(|(receipt_type, u, thread_id, e, ts)| {
                    Ok(ReceiptRow {
                        receipt_type,
                        user_id: u
                            .try_into()
                            .map_err(|e: ruma::IdParseError| StoreError::Corrupt(e.to_string()))?,
                        thread_id,
                        event_id: e
                            .try_into()
                            .map_err(|e: ruma::IdParseError| StoreError::Corrupt(e.to_string()))?,
                        ts,
                    })
                })
                .collect()
        })
    }

    fn read_up_to(&self, room_id: &str, user_id: &str) -> StoreResult<Option<i64>> {
        self.db.read(|c| {
            Ok(c.prepare_cached(
                "SELECT MAX(e.pos) FROM receipts c JOIN events e ON e.event_id = c.event_id
                 WHERE c.room_id = ?1 AND c.user_id = ?2 AND c.receipt_type IN ('m.read', 'm.read.private')",
            )?
            .query_row([room_id, user_id], |r| r.get(0))?)
        })
    }

    fn allocate_pos(&self, apply: Box<dyn FnOnce(i64) + Send>) -> StoreResult<i64> {
        self.db.write(move |ctx| {
            let pos = ctx.next_pos();
            apply(pos);
            Ok(pos)
        })
    }
}
