//! E2EE keys on SQLite: device, one-time, fallback and cross-signing keys, signatures, and the
//! device-list change stream (one row per user: the latest position it changed at).

use rusqlite::{OptionalExtension, params};

use super::SqliteStore;
use super::db::WriteCtx;
use crate::store::keys::{ClaimedKey, KeyStore, KeyUpload, SignatureRow};
use crate::store::{StoreError, StoreResult};

/// Records a device-list change for `user` at a new position, inside the caller's write job.
/// Device deletion and logout call this too, so other members learn the device is gone.
pub(super) fn mark_changed(ctx: &mut WriteCtx<'_>, user: &str) -> StoreResult<i64> {
    let pos = ctx.next_pos();
    ctx.tx.execute(
        "INSERT INTO device_list_changes (user_id, pos) VALUES (?1, ?2)
         ON CONFLICT (user_id) DO UPDATE SET pos = excluded.pos",
        params![user, pos],
    )?;
    Ok(pos)
}

fn rows<T>(
    c: &rusqlite::Connection,
    sql: &str,
    p: impl rusqlite::Params,
    f: impl FnMut(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
) -> StoreResult<Vec<T>> {
    let mut stmt = c.prepare(sql)?;
    let out = stmt.query_map(p, f)?.collect::<Result<Vec<_>, _>>()?;
    Ok(out)
}

impl KeyStore for SqliteStore {
    fn upload_keys(&self, user_id: &str, device_id: &str, upload: KeyUpload) -> StoreResult<()> {
        let (u, d) = (user_id.to_owned(), device_id.to_owned());
        self.db.write(move |ctx| {
            if let Some(json) = &upload.device_keys {
                ctx.tx.execute(
                    "INSERT INTO device_keys (user_id, device_id, key_json) VALUES (?1, ?2, ?3)
                     ON CONFLICT (user_id, device_id) DO UPDATE SET key_json = excluded.key_json",
                    params![u, d, json],
                )?;
                mark_changed(ctx, &u)?;
            }
            for (alg, id, json) in &upload.one_time_keys {
                let existing: Option<String> = ctx
                    .tx
                    .query_row(
                        "SELECT key_json FROM one_time_keys
                         WHERE user_id = ?1 AND device_id = ?2 AND algorithm = ?3 AND key_id = ?4",
                        params![u, d, alg, id],
                        |r| r.get(0),
                    )
                    .optional()?;
                match existing {
                    Some(old) if same_json(&old, json) => {}
                    Some(_) => return Err(StoreError::Conflict("one-time key")),
                    None => {
                        ctx.tx.execute(
                            "INSERT INTO one_time_keys (user_id, device_id, algorithm, key_id, key_json)
                             VALUES (?1, ?2, ?3, ?4, ?5)",
                            params![u, d, alg, id, json],
                        )?;
                    }
                }
            }
            for (alg, id, json) in &upload.fallback_keys {
                ctx.tx.execute(
                    "INSERT INTO fallback_keys (user_id, device_id, algorithm, key_id, key_json, used)
                     VALUES (?1, ?2, ?3, ?4, ?5, 0)
                     ON CONFLICT (user_id, device_id, algorithm) DO UPDATE SET
                       key_id = excluded.key_id, key_json = excluded.key_json, used = 0",
                    params![u, d, alg, id, json],
                )?;
            }
            Ok(())
        })
    }

    fn device_keys(&self, user_id: &str, device_id: &str) -> StoreResult<Option<String>> {
        self.db.read(|c| {
            Ok(c.query_row(
                "SELECT key_json FROM device_keys WHERE user_id = ?1 AND device_id = ?2",
                [user_id, device_id],
                |r| r.get(0),
            )
            .optional()?)
        })
    }

    fn all_device_keys(&self, user_id: &str) -> StoreResult<Vec<(String, String)>> {
        self.db.read(|c| {
            rows(
                c,
                "SELECT device_id, key_json FROM device_keys WHERE user_id = ?1",
                [user_id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
        })
    }

    fn one_time_key_counts(
        &self,
        user_id: &str,
        device_id: &str,
    ) -> StoreResult<Vec<(String, u64)>> {
        self.db.read(|c| {
            rows(
                c,
                "SELECT algorithm, COUNT(*) FROM one_time_keys
                 WHERE user_id = ?1 AND device_id = ?2 GROUP BY algorithm",
                [user_id, device_id],
                |r| Ok((r.get(0)?, r.get::<_, i64>(1)? as u64)),
            )
        })
    }

    fn unused_fallback_algorithms(
        &self,
        user_id: &str,
        device_id: &str,
    ) -> StoreResult<Vec<String>> {
        self.db.read(|c| {
            rows(
                c,
                "SELECT algorithm FROM fallback_keys
                 WHERE user_id = ?1 AND device_id = ?2 AND used = 0 ORDER BY algorithm",
                [user_id, device_id],
                |r| r.get(0),
            )
        })
    }

    fn claim_key(
        &self,
        user_id: &str,
        device_id: &str,
        algorithm: &str,
    ) -> StoreResult<Option<ClaimedKey>> {
        let (u, d, a) = (
            user_id.to_owned(),
            device_id.to_owned(),
            algorithm.to_owned(),
        );
        self.db.write(move |ctx| {
            // Select and delete inside the writer: two claimers never get the same key.
            let found: Option<(String, String)> = ctx
                .tx
                .query_row(
                    "SELECT key_id, key_json FROM one_time_keys
                     WHERE user_id = ?1 AND device_id = ?2 AND algorithm = ?3
                     ORDER BY key_id LIMIT 1",
                    params![u, d, a],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()?;
            if let Some((id, json)) = found {
                ctx.tx.execute(
                    "DELETE FROM one_time_keys
                     WHERE user_id = ?1 AND device_id = ?2 AND algorithm = ?3 AND key_id = ?4",
                    params![u, d, a, id],
                )?;
                return Ok(Some((format!("{a}:{id}"), json)));
            }
            let fallback: Option<(String, String)> = ctx
                .tx
                .query_row(
                    "SELECT key_id, key_json FROM fallback_keys
                     WHERE user_id = ?1 AND device_id = ?2 AND algorithm = ?3",
                    params![u, d, a],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()?;
            if let Some((id, json)) = fallback {
                ctx.tx.execute(
                    "UPDATE fallback_keys SET used = 1
                     WHERE user_id = ?1 AND device_id = ?2 AND algorithm = ?3",
                    params![u, d, a],
                )?;
                return Ok(Some((format!("{a}:{id}"), json)));
            }
            Ok(None)
        })
    }

    fn cross_signing_keys(&self, user_id: &str) -> StoreResult<Vec<(String, String)>> {
        self.db.read(|c| {
            rows(
                c,
                "SELECT key_type, key_json FROM cross_signing_keys WHERE user_id = ?1",
                [user_id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
        })
    }

    fn set_cross_signing_keys(
        &self,
        user_id: &str,
        keys: Vec<(String, String, String)>,
    ) -> StoreResult<()> {
        let u = user_id.to_owned();
        self.db.write(move |ctx| {
            for (ty, public, json) in &keys {
                ctx.tx.execute(
                    "INSERT INTO cross_signing_keys (user_id, key_type, public_key, key_json)
                     VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT (user_id, key_type) DO UPDATE SET
                       public_key = excluded.public_key, key_json = excluded.key_json",
                    params![u, ty, public, json],
                )?;
            }
            mark_changed(ctx, &u)?;
            Ok(())
        })
    }

    fn signatures_of(&self, target_user: &str) -> StoreResult<Vec<SignatureRow>> {
        self.db.read(|c| {
            rows(
                c,
                "SELECT target_key, signer_user, signer_key_id, signature FROM key_signatures
                 WHERE target_user = ?1",
                [target_user],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
        })
    }

    fn add_signatures(&self, target_user: &str, signatures: Vec<SignatureRow>) -> StoreResult<()> {
        let u = target_user.to_owned();
        self.db.write(move |ctx| {
            for (key, signer, key_id, sig) in &signatures {
                ctx.tx.execute(
                    "INSERT INTO key_signatures
                       (target_user, target_key, signer_user, signer_key_id, signature)
                     VALUES (?1, ?2, ?3, ?4, ?5)
                     ON CONFLICT (target_user, target_key, signer_user, signer_key_id)
                     DO UPDATE SET signature = excluded.signature",
                    params![u, key, signer, key_id, sig],
                )?;
            }
            mark_changed(ctx, &u)?;
            Ok(())
        })
    }

    fn mark_device_list_changed(&self, user_id: &str) -> StoreResult<i64> {
        let u = user_id.to_owned();
        self.db.write(move |ctx| mark_changed(ctx, &u))
    }

    fn device_lists_changed(
        &self,
        user_ids: &[String],
        since: i64,
        upto: i64,
    ) -> StoreResult<Vec<String>> {
        self.db.read(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT 1 FROM device_list_changes WHERE user_id = ?1 AND pos > ?2 AND pos <= ?3",
            )?;
            let mut out = Vec::new();
            for u in user_ids {
                if stmt.exists(params![u, since, upto])? {
                    out.push(u.clone());
                }
            }
            Ok(out)
        })
    }
}

/// Key JSON compared as values, so key order and whitespace do not make a duplicate differ.
fn same_json(a: &str, b: &str) -> bool {
    match (
        serde_json::from_str::<serde_json::Value>(a),
        serde_json::from_str::<serde_json::Value>(b),
    ) {
        (Ok(x), Ok(y)) => x == y,
        _ => a == b,
    }
}
