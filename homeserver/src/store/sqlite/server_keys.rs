use rusqlite::{OptionalExtension, params};

use super::SqliteStore;
use crate::store::StoreResult;
use crate::store::server_keys::{CachedKey, KeyResponse, ServerKeyStore};

impl ServerKeyStore for SqliteStore {
    fn save_server_keys(
        &self,
        server_name: &str,
        keys: &[CachedKey],
        response: &KeyResponse,
        fetched_ts: i64,
    ) -> StoreResult<()> {
        let (server, keys, response) = (server_name.to_owned(), keys.to_vec(), response.clone());
        self.db.write(move |ctx| {
            for k in &keys {
                ctx.tx.execute(
                    "INSERT INTO federation_server_keys
                         (server_name, key_id, public_key, valid_until_ts, expired_ts, fetched_ts)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                     ON CONFLICT (server_name, key_id) DO UPDATE SET
                         public_key = excluded.public_key,
                         valid_until_ts = excluded.valid_until_ts,
                         expired_ts = excluded.expired_ts,
                         fetched_ts = excluded.fetched_ts",
                    params![
                        server,
                        k.key_id,
                        k.public_key,
                        k.valid_until_ts,
                        k.expired_ts,
                        fetched_ts
                    ],
                )?;
            }
            ctx.tx.execute(
                "INSERT INTO federation_key_responses
                     (server_name, response_json, valid_until_ts, fetched_ts)
                 VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (server_name) DO UPDATE SET
                     response_json = excluded.response_json,
                     valid_until_ts = excluded.valid_until_ts,
                     fetched_ts = excluded.fetched_ts",
                params![
                    server,
                    response.response_json,
                    response.valid_until_ts,
                    fetched_ts
                ],
            )?;
            Ok(())
        })
    }

    fn server_keys(&self, server_name: &str) -> StoreResult<Vec<CachedKey>> {
        self.db.read(|c| {
            let mut st = c.prepare_cached(
                "SELECT key_id, public_key, valid_until_ts, expired_ts
                 FROM federation_server_keys WHERE server_name = ?1 ORDER BY key_id",
            )?;
            let rows = st.query_map([server_name], |r| {
                Ok(CachedKey {
                    key_id: r.get(0)?,
                    public_key: r.get(1)?,
                    valid_until_ts: r.get(2)?,
                    expired_ts: r.get(3)?,
                })
            })?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
    }

    fn server_key_response(&self, server_name: &str) -> StoreResult<Option<KeyResponse>> {
        self.db.read(|c| {
            Ok(c.query_row(
                "SELECT response_json, valid_until_ts FROM federation_key_responses
                 WHERE server_name = ?1",
                [server_name],
                |r| {
                    Ok(KeyResponse {
                        response_json: r.get(0)?,
                        valid_until_ts: r.get(1)?,
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
    use crate::store::sqlite::test_store;

    #[test]
    fn keys_are_upserted_and_responses_replaced() {
        let (s, _d) = test_store();
        let k = |id: &str, pk: &str, until: i64| CachedKey {
            key_id: id.into(),
            public_key: pk.into(),
            valid_until_ts: until,
            expired_ts: None,
        };
        let r = |json: &str, until: i64| KeyResponse {
            response_json: json.into(),
            valid_until_ts: until,
        };
        assert!(s.server_keys("b").unwrap().is_empty());
        assert!(s.server_key_response("b").unwrap().is_none());
        s.save_server_keys("b", &[k("ed25519:a", "AAA", 10)], &r("{}", 10), 1)
            .unwrap();
        s.save_server_keys(
            "b",
            &[k("ed25519:a", "AAA", 20), k("ed25519:c", "CCC", 20)],
            &r("{\"x\":1}", 20),
            2,
        )
        .unwrap();
        assert_eq!(
            s.server_keys("b").unwrap(),
            vec![k("ed25519:a", "AAA", 20), k("ed25519:c", "CCC", 20)]
        );
        assert_eq!(
            s.server_key_response("b").unwrap(),
            Some(r("{\"x\":1}", 20))
        );
        assert!(s.server_keys("other").unwrap().is_empty());
    }
}
