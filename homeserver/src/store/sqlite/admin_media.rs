//! SQLite side of the admin API's media moderation and registration tokens.

use rusqlite::{OptionalExtension, params};

use super::SqliteStore;
use crate::store::StoreResult;
use crate::store::admin_media::{
    AdminMediaRow, AdminMediaStore, MediaListQuery, MediaOrder, MediaSweep, RegistrationToken,
    TokenUpdate,
};

const MEDIA_COLS: &str = "m.media_id, m.content_type, m.filename, m.size, m.created_ts, \
    (SELECT COALESCE(q.quarantined_by, '') FROM media_quarantine q WHERE q.media_id = m.media_id), \
    EXISTS (SELECT 1 FROM media_protected p WHERE p.media_id = m.media_id), m.uploader";

fn media_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<(AdminMediaRow, String)> {
    Ok((
        AdminMediaRow {
            media_id: r.get(0)?,
            media_type: r.get(1)?,
            upload_name: r.get(2)?,
            media_length: r.get::<_, i64>(3)?.max(0) as u64,
            created_ts: r.get(4)?,
            quarantined_by: r.get(5)?,
            safe_from_quarantine: r.get(6)?,
        },
        r.get(7)?,
    ))
}

fn order_column(o: MediaOrder) -> &'static str {
    match o {
        MediaOrder::MediaId => "m.media_id",
        MediaOrder::UploadName => "m.filename",
        MediaOrder::CreatedTs | MediaOrder::LastAccessTs => "m.created_ts",
        MediaOrder::MediaLength => "m.size",
        MediaOrder::MediaType => "m.content_type",
        MediaOrder::QuarantinedBy => "6",
        MediaOrder::SafeFromQuarantine => "7",
    }
}

fn token_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<RegistrationToken> {
    Ok(RegistrationToken {
        token: r.get(0)?,
        uses_allowed: r.get::<_, Option<i64>>(1)?.map(|n| n.max(0) as u64),
        pending: r.get::<_, i64>(2)?.max(0) as u64,
        completed: r.get::<_, i64>(3)?.max(0) as u64,
        expiry_time: r.get(4)?,
    })
}

const TOKEN_COLS: &str = "token, uses_allowed, pending, completed, expiry_time";

impl AdminMediaStore for SqliteStore {
    fn user_media(
        &self,
        user_id: &str,
        q: &MediaListQuery,
    ) -> StoreResult<(Vec<AdminMediaRow>, u64)> {
        let dir = if q.backwards { "DESC" } else { "ASC" };
        // The media id breaks ties so pages never overlap.
        let sql = format!(
            "SELECT {MEDIA_COLS} FROM media m WHERE m.uploader = ?1 \
             ORDER BY {} {dir}, m.media_id {dir} LIMIT ?2 OFFSET ?3",
            order_column(q.order)
        );
        let limit = i64::try_from(q.limit).unwrap_or(i64::MAX);
        let from = i64::try_from(q.from).unwrap_or(i64::MAX);
        self.db.read(|c| {
            let total: i64 = c.query_row(
                "SELECT COUNT(*) FROM media WHERE uploader = ?1",
                [user_id],
                |r| r.get(0),
            )?;
            let mut st = c.prepare(&sql)?;
            let rows = st
                .query_map(params![user_id, limit, from], media_row)?
                .map(|r| r.map(|(m, _)| m))
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok((rows, total.max(0) as u64))
        })
    }

    fn media_row(&self, media_id: &str) -> StoreResult<Option<(AdminMediaRow, String)>> {
        let sql = format!("SELECT {MEDIA_COLS} FROM media m WHERE m.media_id = ?1");
        self.db
            .read(|c| Ok(c.query_row(&sql, [media_id], media_row).optional()?))
    }

    fn room_media(&self, room_id: &str, mxc_prefix: &str) -> StoreResult<Vec<String>> {
        self.db.read(|c| {
            let mut st = c.prepare(
                "SELECT mxc FROM media_refs WHERE room_id = ?1
                 UNION SELECT ?2 || media_id FROM media_room_bindings WHERE room_id = ?1
                 ORDER BY 1",
            )?;
            let rows = st.query_map(params![room_id, mxc_prefix], |r| r.get(0))?;
            Ok(rows.collect::<rusqlite::Result<Vec<String>>>()?)
        })
    }

    fn quarantine_media(&self, media_ids: &[String], by: &str) -> StoreResult<u64> {
        let (ids, by) = (media_ids.to_vec(), by.to_owned());
        self.db.write(move |ctx| {
            let mut n = 0;
            for id in &ids {
                n += ctx.tx.execute(
                    "INSERT OR IGNORE INTO media_quarantine (media_id, reason, ts, quarantined_by)
                     SELECT media_id, 'admin', ?2, ?3 FROM media WHERE media_id = ?1
                       AND NOT EXISTS (SELECT 1 FROM media_protected WHERE media_id = ?1)",
                    params![id, crate::store::now_ms(), by],
                )? as u64;
            }
            Ok(n)
        })
    }

    fn unquarantine_media(&self, media_id: &str) -> StoreResult<bool> {
        let id = media_id.to_owned();
        self.db.write(move |ctx| {
            Ok(ctx
                .tx
                .execute("DELETE FROM media_quarantine WHERE media_id = ?1", [&id])?
                > 0)
        })
    }

    fn set_media_protected(&self, media_id: &str, protected: bool) -> StoreResult<bool> {
        let id = media_id.to_owned();
        self.db.write(move |ctx| {
            let exists = ctx
                .tx
                .query_row("SELECT 1 FROM media WHERE media_id = ?1", [&id], |_| Ok(()))
                .optional()?
                .is_some();
            if exists && protected {
                ctx.tx.execute(
                    "INSERT OR IGNORE INTO media_protected (media_id) VALUES (?1)",
                    [&id],
                )?;
            } else if exists {
                ctx.tx
                    .execute("DELETE FROM media_protected WHERE media_id = ?1", [&id])?;
            }
            Ok(exists)
        })
    }

    fn user_media_ids(&self, user_id: &str) -> StoreResult<Vec<String>> {
        self.db.read(|c| {
            let mut st = c.prepare("SELECT media_id FROM media WHERE uploader = ?1")?;
            let rows = st.query_map([user_id], |r| r.get(0))?;
            Ok(rows.collect::<rusqlite::Result<Vec<String>>>()?)
        })
    }

    fn media_to_sweep(&self, s: &MediaSweep) -> StoreResult<Vec<String>> {
        let size_gt = i64::try_from(s.size_gt).unwrap_or(i64::MAX);
        self.db.read(|c| {
            let mut st = c.prepare(
                "SELECT m.media_id FROM media m
                 WHERE m.created_ts < ?1 AND m.size > ?2
                   AND NOT EXISTS (SELECT 1 FROM media_protected p WHERE p.media_id = m.media_id)
                   AND (?3 = 0 OR NOT EXISTS
                        (SELECT 1 FROM users u WHERE u.avatar_url = ?4 || m.media_id))
                 ORDER BY m.created_ts",
            )?;
            let rows = st.query_map(
                params![s.before_ts, size_gt, s.keep_profiles, s.mxc_prefix],
                |r| r.get(0),
            )?;
            Ok(rows.collect::<rusqlite::Result<Vec<String>>>()?)
        })
    }

    fn media_under_hold(&self, media_id: &str, mxc: &str) -> StoreResult<bool> {
        self.db.read(|c| {
            Ok(c.query_row(
                "SELECT EXISTS (SELECT 1 FROM media m JOIN legal_holds h
                                  ON h.kind = 'user' AND h.target = m.uploader
                                WHERE m.media_id = ?1)
                     OR EXISTS (SELECT 1 FROM media_room_bindings b JOIN legal_holds h
                                  ON h.kind = 'room' AND h.target = b.room_id
                                WHERE b.media_id = ?1)
                     OR EXISTS (SELECT 1 FROM media_refs r JOIN legal_holds h
                                  ON h.kind = 'room' AND h.target = r.room_id
                                WHERE r.mxc = ?2)",
                params![media_id, mxc],
                |r| r.get(0),
            )?)
        })
    }

    fn registration_tokens(&self) -> StoreResult<Vec<RegistrationToken>> {
        let sql = format!("SELECT {TOKEN_COLS} FROM registration_tokens ORDER BY token");
        self.db.read(|c| {
            let mut st = c.prepare(&sql)?;
            let rows = st.query_map([], token_row)?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
    }

    fn registration_token(&self, token: &str) -> StoreResult<Option<RegistrationToken>> {
        let sql = format!("SELECT {TOKEN_COLS} FROM registration_tokens WHERE token = ?1");
        self.db
            .read(|c| Ok(c.query_row(&sql, [token], token_row).optional()?))
    }

    fn insert_registration_token(&self, t: &RegistrationToken) -> StoreResult<bool> {
        let t = t.clone();
        self.db.write(move |ctx| {
            Ok(ctx.tx.execute(
                "INSERT OR IGNORE INTO registration_tokens
                   (token, uses_allowed, pending, completed, expiry_time) VALUES (?1, ?2, 0, 0, ?3)",
                params![t.token, t.uses_allowed.map(|n| n as i64), t.expiry_time],
            )? == 1)
        })
    }

    fn update_registration_token(
        &self,
        token: &str,
        u: &TokenUpdate,
    ) -> StoreResult<Option<RegistrationToken>> {
        let (token, u) = (token.to_owned(), u.clone());
        let sql = format!("SELECT {TOKEN_COLS} FROM registration_tokens WHERE token = ?1");
        self.db.write(move |ctx| {
            if let Some(n) = u.uses_allowed {
                ctx.tx.execute(
                    "UPDATE registration_tokens SET uses_allowed = ?2 WHERE token = ?1",
                    params![token, n.map(|n| n as i64)],
                )?;
            }
            if let Some(t) = u.expiry_time {
                ctx.tx.execute(
                    "UPDATE registration_tokens SET expiry_time = ?2 WHERE token = ?1",
                    params![token, t],
                )?;
            }
            Ok(ctx.tx.query_row(&sql, [&token], token_row).optional()?)
        })
    }

    fn delete_registration_token(&self, token: &str) -> StoreResult<bool> {
        let token = token.to_owned();
        self.db.write(move |ctx| {
            Ok(ctx
                .tx
                .execute("DELETE FROM registration_tokens WHERE token = ?1", [&token])?
                == 1)
        })
    }

    fn reserve_registration_token(&self, token: &str, now: i64) -> StoreResult<bool> {
        let token = token.to_owned();
        self.db.write(move |ctx| {
            Ok(ctx.tx.execute(
                "UPDATE registration_tokens SET pending = pending + 1
                 WHERE token = ?1
                   AND (uses_allowed IS NULL OR pending + completed < uses_allowed)
                   AND (expiry_time IS NULL OR expiry_time > ?2)",
                params![token, now],
            )? == 1)
        })
    }

    fn complete_registration_token(&self, token: &str) -> StoreResult<()> {
        let token = token.to_owned();
        self.db.write(move |ctx| {
            ctx.tx.execute(
                "UPDATE registration_tokens SET pending = MAX(pending - 1, 0),
                   completed = completed + 1 WHERE token = ?1",
                [&token],
            )?;
            Ok(())
        })
    }

    fn release_registration_token(&self, token: &str) -> StoreResult<()> {
        let token = token.to_owned();
        self.db.write(move |ctx| {
            ctx.tx.execute(
                "UPDATE registration_tokens SET pending = MAX(pending - 1, 0) WHERE token = ?1",
                [&token],
            )?;
            Ok(())
        })
    }
}
