//! MSC3814 dehydrated devices on SQLite: `dehydrated_devices` beside the device's `devices` row.

use rusqlite::{Connection, OptionalExtension, params};

use super::SqliteStore;
use crate::store::dehydrated::{DehydratedDevice, DehydratedDeviceStore};
use crate::store::{StoreError, StoreResult, now_ms};

fn current(c: &Connection, user_id: &str) -> rusqlite::Result<Option<DehydratedDevice>> {
    c.query_row(
        "SELECT device_id, device_data FROM dehydrated_devices WHERE user_id = ?1",
        [user_id],
        |r| {
            Ok(DehydratedDevice {
                device_id: r.get(0)?,
                device_data: r.get(1)?,
            })
        },
    )
    .optional()
}

impl DehydratedDeviceStore for SqliteStore {
    fn put_dehydrated_device(
        &self,
        user_id: &str,
        device_id: &str,
        display_name: Option<&str>,
        device_data: &str,
    ) -> StoreResult<Option<String>> {
        let (u, d, n, data) = (
            user_id.to_owned(),
            device_id.to_owned(),
            display_name.map(str::to_owned),
            device_data.to_owned(),
        );
        self.db.write(move |ctx| {
            let old = current(ctx.tx, &u)?.map(|o| o.device_id);
            if let Some(old) = &old {
                // Cascades to the dehydrated row, keys and queued to-device messages.
                ctx.tx.execute(
                    "DELETE FROM devices WHERE user_id = ?1 AND device_id = ?2",
                    params![u, old],
                )?;
            }
            let taken = ctx
                .tx
                .query_row(
                    "SELECT 1 FROM devices WHERE user_id = ?1 AND device_id = ?2",
                    params![u, d],
                    |_| Ok(()),
                )
                .optional()?;
            if taken.is_some() {
                return Err(StoreError::Conflict("device"));
            }
            let now = now_ms();
            ctx.tx.execute(
                "INSERT INTO devices (user_id, device_id, display_name, created_ts)
                 VALUES (?1, ?2, ?3, ?4)",
                params![u, d, n, now],
            )?;
            ctx.tx.execute(
                "INSERT INTO dehydrated_devices (user_id, device_id, device_data, created_ts)
                 VALUES (?1, ?2, ?3, ?4)",
                params![u, d, data, now],
            )?;
            Ok(old)
        })
    }

    fn dehydrated_device(&self, user_id: &str) -> StoreResult<Option<DehydratedDevice>> {
        self.db.read(|c| Ok(current(c, user_id)?))
    }

    fn delete_dehydrated_device(&self, user_id: &str) -> StoreResult<Option<String>> {
        let u = user_id.to_owned();
        self.db.write(move |ctx| {
            let Some(old) = current(ctx.tx, &u)? else {
                return Ok(None);
            };
            ctx.tx.execute(
                "DELETE FROM devices WHERE user_id = ?1 AND device_id = ?2",
                params![u, old.device_id],
            )?;
            Ok(Some(old.device_id))
        })
    }
}
