//! To-device messages on SQLite: queued per recipient device at one stream position per send.

use rusqlite::{OptionalExtension, params};

use super::SqliteStore;
use crate::store::StoreResult;
use crate::store::to_device::{Outgoing, ToDeviceRow, ToDeviceStore};

impl ToDeviceStore for SqliteStore {
    fn queue_to_device(
        &self,
        sender: &str,
        sender_device: &str,
        txn_id: &str,
        event_type: &str,
        messages: Vec<Outgoing>,
    ) -> StoreResult<Option<i64>> {
        let (s, sd, t, ty) = (
            sender.to_owned(),
            sender_device.to_owned(),
            txn_id.to_owned(),
            event_type.to_owned(),
        );
        self.db.write(move |ctx| {
            let seen = ctx
                .tx
                .query_row(
                    "SELECT 1 FROM to_device_txns WHERE user_id = ?1 AND device_id = ?2 AND txn_id = ?3",
                    params![s, sd, t],
                    |_| Ok(()),
                )
                .optional()?;
            if seen.is_some() {
                return Ok(None);
            }
            ctx.tx.execute(
                "INSERT INTO to_device_txns (user_id, device_id, txn_id) VALUES (?1, ?2, ?3)",
                params![s, sd, t],
            )?;
            let pos = ctx.next_pos();
            ctx.tx.execute(
                "INSERT INTO to_device_sent (pos, ts) VALUES (?1, ?2)",
                params![pos, crate::store::now_ms()],
            )?;
            // Selecting from `devices` expands `*` and skips unknown devices in one statement.
            for (user, device, content) in &messages {
                ctx.tx.execute(
                    "INSERT OR REPLACE INTO to_device_messages
                       (user_id, device_id, pos, sender, type, content)
                     SELECT user_id, device_id, ?3, ?4, ?5, ?6 FROM devices
                     WHERE user_id = ?1 AND (?2 IS NULL OR device_id = ?2)",
                    params![user, device, pos, s, ty, content],
                )?;
            }
            Ok(Some(pos))
        })
    }

    fn to_device_for(
        &self,
        user_id: &str,
        device_id: &str,
        upto: i64,
        limit: usize,
    ) -> StoreResult<Vec<ToDeviceRow>> {
        self.db.read(|c| {
            let mut stmt = c.prepare(
                "SELECT pos, sender, type, content FROM to_device_messages
                 WHERE user_id = ?1 AND device_id = ?2 AND pos <= ?3 ORDER BY pos LIMIT ?4",
            )?;
            let rows = stmt
                .query_map(params![user_id, device_id, upto, limit as i64], |r| {
                    Ok(ToDeviceRow {
                        pos: r.get(0)?,
                        sender: r.get(1)?,
                        event_type: r.get(2)?,
                        content: r.get(3)?,
                    })
                })?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
    }

    fn ack_to_device(&self, user_id: &str, device_id: &str, upto: i64) -> StoreResult<usize> {
        let (u, d) = (user_id.to_owned(), device_id.to_owned());
        self.db.write(move |ctx| {
            Ok(ctx.tx.execute(
                "DELETE FROM to_device_messages WHERE user_id = ?1 AND device_id = ?2 AND pos <= ?3",
                params![u, d, upto],
            )?)
        })
    }
}
