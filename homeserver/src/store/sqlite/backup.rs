//! Server-side key backup on SQLite. The etag is a counter bumped by every key change.

use rusqlite::{Connection, OptionalExtension, params};

use super::SqliteStore;
use crate::store::StoreResult;
use crate::store::backup::{BackupKey, BackupStore, BackupVersion, ReplaceRule};

fn version_row(
    c: &Connection,
    user: &str,
    version: Option<i64>,
) -> StoreResult<Option<BackupVersion>> {
    let row: Option<(i64, String, i64)> = c
        .query_row(
            "SELECT version, algorithm, etag FROM backup_versions
             WHERE user_id = ?1 AND deleted = 0 AND (?2 IS NULL OR version = ?2)
             ORDER BY version DESC LIMIT 1",
            params![user, version],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .optional()?;
    let Some((version, algorithm, etag)) = row else {
        return Ok(None);
    };
    let count: i64 = c.query_row(
        "SELECT COUNT(*) FROM backup_keys WHERE user_id = ?1 AND version = ?2",
        params![user, version],
        |r| r.get(0),
    )?;
    Ok(Some(BackupVersion {
        version,
        algorithm,
        etag,
        count: count as u64,
    }))
}

fn key_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<BackupKey> {
    Ok(BackupKey {
        room_id: r.get(0)?,
        session_id: r.get(1)?,
        first_message_index: r.get(2)?,
        forwarded_count: r.get(3)?,
        is_verified: r.get(4)?,
        json: r.get(5)?,
    })
}

const KEY_COLUMNS: &str =
    "room_id, session_id, first_message_index, forwarded_count, is_verified, key_json";

fn keys(
    c: &Connection,
    user: &str,
    version: i64,
    room: Option<&str>,
    session: Option<&str>,
) -> StoreResult<Vec<BackupKey>> {
    let mut stmt = c.prepare_cached(&format!(
        "SELECT {KEY_COLUMNS} FROM backup_keys WHERE user_id = ?1 AND version = ?2
         AND (?3 IS NULL OR room_id = ?3) AND (?4 IS NULL OR session_id = ?4)"
    ))?;
    let rows = stmt
        .query_map(params![user, version, room, session], key_from_row)?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

impl BackupStore for SqliteStore {
    fn create_backup_version(&self, user_id: &str, algorithm: &str) -> StoreResult<i64> {
        let (u, a) = (user_id.to_owned(), algorithm.to_owned());
        self.db.write(move |ctx| {
            let next: i64 = ctx.tx.query_row(
                "SELECT COALESCE(MAX(version), 0) + 1 FROM backup_versions WHERE user_id = ?1",
                [&u],
                |r| r.get(0),
            )?;
            ctx.tx.execute(
                "INSERT INTO backup_versions (user_id, version, algorithm) VALUES (?1, ?2, ?3)",
                params![u, next, a],
            )?;
            Ok(next)
        })
    }

    fn backup_version(
        &self,
        user_id: &str,
        version: Option<i64>,
    ) -> StoreResult<Option<BackupVersion>> {
        self.db.read(|c| version_row(c, user_id, version))
    }

    fn update_backup_version(
        &self,
        user_id: &str,
        version: i64,
        algorithm: &str,
    ) -> StoreResult<bool> {
        let (u, a) = (user_id.to_owned(), algorithm.to_owned());
        self.db.write(move |ctx| {
            Ok(ctx.tx.execute(
                "UPDATE backup_versions SET algorithm = ?3
                 WHERE user_id = ?1 AND version = ?2 AND deleted = 0",
                params![u, version, a],
            )? > 0)
        })
    }

    fn delete_backup_version(&self, user_id: &str, version: i64) -> StoreResult<bool> {
        let u = user_id.to_owned();
        self.db.write(move |ctx| {
            let n = ctx.tx.execute(
                "UPDATE backup_versions SET deleted = 1
                 WHERE user_id = ?1 AND version = ?2 AND deleted = 0",
                params![u, version],
            )?;
            ctx.tx.execute(
                "DELETE FROM backup_keys WHERE user_id = ?1 AND version = ?2",
                params![u, version],
            )?;
            Ok(n > 0)
        })
    }

    fn backup_keys(
        &self,
        user_id: &str,
        version: i64,
        room_id: Option<&str>,
        session_id: Option<&str>,
    ) -> StoreResult<Vec<BackupKey>> {
        self.db
            .read(|c| keys(c, user_id, version, room_id, session_id))
    }

    fn put_backup_keys(
        &self,
        user_id: &str,
        version: i64,
        new_keys: Vec<BackupKey>,
        replace: ReplaceRule,
    ) -> StoreResult<Option<BackupVersion>> {
        let u = user_id.to_owned();
        self.db.write(move |ctx| {
            if version_row(ctx.tx, &u, Some(version))?.is_none() {
                return Ok(None);
            }
            let mut changed = false;
            for k in &new_keys {
                let old = keys(ctx.tx, &u, version, Some(&k.room_id), Some(&k.session_id))?;
                if old.first().is_some_and(|old| !replace(old, k)) {
                    continue;
                }
                ctx.tx.execute(
                    &format!(
                        "INSERT OR REPLACE INTO backup_keys (user_id, version, {KEY_COLUMNS})
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"
                    ),
                    params![
                        u,
                        version,
                        k.room_id,
                        k.session_id,
                        k.first_message_index,
                        k.forwarded_count,
                        k.is_verified,
                        k.json
                    ],
                )?;
                changed = true;
            }
            if changed {
                bump_etag(ctx.tx, &u, version)?;
            }
            version_row(ctx.tx, &u, Some(version))
        })
    }

    fn delete_backup_keys(
        &self,
        user_id: &str,
        version: i64,
        room_id: Option<&str>,
        session_id: Option<&str>,
    ) -> StoreResult<Option<BackupVersion>> {
        let (u, r, s) = (
            user_id.to_owned(),
            room_id.map(str::to_owned),
            session_id.map(str::to_owned),
        );
        self.db.write(move |ctx| {
            if version_row(ctx.tx, &u, Some(version))?.is_none() {
                return Ok(None);
            }
            let n = ctx.tx.execute(
                "DELETE FROM backup_keys WHERE user_id = ?1 AND version = ?2
                 AND (?3 IS NULL OR room_id = ?3) AND (?4 IS NULL OR session_id = ?4)",
                params![u, version, r, s],
            )?;
            if n > 0 {
                bump_etag(ctx.tx, &u, version)?;
            }
            version_row(ctx.tx, &u, Some(version))
        })
    }
}

fn bump_etag(c: &Connection, user: &str, version: i64) -> StoreResult<()> {
    c.execute(
        "UPDATE backup_versions SET etag = etag + 1 WHERE user_id = ?1 AND version = ?2",
        params![user, version],
    )?;
    Ok(())
}
