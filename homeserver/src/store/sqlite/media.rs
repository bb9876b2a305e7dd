use rusqlite::{OptionalExtension, params};

use super::SqliteStore;
use crate::store::media::{MediaAccess, MediaRecord, MediaRef, MediaStore, ThumbnailRecord};
use crate::store::{StoreError, StoreResult};

fn media_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<MediaRecord> {
    let uploader: String = r.get(1)?;
    Ok(MediaRecord {
        media_id: r.get(0)?,
        uploader: uploader.try_into().map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(1, rusqlite::types::Type::Text, Box::new(e))
        })?,
        content_type: r.get(2)?,
        filename: r.get(3)?,
        size: r.get::<_, i64>(4)? as u64,
        sha256: r.get(5)?,
        created_ts: r.get(6)?,
    })
}

fn insert(tx: &rusqlite::Transaction<'_>, m: &MediaRecord) -> StoreResult<()> {
    let n = tx.execute(
        "INSERT OR IGNORE INTO media (media_id, uploader, content_type, filename, size, sha256, created_ts)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![m.media_id, m.uploader.as_str(), m.content_type, m.filename, m.size as i64, m.sha256, m.created_ts],
    )?;
    if n == 0 {
        Err(StoreError::Conflict("media"))
    } else {
        Ok(())
    }
}

impl MediaStore for SqliteStore {
    fn delete_media(&self, media_id: &str) -> StoreResult<bool> {
        let id = media_id.to_owned();
        self.db.write(move |ctx| {
            ctx.tx
                .execute("DELETE FROM media_thumbnails WHERE media_id = ?1", [&id])?;
            ctx.tx
                .execute("DELETE FROM media_room_bindings WHERE media_id = ?1", [&id])?;
            ctx.tx.execute(
                "INSERT OR IGNORE INTO media_pending_deletion (media_id, since_ts) VALUES (?1, ?2)",
                params![id, crate::store::now_ms()],
            )?;
            Ok(ctx
                .tx
                .execute("DELETE FROM media WHERE media_id = ?1", [&id])?
                == 1)
        })
    }

    fn pending_media_deletions(&self) -> StoreResult<Vec<String>> {
        self.db.read(|c| {
            let mut st =
                c.prepare("SELECT media_id FROM media_pending_deletion ORDER BY since_ts")?;
            let rows = st.query_map([], |r| r.get(0))?;
            Ok(rows.collect::<rusqlite::Result<Vec<String>>>()?)
        })
    }

    fn clear_pending_media_deletion(&self, media_id: &str) -> StoreResult<()> {
        let id = media_id.to_owned();
        self.db.write(move |ctx| {
            ctx.tx.execute(
                "DELETE FROM media_pending_deletion WHERE media_id = ?1",
                [&id],
            )?;
            Ok(())
        })
    }

    fn insert_media(&self, m: &MediaRecord) -> StoreResult<()> {
        let m = m.clone();
        self.db.write(move |ctx| insert(ctx.tx, &m))
    }

    fn insert_quarantined_media(&self, m: &MediaRecord, reason: &str) -> StoreResult<()> {
        let (m, reason) = (m.clone(), reason.to_owned());
        self.db.write(move |ctx| {
            insert(ctx.tx, &m)?;
            ctx.tx.execute(
                "INSERT INTO media_quarantine (media_id, reason, ts) VALUES (?1, ?2, ?3)",
                params![m.media_id, reason, m.created_ts],
            )?;
            Ok(())
        })
    }

    fn media_access(&self, media_id: &str) -> StoreResult<MediaAccess> {
        self.db.read(|c| {
            let bound_room = c
                .query_row(
                    "SELECT room_id FROM media_room_bindings WHERE media_id = ?1",
                    [media_id],
                    |r| r.get(0),
                )
                .optional()?;
            let quarantined = c
                .query_row(
                    "SELECT 1 FROM media_quarantine WHERE media_id = ?1",
                    [media_id],
                    |_| Ok(()),
                )
                .optional()?
                .is_some();
            Ok(MediaAccess {
                bound_room,
                quarantined,
            })
        })
    }

    fn bind_media(
        &self,
        media_ids: &[String],
        sender: &str,
        room_id: &str,
        event_id: &str,
        ts: i64,
    ) -> StoreResult<usize> {
        let ids = media_ids.to_vec();
        let (sender, room, event) = (sender.to_owned(), room_id.to_owned(), event_id.to_owned());
        self.db.write(move |ctx| {
            let mut n = 0;
            for id in &ids {
                // Someone else's event never binds (or hijacks) a file it merely links to.
                n += ctx.tx.execute(
                    "INSERT OR IGNORE INTO media_room_bindings (media_id, room_id, event_id, bound_ts)
                     SELECT ?1, ?2, ?3, ?4 WHERE NOT EXISTS
                       (SELECT 1 FROM media WHERE media_id = ?1 AND uploader != ?5)",
                    params![id, room, event, ts, sender],
                )?;
            }
            Ok(n)
        })
    }

    fn add_media_refs(
        &self,
        mxcs: &[String],
        event_id: &str,
        room_id: &str,
        sender: &str,
    ) -> StoreResult<()> {
        let mxcs = mxcs.to_vec();
        let (event, room, sender) = (event_id.to_owned(), room_id.to_owned(), sender.to_owned());
        self.db.write(move |ctx| {
            let mut st = ctx.tx.prepare_cached(
                "INSERT OR IGNORE INTO media_refs (mxc, event_id, room_id, sender)
                 VALUES (?1, ?2, ?3, ?4)",
            )?;
            for mxc in &mxcs {
                st.execute(params![mxc, event, room, sender])?;
            }
            Ok(())
        })
    }

    fn media_refs(&self, mxc: &str) -> StoreResult<Vec<MediaRef>> {
        self.db.read(|c| {
            // Joined with events so a reference outlives no event, whatever deleted it.
            let mut st = c.prepare_cached(
                "SELECT r.event_id, r.room_id, r.sender FROM media_refs r
                 JOIN events e ON e.event_id = r.event_id
                 WHERE r.mxc = ?1
                   AND r.event_id NOT IN (SELECT event_id FROM retention_minimised)
                 ORDER BY e.pos",
            )?;
            let rows = st.query_map([mxc], |r| {
                Ok(MediaRef {
                    event_id: r.get(0)?,
                    room_id: r.get(1)?,
                    sender: r.get(2)?,
                })
            })?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
    }

    fn unreferenced_media_before(
        &self,
        mxc_prefix: &str,
        before_ts: i64,
        limit: usize,
    ) -> StoreResult<Vec<String>> {
        self.db.read(|c| {
            let mut st = c.prepare(
                "SELECT m.media_id FROM media m
                 WHERE m.created_ts < ?2
                   AND coalesce(m.content_type, 'application/octet-stream') = 'application/octet-stream'
                   AND NOT EXISTS (SELECT 1 FROM media_refs r WHERE r.mxc = ?1 || m.media_id)
                   AND NOT EXISTS (SELECT 1 FROM users u WHERE u.avatar_url = ?1 || m.media_id)
                   AND NOT EXISTS (SELECT 1 FROM media_quarantine q WHERE q.media_id = m.media_id)
                   AND m.uploader NOT IN (SELECT target FROM legal_holds WHERE kind = 'user')
                   AND NOT EXISTS (SELECT 1 FROM memberships mm JOIN legal_holds h
                       ON h.kind = 'room' AND h.target = mm.room_id WHERE mm.user_id = m.uploader)
                 ORDER BY m.created_ts LIMIT ?3",
            )?;
            let rows = st.query_map(params![mxc_prefix, before_ts, limit as i64], |r| r.get(0))?;
            Ok(rows.collect::<rusqlite::Result<Vec<String>>>()?)
        })
    }

    fn is_profile_avatar(&self, mxc: &str) -> StoreResult<bool> {
        self.db.read(|c| {
            Ok(
                c.query_row("SELECT 1 FROM users WHERE avatar_url = ?1", [mxc], |_| {
                    Ok(())
                })
                .optional()?
                .is_some(),
            )
        })
    }

    fn rebind_media(&self, media_id: &str, to: Option<(&str, &str)>, ts: i64) -> StoreResult<()> {
        let id = media_id.to_owned();
        let to = to.map(|(r, e)| (r.to_owned(), e.to_owned()));
        self.db.write(move |ctx| {
            match to {
                Some((room, event)) => ctx.tx.execute(
                    "INSERT OR REPLACE INTO media_room_bindings (media_id, room_id, event_id, bound_ts)
                     VALUES (?1, ?2, ?3, ?4)",
                    params![id, room, event, ts],
                )?,
                None => ctx
                    .tx
                    .execute("DELETE FROM media_room_bindings WHERE media_id = ?1", [&id])?,
            };
            Ok(())
        })
    }

    fn get_media(&self, media_id: &str) -> StoreResult<Option<MediaRecord>> {
        self.db.read(|c| {
            Ok(c.query_row(
                "SELECT media_id, uploader, content_type, filename, size, sha256, created_ts
                 FROM media WHERE media_id = ?1",
                [media_id],
                media_from_row,
            )
            .optional()?)
        })
    }

    fn put_thumbnail(&self, t: &ThumbnailRecord) -> StoreResult<()> {
        let t = t.clone();
        self.db.write(move |ctx| {
            ctx.tx.execute(
                "INSERT OR REPLACE INTO media_thumbnails (media_id, width, height, method, content_type, size)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![t.media_id, t.width, t.height, t.method, t.content_type, t.size as i64],
            )?;
            Ok(())
        })
    }

    fn get_thumbnail(
        &self,
        media_id: &str,
        width: u32,
        height: u32,
        method: &str,
    ) -> StoreResult<Option<ThumbnailRecord>> {
        self.db.read(|c| {
            Ok(c.query_row(
                "SELECT media_id, width, height, method, content_type, size FROM media_thumbnails
                 WHERE media_id = ?1 AND width = ?2 AND height = ?3 AND method = ?4",
                params![media_id, width, height, method],
                |r| {
                    Ok(ThumbnailRecord {
                        media_id: r.get(0)?,
                        width: r.get(1)?,
                        height: r.get(2)?,
                        method: r.get(3)?,
                        content_type: r.get(4)?,
                        size: r.get::<_, i64>(5)? as u64,
                    })
                },
            )
            .optional()?)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, SqliteStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("t.db"), 2).unwrap();
        (dir, store)
    }

    fn record(id: &str) -> MediaRecord {
        MediaRecord {
            media_id: id.into(),
            uploader: "@alice:example.org".try_into().unwrap(),
            content_type: Some("image/png".into()),
            filename: Some("cat \"1\".png".into()),
            size: 1234,
            sha256: "ab".repeat(32),
            created_ts: 1_700_000_000_000,
        }
    }

    #[test]
    fn media_round_trip_and_conflict() {
        let (_dir, s) = store();
        assert_eq!(s.get_media("abc").unwrap(), None);
        let rec = record("abc");
        s.insert_media(&rec).unwrap();
        assert_eq!(s.get_media("abc").unwrap(), Some(rec.clone()));

        let mut other = record("abc");
        other.size = 1;
        assert!(matches!(
            s.insert_media(&other),
            Err(StoreError::Conflict("media"))
        ));
        assert_eq!(s.get_media("abc").unwrap().unwrap().size, 1234);

        let mut bare = record("def");
        bare.content_type = None;
        bare.filename = None;
        s.insert_media(&bare).unwrap();
        assert_eq!(s.get_media("def").unwrap(), Some(bare));
    }

    #[test]
    fn bindings_first_wins_and_only_the_uploader_binds() {
        let (_dir, s) = store();
        s.insert_media(&record("abc")).unwrap();
        assert_eq!(s.media_access("abc").unwrap(), MediaAccess::default());
        let ids = ["abc".to_owned(), "pending".to_owned()];
        // Bob links Alice's file: no binding for it; the not-yet-uploaded id binds.
        assert_eq!(
            s.bind_media(&ids, "@bob:example.org", "!b:x", "$1", 1)
                .unwrap(),
            1
        );
        assert_eq!(s.media_access("abc").unwrap().bound_room, None);
        assert_eq!(
            s.media_access("pending").unwrap().bound_room.as_deref(),
            Some("!b:x")
        );
        let alice = "@alice:example.org";
        assert_eq!(s.bind_media(&ids, alice, "!a:x", "$2", 2).unwrap(), 1);
        assert_eq!(s.bind_media(&ids, alice, "!c:x", "$3", 3).unwrap(), 0);
        assert_eq!(
            s.media_access("abc").unwrap().bound_room.as_deref(),
            Some("!a:x")
        );

        s.insert_quarantined_media(&record("bad"), "scanner exit 1")
            .unwrap();
        assert!(s.media_access("bad").unwrap().quarantined);
        assert!(!s.media_access("abc").unwrap().quarantined);
        assert!(s.insert_quarantined_media(&record("bad"), "again").is_err());
    }

    #[test]
    fn thumbnail_round_trip() {
        let (_dir, s) = store();
        s.insert_media(&record("abc")).unwrap();
        assert_eq!(s.get_thumbnail("abc", 96, 96, "crop").unwrap(), None);
        let mut t = ThumbnailRecord {
            media_id: "abc".into(),
            width: 96,
            height: 96,
            method: "crop".into(),
            content_type: "image/jpeg".into(),
            size: 10,
        };
        s.put_thumbnail(&t).unwrap();
        assert_eq!(
            s.get_thumbnail("abc", 96, 96, "crop").unwrap(),
            Some(t.clone())
        );
        // Other sizes and methods are separate cache entries.
        assert_eq!(s.get_thumbnail("abc", 96, 96, "scale").unwrap(), None);
        assert_eq!(s.get_thumbnail("abc", 32, 96, "crop").unwrap(), None);
        // A racing regeneration replaces the row instead of failing.
        t.size = 11;
        s.put_thumbnail(&t).unwrap();
        assert_eq!(
            s.get_thumbnail("abc", 96, 96, "crop")
                .unwrap()
                .unwrap()
                .size,
            11
        );
    }
}
