use rusqlite::{OptionalExtension, params};

use super::SqliteStore;
use super::db::WriteCtx;
use crate::store::StoreResult;
use crate::store::account_data::{AccountDataRow, AccountDataStore, ContentUpdate};

/// Upserts one entry at a freshly allocated stream position (inside the caller's write job).
fn put(
    ctx: &mut WriteCtx<'_>,
    user: &str,
    room: &str,
    ty: &str,
    content: &str,
) -> StoreResult<i64> {
    let pos = ctx.next_pos();
    ctx.tx.execute(
        "INSERT INTO account_data (user_id, room_id, type, content, pos) VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (user_id, room_id, type) DO UPDATE SET content = excluded.content, pos = excluded.pos",
        params![user, room, ty, content, pos],
    )?;
    Ok(pos)
}

impl AccountDataStore for SqliteStore {
    fn set_account_data(
        &self,
        user_id: &str,
        room_id: &str,
        data_type: &str,
        content: &str,
    ) -> StoreResult<i64> {
        let (u, r, t, c) = (
            user_id.to_owned(),
            room_id.to_owned(),
            data_type.to_owned(),
            content.to_owned(),
        );
        self.db.write(move |ctx| put(ctx, &u, &r, &t, &c))
    }

    fn get_account_data(
        &self,
        user_id: &str,
        room_id: &str,
        data_type: &str,
    ) -> StoreResult<Option<String>> {
        self.db.read(|c| {
            Ok(c.query_row(
                "SELECT content FROM account_data WHERE user_id = ?1 AND room_id = ?2 AND type = ?3",
                [user_id, room_id, data_type],
                |r| r.get(0),
            )
            .optional()?)
        })
    }

    fn update_account_data(
        &self,
        user_id: &str,
        room_id: &str,
        data_type: &str,
        update: ContentUpdate,
    ) -> StoreResult<Option<i64>> {
        let (u, r, t) = (user_id.to_owned(), room_id.to_owned(), data_type.to_owned());
        self.db.write(move |ctx| {
            // Read through the write transaction: no other writer can interleave.
            let current: Option<String> = ctx
                .tx
                .query_row(
                    "SELECT content FROM account_data WHERE user_id = ?1 AND room_id = ?2 AND type = ?3",
                    [&u, &r, &t],
                    |row| row.get(0),
                )
                .optional()?;
            match update(current.as_deref()) {
                Some(new) => Ok(Some(put(ctx, &u, &r, &t, &new)?)),
                None => Ok(None),
            }
        })
    }

    fn account_data_since(
        &self,
        user_id: &str,
        since_pos: i64,
        upto_pos: i64,
    ) -> StoreResult<Vec<AccountDataRow>> {
        self.db.read(|c| {
            let mut stmt = c.prepare(
                "SELECT room_id, type, content FROM account_data
                 WHERE user_id = ?1 AND pos > ?2 AND pos <= ?3 ORDER BY pos",
            )?;
            let rows = stmt
                .query_map(params![user_id, since_pos, upto_pos], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                })?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::sqlite::test_store;

    const U: &str = "@alice:localhost";

    #[test]
    fn set_get_and_upsert_moves_position() {
        let (s, _d) = test_store();
        assert_eq!(s.get_account_data(U, "", "m.x").unwrap(), None);
        let p1 = s.set_account_data(U, "", "m.x", r#"{"a":1}"#).unwrap();
        let p2 = s.set_account_data(U, "", "m.x", r#"{"a":2}"#).unwrap();
        assert!(p2 > p1);
        assert_eq!(
            s.get_account_data(U, "", "m.x").unwrap().as_deref(),
            Some(r#"{"a":2}"#)
        );
        // Global and room entries of the same type are distinct.
        assert_eq!(s.get_account_data(U, "!r:localhost", "m.x").unwrap(), None);
        assert!(s.db.current_pos() >= p2);
    }

    #[test]
    fn account_data_since_returns_only_newer_rows() {
        let (s, _d) = test_store();
        let p1 = s.set_account_data(U, "", "m.a", "{}").unwrap();
        let p2 = s
            .set_account_data(U, "!r:localhost", "m.tag", r#"{"tags":{}}"#)
            .unwrap();
        s.set_account_data("@bob:localhost", "", "m.b", "{}")
            .unwrap();
        let upto = s.db.current_pos();

        let all = s.account_data_since(U, 0, upto).unwrap();
        assert_eq!(all.len(), 2, "{all:?}");
        let newer = s.account_data_since(U, p1, upto).unwrap();
        assert_eq!(
            newer,
            vec![(
                "!r:localhost".to_owned(),
                "m.tag".to_owned(),
                r#"{"tags":{}}"#.to_owned()
            )]
        );
        assert!(s.account_data_since(U, p2, upto).unwrap().is_empty());
        // The upper bound excludes writes after the caller's snapshot position.
        assert_eq!(s.account_data_since(U, 0, p1).unwrap().len(), 1);
        // Rewriting an old entry makes it new again.
        s.set_account_data(U, "", "m.a", r#"{"v":2}"#).unwrap();
        let again = s.account_data_since(U, p2, s.db.current_pos()).unwrap();
        assert_eq!(
            again,
            vec![(String::new(), "m.a".to_owned(), r#"{"v":2}"#.to_owned())]
        );
    }

    #[test]
    fn update_sees_current_content_and_none_keeps_position() {
        let (s, _d) = test_store();
        let pos = s
            .update_account_data(
                U,
                "",
                "m.c",
                Box::new(|cur| {
                    assert_eq!(cur, None);
                    Some("1".to_owned())
                }),
            )
            .unwrap();
        assert!(pos.is_some());
        let before = s.db.current_pos();
        let unchanged = s
            .update_account_data(
                U,
                "",
                "m.c",
                Box::new(|cur| {
                    assert_eq!(cur, Some("1"));
                    None
                }),
            )
            .unwrap();
        assert_eq!(unchanged, None);
        assert_eq!(s.db.current_pos(), before);
    }
}
