//! SQLite side of the admin API's media moderation.

use rusqlite::{OptionalExtension, params};

use super::SqliteStore;
use crate::store::StoreResult;
use crate::store::admin_media::{
    AdminMediaRow, AdminMediaStore, MediaListQuery, MediaOrder, MediaStatsQuery, MediaSweep,
    StatsOrder, UserMediaStats,
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

impl AdminMediaStore for SqliteStore {
    fn media_statistics(&self, q: &MediaStatsQuery) -> StoreResult<(Vec<UserMediaStats>, u64)> {
        let order = match q.order {
            StatsOrder::UserId => "m.uploader",
            StatsOrder::Displayname => "u.displayname",
            StatsOrder::MediaLength => "SUM(m.size)",
            StatsOrder::MediaCount => "COUNT(*)",
        };
        let dir = if q.backwards { "DESC" } else { "ASC" };
        let filter = "m.created_ts >= COALESCE(?1, m.created_ts) \
            AND m.created_ts < COALESCE(?2, m.created_ts + 1) \
            AND (?3 IS NULL OR instr(lower(m.uploader), lower(?3)) > 0 \
                 OR instr(lower(COALESCE(u.displayname, '')), lower(?3)) > 0)";
        let from_users = "FROM media m LEFT JOIN users u ON u.user_id = m.uploader";
        let sql = format!(
            "SELECT m.uploader, u.displayname, COUNT(*), SUM(m.size) {from_users} WHERE {filter} \
             GROUP BY m.uploader ORDER BY {order} {dir}, m.uploader {dir} LIMIT ?4 OFFSET ?5"
        );
        let count = format!("SELECT COUNT(DISTINCT m.uploader) {from_users} WHERE {filter}");
        let limit = i64::try_from(q.limit).unwrap_or(i64::MAX);
        let from = i64::try_from(q.from).unwrap_or(i64::MAX);
        self.db.read(|c| {
            let total: i64 =
                c.query_row(&count, params![q.from_ts, q.until_ts, q.search_term], |r| {
                    r.get(0)
                })?;
            let mut st = c.prepare(&sql)?;
            let rows = st
                .query_map(
                    params![q.from_ts, q.until_ts, q.search_term, limit, from],
                    |r| {
                        Ok(UserMediaStats {
                            user_id: r.get(0)?,
                            displayname: r.get(1)?,
                            media_count: r.get::<_, i64>(2)?.max(0) as u64,
                            media_length: r.get::<_, i64>(3)?.max(0) as u64,
                        })
                    },
                )?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok((rows, total.max(0) as u64))
        })
    }

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
}
