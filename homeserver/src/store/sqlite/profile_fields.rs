//! `ProfileFieldStore` on table `profile_fields` (schema `v11_spec.sql`).

use rusqlite::params;

use super::SqliteStore;
use super::rooms::collect;
use crate::store::StoreResult;
use crate::store::profile_fields::ProfileFieldStore;

impl ProfileFieldStore for SqliteStore {
    fn profile_fields(&self, user_id: &str) -> StoreResult<Vec<(String, String)>> {
        self.db.read(|c| {
            let mut st = c.prepare_cached(
                "SELECT key, value FROM profile_fields WHERE user_id = ?1 ORDER BY key",
            )?;
            collect(st.query_map([user_id], |r| Ok((r.get(0)?, r.get(1)?)))?)
        })
    }

    fn set_profile_field(
        &self,
        user_id: &str,
        key: &str,
        value: &str,
        max_total: usize,
    ) -> StoreResult<bool> {
        let (u, k, v) = (user_id.to_owned(), key.to_owned(), value.to_owned());
        self.db.write(move |ctx| {
            // Everything else the profile holds, in bytes, then this field's new size.
            let others: i64 = ctx.tx.query_row(
                "SELECT COALESCE((SELECT SUM(length(CAST(key AS BLOB)) + length(CAST(value AS BLOB)))
                                    FROM profile_fields WHERE user_id = ?1 AND key != ?2), 0)
                      + COALESCE((SELECT length(CAST(COALESCE(displayname, '') AS BLOB))
                                       + length(CAST(COALESCE(avatar_url, '') AS BLOB))
                                    FROM users WHERE user_id = ?1), 0)",
                params![u, k],
                |r| r.get(0),
            )?;
            if others.max(0) as usize + k.len() + v.len() > max_total {
                return Ok(false);
            }
            ctx.tx.execute(
                "INSERT INTO profile_fields (user_id, key, value) VALUES (?1, ?2, ?3)
                 ON CONFLICT (user_id, key) DO UPDATE SET value = excluded.value",
                params![u, k, v],
            )?;
            Ok(true)
        })
    }

    fn delete_profile_field(&self, user_id: &str, key: &str) -> StoreResult<()> {
        let (u, k) = (user_id.to_owned(), key.to_owned());
        self.db.write(move |ctx| {
            ctx.tx.execute(
                "DELETE FROM profile_fields WHERE user_id = ?1 AND key = ?2",
                params![u, k],
            )?;
            Ok(())
        })
    }
}
