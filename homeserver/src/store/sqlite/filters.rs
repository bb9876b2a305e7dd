use rusqlite::{OptionalExtension, params};

use super::SqliteStore;
use crate::store::StoreResult;
use crate::store::filters::FilterStore;

impl FilterStore for SqliteStore {
    fn create_filter(&self, user_id: &str, json: &str) -> StoreResult<i64> {
        let (u, j) = (user_id.to_owned(), json.to_owned());
        self.db.write(move |ctx| {
            // Safe without a race: the single writer thread runs this job alone.
            let id: i64 = ctx.tx.query_row(
                "SELECT COALESCE(MAX(filter_id) + 1, 0) FROM filters WHERE user_id = ?1",
                [&u],
                |r| r.get(0),
            )?;
            ctx.tx.execute(
                "INSERT INTO filters (user_id, filter_id, json) VALUES (?1, ?2, ?3)",
                params![u, id, j],
            )?;
            Ok(id)
        })
    }

    fn get_filter(&self, user_id: &str, filter_id: i64) -> StoreResult<Option<String>> {
        self.db.read(|c| {
            Ok(c.query_row(
                "SELECT json FROM filters WHERE user_id = ?1 AND filter_id = ?2",
                params![user_id, filter_id],
                |r| r.get(0),
            )
            .optional()?)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::sqlite::test_store;

    #[test]
    fn filter_ids_are_per_user_and_sequential() {
        let (s, _d) = test_store();
        assert_eq!(s.create_filter("@a:l", r#"{"x":1}"#).unwrap(), 0);
        assert_eq!(s.create_filter("@a:l", r#"{"x":2}"#).unwrap(), 1);
        assert_eq!(s.create_filter("@b:l", "{}").unwrap(), 0);
        assert_eq!(
            s.get_filter("@a:l", 1).unwrap().as_deref(),
            Some(r#"{"x":2}"#)
        );
        assert_eq!(s.get_filter("@b:l", 1).unwrap(), None);
        assert_eq!(s.get_filter("@a:l", 7).unwrap(), None);
    }
}
