//! SQLite side of subject-access request exports: per-area queries on indexed columns
//! (`events_room_sender`, `media_uploader`), never selecting secrets.

use rusqlite::{Row, params};

use super::SqliteStore;
use crate::store::StoreResult;
use crate::store::sar::{SarCursor, SarEvent, SarMedia, SarSession, SarStore};

/// The page condition after `after` (`?3`: the cursor's value) in the order
/// `pos IS NULL, pos, event_id`.
fn after_cond(after: &SarCursor) -> (&'static str, rusqlite::types::Value) {
    match after {
        SarCursor::Start => ("?3 IS NULL", rusqlite::types::Value::Null),
        SarCursor::Pos(p) => ("(pos IS NULL OR pos > ?3)", (*p).into()),
        SarCursor::Outlier(id) => ("(pos IS NULL AND event_id > ?3)", id.clone().into()),
    }
}

const EVENT_COLS: &str =
    "event_id, room_id, sender, type, state_key, origin_server_ts, json, redacted_by, pos";

fn event(r: &Row<'_>) -> rusqlite::Result<SarEvent> {
    Ok(SarEvent {
        pos: r.get(8)?,
        event_id: r.get(0)?,
        room_id: r.get(1)?,
        sender: r.get(2)?,
        kind: r.get(3)?,
        state_key: r.get(4)?,
        origin_server_ts: r.get(5)?,
        json: r.get(6)?,
        redacted: r.get::<_, Option<String>>(7)?.is_some(),
    })
}

impl SarStore for SqliteStore {
    fn sar_sessions(&self, user_id: &str) -> StoreResult<Vec<SarSession>> {
        self.db.read(|c| {
            let mut stmt = c.prepare(
                "SELECT d.device_id, d.display_name, d.created_ts, d.last_seen_ts, d.last_seen_ip,
                        (SELECT COUNT(*) FROM access_tokens t
                          WHERE t.user_id = d.user_id AND t.device_id = d.device_id)
                 FROM devices d WHERE d.user_id = ?1 ORDER BY d.created_ts",
            )?;
            let rows = stmt
                .query_map([user_id], |r| {
                    Ok(SarSession {
                        device_id: r.get(0)?,
                        display_name: r.get(1)?,
                        created_ts: r.get(2)?,
                        last_seen_ts: r.get(3)?,
                        last_seen_ip: r.get(4)?,
                        access_tokens: r.get(5)?,
                    })
                })?
                .collect::<Result<_, _>>()?;
            Ok(rows)
        })
    }

    fn sar_events_sent(
        &self,
        user_id: &str,
        room_id: &str,
        after: &SarCursor,
        limit: usize,
    ) -> StoreResult<Vec<SarEvent>> {
        let (cond, value) = after_cond(after);
        self.db.read(|c| {
            let mut stmt = c.prepare(&format!(
                "SELECT {EVENT_COLS} FROM events WHERE room_id = ?1 AND sender = ?2 AND {cond}
                 ORDER BY pos IS NULL, pos, event_id LIMIT ?4"
            ))?;
            let rows = stmt
                .query_map(params![room_id, user_id, value, limit as i64], event)?
                .collect::<Result<_, _>>()?;
            Ok(rows)
        })
    }

    fn sar_events_mentioning(
        &self,
        user_id: &str,
        room_id: &str,
        after: &SarCursor,
        limit: usize,
    ) -> StoreResult<Vec<SarEvent>> {
        let (cond, value) = after_cond(after);
        self.db.read(|c| {
            // instr, not LIKE: user ids may hold `_`, a LIKE wildcard.
            let mut stmt = c.prepare(&format!(
                "SELECT {EVENT_COLS} FROM events
                 WHERE room_id = ?1 AND sender != ?2 AND instr(json, ?2) > 0 AND {cond}
                 ORDER BY pos IS NULL, pos, event_id LIMIT ?4"
            ))?;
            let rows = stmt
                .query_map(params![room_id, user_id, value, limit as i64], event)?
                .collect::<Result<_, _>>()?;
            Ok(rows)
        })
    }

    fn sar_media(&self, user_id: &str) -> StoreResult<Vec<SarMedia>> {
        self.db.read(|c| {
            let mut stmt = c.prepare(
                "SELECT m.media_id, m.content_type, m.filename, m.size, m.sha256, m.created_ts,
                        q.media_id IS NOT NULL, b.room_id
                 FROM media m
                 LEFT JOIN media_quarantine q ON q.media_id = m.media_id
                 LEFT JOIN media_room_bindings b ON b.media_id = m.media_id
                 WHERE m.uploader = ?1 ORDER BY m.created_ts",
            )?;
            let rows = stmt
                .query_map([user_id], |r| {
                    Ok(SarMedia {
                        media_id: r.get(0)?,
                        content_type: r.get(1)?,
                        filename: r.get(2)?,
                        size: r.get(3)?,
                        sha256: r.get(4)?,
                        created_ts: r.get(5)?,
                        quarantined: r.get(6)?,
                        bound_to: r.get(7)?,
                    })
                })?
                .collect::<Result<_, _>>()?;
            Ok(rows)
        })
    }
}
