//! SQLite side of the console's lists.

use super::SqliteStore;
use crate::store::StoreResult;
use crate::store::console::{ConsoleStore, QuarantinedMedia};

impl ConsoleStore for SqliteStore {
    fn retention_overrides(&self) -> StoreResult<Vec<(String, String)>> {
        self.db.read(|c| {
            // The latest m.room.retention delta per room (the one in force).
            let mut stmt = c.prepare(
                "SELECT d.room_id, json_extract(e.json, '$.content') FROM state_deltas d
                 JOIN events e ON e.event_id = d.event_id
                 WHERE d.type = 'm.room.retention' AND d.state_key = ''
                   AND d.pos = (SELECT MAX(d2.pos) FROM state_deltas d2
                                WHERE d2.room_id = d.room_id AND d2.type = 'm.room.retention'
                                  AND d2.state_key = '')
                 ORDER BY d.room_id",
            )?;
            let rows = stmt
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<Result<_, _>>()?;
            Ok(rows)
        })
    }

    fn quarantined_media(&self, limit: usize) -> StoreResult<Vec<QuarantinedMedia>> {
        self.db.read(|c| {
            let mut stmt = c.prepare(
                "SELECT q.media_id, m.uploader, m.content_type, m.size, q.reason, q.ts
                 FROM media_quarantine q JOIN media m ON m.media_id = q.media_id
                 ORDER BY q.ts DESC LIMIT ?1",
            )?;
            let rows = stmt
                .query_map([limit as i64], |r| {
                    Ok(QuarantinedMedia {
                        media_id: r.get(0)?,
                        uploader: r.get(1)?,
                        content_type: r.get(2)?,
                        size: r.get(3)?,
                        reason: r.get(4)?,
                        ts: r.get(5)?,
                    })
                })?
                .collect::<Result<_, _>>()?;
            Ok(rows)
        })
    }
}
