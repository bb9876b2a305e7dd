//! E2EE data from other servers on SQLite: `remote_device_lists`, `federation_to_device_seen`
//! (schema v2), and reads of `device_list_changes` / writes of `to_device_messages` (v1).

use rusqlite::{OptionalExtension, params};

use super::SqliteStore;
use crate::store::StoreResult;
use crate::store::remote_e2ee::{CachedDeviceList, RemoteE2eeStore};
use crate::store::to_device::Outgoing;

impl RemoteE2eeStore for SqliteStore {
    fn cached_device_list(&self, user_id: &str) -> StoreResult<Option<CachedDeviceList>> {
        self.db.read(|c| {
            Ok(c.query_row(
                "SELECT fetched_pos, keys_json FROM remote_device_lists WHERE user_id = ?1",
                [user_id],
                |r| {
                    Ok(CachedDeviceList {
                        fetched_pos: r.get(0)?,
                        json: r.get(1)?,
                    })
                },
            )
            .optional()?)
        })
    }

    fn save_device_list(&self, user_id: &str, fetched_pos: i64, json: &str) -> StoreResult<()> {
        let (u, j) = (user_id.to_owned(), json.to_owned());
        self.db.write(move |ctx| {
            ctx.tx.execute(
                "INSERT INTO remote_device_lists (user_id, fetched_pos, keys_json) VALUES (?1, ?2, ?3)
                 ON CONFLICT (user_id) DO UPDATE
                 SET fetched_pos = excluded.fetched_pos, keys_json = excluded.keys_json",
                params![u, fetched_pos, j],
            )?;
            Ok(())
        })
    }

    fn drop_device_list(&self, user_id: &str) -> StoreResult<()> {
        let u = user_id.to_owned();
        self.db.write(move |ctx| {
            ctx.tx
                .execute("DELETE FROM remote_device_lists WHERE user_id = ?1", [u])?;
            Ok(())
        })
    }

    fn device_list_pos(&self, user_id: &str) -> StoreResult<i64> {
        self.db.read(|c| {
            Ok(c.query_row(
                "SELECT pos FROM device_list_changes WHERE user_id = ?1",
                [user_id],
                |r| r.get(0),
            )
            .optional()?
            .unwrap_or(0))
        })
    }

    fn queue_remote_to_device(
        &self,
        origin: &str,
        message_id: &str,
        sender: &str,
        event_type: &str,
        messages: Vec<Outgoing>,
        now_ts: i64,
        forget_before_ts: i64,
    ) -> StoreResult<Option<i64>> {
        let (o, m, s, ty) = (
            origin.to_owned(),
            message_id.to_owned(),
            sender.to_owned(),
            event_type.to_owned(),
        );
        self.db.write(move |ctx| {
            ctx.tx.execute(
                "DELETE FROM federation_to_device_seen WHERE received_ts < ?1",
                [forget_before_ts],
            )?;
            let fresh = ctx.tx.execute(
                "INSERT OR IGNORE INTO federation_to_device_seen (origin, message_id, received_ts)
                 VALUES (?1, ?2, ?3)",
                params![o, m, now_ts],
            )?;
            if fresh == 0 {
                return Ok(None);
            }
            let pos = ctx.next_pos();
            ctx.tx.execute(
                "INSERT INTO to_device_sent (pos, ts) VALUES (?1, ?2)",
                params![pos, now_ts],
            )?;
            // As for local senders: `devices` expands `*` and skips unknown devices.
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::keys::KeyStore;
    use crate::store::sqlite::test_store;

    #[test]
    fn device_list_cache_round_trip() {
        let (s, _d) = test_store();
        assert_eq!(s.cached_device_list("@b:remote").unwrap(), None);
        s.save_device_list("@b:remote", 7, "{}").unwrap();
        s.save_device_list("@b:remote", 9, r#"{"a":1}"#).unwrap();
        let c = s.cached_device_list("@b:remote").unwrap().unwrap();
        assert_eq!((c.fetched_pos, c.json.as_str()), (9, r#"{"a":1}"#));
        s.drop_device_list("@b:remote").unwrap();
        assert_eq!(s.cached_device_list("@b:remote").unwrap(), None);
    }

    #[test]
    fn device_list_pos_follows_changes() {
        let (s, _d) = test_store();
        assert_eq!(s.device_list_pos("@b:remote").unwrap(), 0);
        let p = s.mark_device_list_changed("@b:remote").unwrap();
        assert_eq!(s.device_list_pos("@b:remote").unwrap(), p);
    }

    #[test]
    fn remote_to_device_is_delivered_once_per_message_id() {
        let (s, _d) = test_store();
        let msg = || vec![("@a:localhost".to_owned(), None, "{}".to_owned())];
        let first = s
            .queue_remote_to_device("r", "m1", "@b:r", "m.x", msg(), 1_000, 0)
            .unwrap();
        assert!(first.is_some());
        let again = s
            .queue_remote_to_device("r", "m1", "@b:r", "m.x", msg(), 2_000, 0)
            .unwrap();
        assert_eq!(again, None);
        // The same id from another origin is another message.
        assert!(
            s.queue_remote_to_device("q", "m1", "@b:q", "m.x", msg(), 2_000, 0)
                .unwrap()
                .is_some()
        );
        // Once forgotten, the id is new again.
        assert!(
            s.queue_remote_to_device("r", "m1", "@b:r", "m.x", msg(), 9_000, 5_000)
                .unwrap()
                .is_some()
        );
    }
}
