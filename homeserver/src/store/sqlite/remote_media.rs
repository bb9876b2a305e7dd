use rusqlite::{OptionalExtension, params};

use super::SqliteStore;
use crate::store::StoreResult;
use crate::store::remote_media::{RemoteMediaRecord, RemoteMediaStore};

const COLS: &str = "origin, media_id, variant, local_id, content_type, filename, size, sha256,
    fetched_ts, requested_by";

fn record(r: &rusqlite::Row<'_>) -> rusqlite::Result<RemoteMediaRecord> {
    Ok(RemoteMediaRecord {
        origin: r.get(0)?,
        media_id: r.get(1)?,
        variant: r.get(2)?,
        local_id: r.get(3)?,
        content_type: r.get(4)?,
        filename: r.get(5)?,
        size: r.get::<_, i64>(6)? as u64,
        sha256: r.get(7)?,
        fetched_ts: r.get(8)?,
        requested_by: r.get(9)?,
    })
}

impl RemoteMediaStore for SqliteStore {
    fn get_remote_media(
        &self,
        origin: &str,
        media_id: &str,
        variant: &str,
    ) -> StoreResult<Option<RemoteMediaRecord>> {
        self.db.read(|c| {
            Ok(c.query_row(
                &format!(
                    "SELECT {COLS} FROM remote_media_cache
                          WHERE origin = ?1 AND media_id = ?2 AND variant = ?3"
                ),
                params![origin, media_id, variant],
                record,
            )
            .optional()?)
        })
    }

    fn remote_media_fetched_before(
        &self,
        before_ts: i64,
        limit: usize,
    ) -> StoreResult<Vec<RemoteMediaRecord>> {
        self.db.read(|c| {
            let mut st = c.prepare(&format!(
                "SELECT {COLS} FROM remote_media_cache WHERE fetched_ts < ?1
                 ORDER BY fetched_ts LIMIT ?2"
            ))?;
            let rows = st.query_map(params![before_ts, limit as i64], record)?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
    }

    fn insert_remote_media(&self, m: &RemoteMediaRecord) -> StoreResult<bool> {
        let m = m.clone();
        self.db.write(move |ctx| {
            Ok(ctx.tx.execute(
                "INSERT OR IGNORE INTO remote_media_cache (origin, media_id, variant, local_id,
                    content_type, filename, size, sha256, fetched_ts, requested_by)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                params![
                    m.origin,
                    m.media_id,
                    m.variant,
                    m.local_id,
                    m.content_type,
                    m.filename,
                    m.size as i64,
                    m.sha256,
                    m.fetched_ts,
                    m.requested_by
                ],
            )? == 1)
        })
    }

    fn delete_remote_media(
        &self,
        origin: &str,
        media_id: &str,
        variant: &str,
    ) -> StoreResult<bool> {
        let (o, m, v) = (origin.to_owned(), media_id.to_owned(), variant.to_owned());
        self.db.write(move |ctx| {
            Ok(ctx.tx.execute(
                "DELETE FROM remote_media_cache WHERE origin = ?1 AND media_id = ?2 AND variant = ?3",
                params![o, m, v],
            )? == 1)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insert_get_conflict_delete() {
        let (s, _d) = crate::store::sqlite::test_store();
        let rec = RemoteMediaRecord {
            origin: "b.nhs.uk:8448".into(),
            media_id: "abc".into(),
            variant: String::new(),
            local_id: "L1".into(),
            content_type: Some("image/png".into()),
            filename: None,
            size: 3,
            sha256: "00".into(),
            fetched_ts: 1,
            requested_by: "@a:localhost".into(),
        };
        assert!(s.insert_remote_media(&rec).unwrap());
        let again = RemoteMediaRecord {
            local_id: "L2".into(),
            ..rec.clone()
        };
        assert!(!s.insert_remote_media(&again).unwrap(), "first copy wins");
        assert_eq!(
            s.get_remote_media("b.nhs.uk:8448", "abc", "").unwrap(),
            Some(rec)
        );
        assert_eq!(
            s.get_remote_media("b.nhs.uk:8448", "abc", "32x32-crop")
                .unwrap(),
            None
        );
        assert!(s.delete_remote_media("b.nhs.uk:8448", "abc", "").unwrap());
        assert!(!s.delete_remote_media("b.nhs.uk:8448", "abc", "").unwrap());
    }
}
