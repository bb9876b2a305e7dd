use rusqlite::{OptionalExtension, params};

use super::SqliteStore;
use super::rooms::collect;
use crate::store::threepids::{Threepid, ThreepidStore, Validation};
use crate::store::{StoreError, StoreResult};

const VALIDATION_COLS: &str = "sid, client_secret_hash, medium, address, token_hash, send_attempt,
    failed_attempts, created_ts, expires_ts, validated_ts";

fn validation(r: &rusqlite::Row<'_>) -> rusqlite::Result<Validation> {
    Ok(Validation {
        sid: r.get(0)?,
        client_secret_hash: r.get(1)?,
        medium: r.get(2)?,
        address: r.get(3)?,
        token_hash: r.get(4)?,
        send_attempt: r.get::<_, i64>(5)? as u64,
        failed_attempts: r.get(6)?,
        created_ts: r.get(7)?,
        expires_ts: r.get(8)?,
        validated_ts: r.get(9)?,
    })
}

impl ThreepidStore for SqliteStore {
    fn threepid_owner(&self, medium: &str, address: &str) -> StoreResult<Option<String>> {
        self.db.read(|c| {
            Ok(c.query_row(
                "SELECT user_id FROM user_threepids WHERE medium = ?1 AND address = ?2",
                [medium, address],
                |r| r.get(0),
            )
            .optional()?)
        })
    }

    fn threepids_of(&self, user_id: &str) -> StoreResult<Vec<Threepid>> {
        self.db.read(|c| {
            let mut st = c.prepare(
                "SELECT medium, address, validated_ts, added_ts FROM user_threepids
                 WHERE user_id = ?1 ORDER BY added_ts, address",
            )?;
            collect(st.query_map([user_id], |r| {
                Ok(Threepid {
                    medium: r.get(0)?,
                    address: r.get(1)?,
                    validated_ts: r.get(2)?,
                    added_ts: r.get(3)?,
                })
            })?)
        })
    }

    fn current_validation(
        &self,
        medium: &str,
        address: &str,
        client_secret_hash: &str,
        now: i64,
    ) -> StoreResult<Option<Validation>> {
        self.db.read(|c| {
            Ok(c.query_row(
                &format!(
                    "SELECT {VALIDATION_COLS} FROM threepid_validations
                     WHERE address = ?1 AND client_secret_hash = ?2 AND medium = ?3
                       AND expires_ts > ?4
                     ORDER BY created_ts DESC LIMIT 1"
                ),
                params![address, client_secret_hash, medium, now],
                validation,
            )
            .optional()?)
        })
    }

    fn validation(&self, sid: &str) -> StoreResult<Option<Validation>> {
        self.db.read(|c| {
            Ok(c.query_row(
                &format!("SELECT {VALIDATION_COLS} FROM threepid_validations WHERE sid = ?1"),
                [sid],
                validation,
            )
            .optional()?)
        })
    }

    fn put_validation(&self, v: &Validation, now: i64) -> StoreResult<()> {
        let v = v.clone();
        self.db.write(move |ctx| {
            ctx.tx.execute(
                "DELETE FROM threepid_validations WHERE expires_ts <= ?1",
                [now],
            )?;
            ctx.tx.execute(
                &format!(
                    "INSERT OR REPLACE INTO threepid_validations ({VALIDATION_COLS})
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"
                ),
                params![
                    v.sid,
                    v.client_secret_hash,
                    v.medium,
                    v.address,
                    v.token_hash,
                    v.send_attempt as i64,
                    v.failed_attempts,
                    v.created_ts,
                    v.expires_ts,
                    v.validated_ts
                ],
            )?;
            Ok(())
        })
    }

    fn mark_validated(&self, sid: &str, ts: i64, expires_ts: i64) -> StoreResult<()> {
        let sid = sid.to_owned();
        self.db.write(move |ctx| {
            ctx.tx.execute(
                "UPDATE threepid_validations SET validated_ts = ?2, expires_ts = ?3 WHERE sid = ?1",
                params![sid, ts, expires_ts],
            )?;
            Ok(())
        })
    }

    fn count_failed_attempt(&self, sid: &str) -> StoreResult<u32> {
        let sid = sid.to_owned();
        self.db.write(move |ctx| {
            Ok(ctx
                .tx
                .query_row(
                    "UPDATE threepid_validations SET failed_attempts = failed_attempts + 1
                     WHERE sid = ?1 RETURNING failed_attempts",
                    [&sid],
                    |r| r.get(0),
                )
                .optional()?
                .unwrap_or(u32::MAX))
        })
    }

    fn delete_validation(&self, sid: &str) -> StoreResult<()> {
        let sid = sid.to_owned();
        self.db.write(move |ctx| {
            ctx.tx
                .execute("DELETE FROM threepid_validations WHERE sid = ?1", [&sid])?;
            Ok(())
        })
    }

    fn bind_threepid(&self, user_id: &str, v: &Validation, added_ts: i64) -> StoreResult<()> {
        let (user, v) = (user_id.to_owned(), v.clone());
        self.db.write(move |ctx| {
            let n = ctx.tx.execute(
                "INSERT OR IGNORE INTO user_threepids (medium, address, user_id, validated_ts, added_ts)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![
                    v.medium,
                    v.address,
                    user,
                    v.validated_ts.unwrap_or(added_ts),
                    added_ts
                ],
            )?;
            if n == 0 {
                return Err(StoreError::Conflict("threepid"));
            }
            ctx.tx
                .execute("DELETE FROM threepid_validations WHERE sid = ?1", [&v.sid])?;
            Ok(())
        })
    }
}
