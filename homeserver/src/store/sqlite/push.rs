use rusqlite::params;

use super::SqliteStore;
use crate::store::push::{NotificationRow, PushActionRow, PushStore, PusherRow};
use crate::store::{StoreError, StoreResult, now_ms};

/// The user's read boundary in a room, as SQL over `?room` and `?user` (named parameters):
/// the later of their latest read receipt and their own latest event (sending counts as reading).
const READ_BOUNDARY: &str = "MAX(
    IFNULL((SELECT MAX(e.pos) FROM receipts c JOIN events e ON e.event_id = c.event_id
            WHERE c.room_id = :room AND c.user_id = :user
              AND c.receipt_type IN ('m.read', 'm.read.private')), 0),
    IFNULL((SELECT MAX(pos) FROM events WHERE room_id = :room AND sender = :user), 0))";

fn corrupt<E: std::fmt::Display>(e: E) -> StoreError {
    StoreError::Corrupt(e.to_string())
}

impl PushStore for SqliteStore {
    fn add_push_actions(
        &self,
        room_id: &str,
        pos: i64,
        event_id: &str,
        ts: i64,
        rows: Vec<PushActionRow>,
    ) -> StoreResult<()> {
        if rows.is_empty() {
            return Ok(());
        }
        let (r, e) = (room_id.to_owned(), event_id.to_owned());
        self.db.write(move |ctx| {
            let mut stmt = ctx.tx.prepare_cached(
                "INSERT OR REPLACE INTO event_push_actions
                 (user_id, room_id, pos, event_id, highlight, actions, ts)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?;
            for row in rows {
                stmt.execute(params![
                    row.user_id,
                    r,
                    pos,
                    e,
                    row.highlight,
                    row.actions,
                    ts
                ])?;
            }
            Ok(())
        })
    }

    fn unread_counts(&self, room_id: &str, user_id: &str, upto: i64) -> StoreResult<(u64, u64)> {
        self.db.read(|c| {
            let sql = format!(
                "SELECT COUNT(*), IFNULL(SUM(highlight), 0) FROM event_push_actions
                 WHERE user_id = :user AND room_id = :room AND pos <= :upto AND pos > {READ_BOUNDARY}"
            );
            let (n, h): (i64, i64) = c.prepare_cached(&sql)?.query_row(
                rusqlite::named_params! { ":room": room_id, ":user": user_id, ":upto": upto },
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?;
            Ok((n as u64, h as u64))
        })
    }

    fn unread_total(&self, user_id: &str) -> StoreResult<u64> {
        self.db.read(|c| {
            let boundary = READ_BOUNDARY.replace(":room", "m.room_id");
            let sql = format!(
                "SELECT IFNULL(SUM((SELECT COUNT(*) FROM event_push_actions a
                     WHERE a.user_id = :user AND a.room_id = m.room_id AND a.pos > {boundary})), 0)
                 FROM memberships m WHERE m.user_id = :user AND m.membership = 'join'"
            );
            let n: i64 = c
                .prepare_cached(&sql)?
                .query_row(rusqlite::named_params! { ":user": user_id }, |r| r.get(0))?;
            Ok(n as u64)
        })
    }

    fn notifications(
        &self,
        user_id: &str,
        before: i64,
        limit: usize,
        only_highlight: bool,
    ) -> StoreResult<Vec<NotificationRow>> {
        self.db.read(|c| {
            let boundary = READ_BOUNDARY.replace(":room", "a.room_id");
            let sql = format!(
                "SELECT a.room_id, a.pos, a.event_id, a.actions, a.ts, a.pos <= {boundary}
                 FROM event_push_actions a
                 WHERE a.user_id = :user AND a.pos < :before AND (:all OR a.highlight)
                 ORDER BY a.pos DESC LIMIT :limit"
            );
            let mut stmt = c.prepare_cached(&sql)?;
            let rows = stmt
                .query_map(
                    rusqlite::named_params! {
                        ":user": user_id, ":before": before,
                        ":all": !only_highlight, ":limit": limit as i64,
                    },
                    |r| {
                        Ok((
                            r.get::<_, String>(0)?,
                            r.get(1)?,
                            r.get::<_, String>(2)?,
                            r.get(3)?,
                            r.get(4)?,
                            r.get(5)?,
                        ))
                    },
                )?
                .collect::<Result<Vec<_>, _>>()?;
            rows.into_iter()
                .map(|(room, pos, event, actions, ts, read)| {
                    Ok(NotificationRow {
                        room_id: room.try_into().map_err(corrupt)?,
                        pos,
                        event_id: event.try_into().map_err(corrupt)?,
                        actions,
                        ts,
                        read,
                    })
                })
                .collect()
        })
    }

    fn set_pusher(
        &self,
        user_id: &str,
        app_id: &str,
        pushkey: &str,
        json: &str,
        append: bool,
    ) -> StoreResult<()> {
        let (u, a, k, j) = (
            user_id.to_owned(),
            app_id.to_owned(),
            pushkey.to_owned(),
            json.to_owned(),
        );
        self.db.write(move |ctx| {
            if !append {
                ctx.tx.execute(
                    "DELETE FROM pushers WHERE app_id = ?1 AND pushkey = ?2 AND user_id != ?3",
                    params![a, k, u],
                )?;
            }
            ctx.tx.execute(
                "INSERT INTO pushers (user_id, app_id, pushkey, json, created_ts)
                 VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (user_id, app_id, pushkey) DO UPDATE SET json = excluded.json",
                params![u, a, k, j, now_ms()],
            )?;
            Ok(())
        })
    }

    fn delete_pusher(&self, user_id: &str, app_id: &str, pushkey: &str) -> StoreResult<bool> {
        let (u, a, k) = (user_id.to_owned(), app_id.to_owned(), pushkey.to_owned());
        self.db.write(move |ctx| {
            let n = ctx.tx.execute(
                "DELETE FROM pushers WHERE user_id = ?1 AND app_id = ?2 AND pushkey = ?3",
                params![u, a, k],
            )?;
            Ok(n > 0)
        })
    }

    fn pushers(&self, user_id: &str) -> StoreResult<Vec<PusherRow>> {
        self.db.read(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT user_id, json FROM pushers WHERE user_id = ?1 ORDER BY created_ts, app_id",
            )?;
            let rows = stmt
                .query_map([user_id], |r| {
                    Ok(PusherRow {
                        user_id: r.get(0)?,
                        json: r.get(1)?,
                    })
                })?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
    }
}
