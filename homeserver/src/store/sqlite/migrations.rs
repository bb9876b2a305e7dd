//! Versioned schema migrations. Each entry runs once, in order, in its own transaction; the
//! applied version is kept in `schema_version`. Never edit a shipped migration: append a new one.

use rusqlite::{Connection, OptionalExtension};

use crate::store::StoreResult;

const MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("schema/v1.sql")),
    (2, include_str!("schema/v2.sql")),
    (3, include_str!("schema/v3.sql")),
    (4, include_str!("schema/v4_admin.sql")),
    (5, include_str!("schema/v5_tokens.sql")),
    (6, include_str!("schema/v6_audit.sql")),
    (7, include_str!("schema/v7_pipeline.sql")),
    (8, include_str!("schema/v8_appservice.sql")),
    (9, include_str!("schema/v9_identity.sql")),
    (11, include_str!("schema/v11_spec.sql")),
    (12, include_str!("schema/v12_admin.sql")),
    (13, include_str!("schema/v13_console.sql")),
    (14, include_str!("schema/v14_identity_sessions.sql")),
    (16, include_str!("schema/v16_room_jobs.sql")),
    (17, include_str!("schema/v17_oauth_device_grant.sql")),
    (19, include_str!("schema/v19_appservice_crypto.sql")),
];

pub fn run(conn: &mut Connection) -> StoreResult<()> {
    apply(conn, MIGRATIONS)
}

fn apply(conn: &mut Connection, migrations: &[(i64, &str)]) -> StoreResult<()> {
    conn.execute_batch("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")?;
    // Every migration not yet applied runs, not only those above the highest applied: branches
    // developed side by side land migrations with interleaved numbers.
    let applied: std::collections::HashSet<i64> = conn
        .prepare("SELECT version FROM schema_version")?
        .query_map([], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    for (version, sql) in migrations.iter().filter(|(v, _)| !applied.contains(v)) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.execute(
            "INSERT INTO schema_version (version) VALUES (?1)",
            [version],
        )?;
        tx.commit()?;
        tracing::info!(version, "applied schema migration");
    }
    Ok(())
}

/// The highest stream position stored anywhere: the writer continues from here after a restart.
pub fn max_stream_pos(conn: &Connection) -> StoreResult<i64> {
    let pos = conn
        .query_row("SELECT pos FROM stream_position WHERE id = 0", [], |r| {
            r.get(0)
        })
        .optional()?
        .unwrap_or(0);
    Ok(pos)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_migration_numbered_below_an_applied_one_still_runs() {
        let mut conn = Connection::open_in_memory().unwrap();
        apply(
            &mut conn,
            &[(1, "CREATE TABLE a (x)"), (3, "CREATE TABLE c (x)")],
        )
        .unwrap();
        // Version 2 lands after 3 was applied (branches merged in another order).
        let all = [
            (1, "CREATE TABLE a (x)"),
            (2, "CREATE TABLE b (x)"),
            (3, "CREATE TABLE c (x)"),
        ];
        apply(&mut conn, &all).unwrap();
        conn.execute("INSERT INTO b (x) VALUES (1)", []).unwrap();
        let versions: Vec<i64> = conn
            .prepare("SELECT version FROM schema_version ORDER BY version")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(versions, [1, 2, 3]);
    }

    #[test]
    fn migrations_are_idempotent() {
        let mut conn = Connection::open_in_memory().unwrap();
        run(&mut conn).unwrap();
        run(&mut conn).unwrap();
        let v: i64 = conn
            .query_row("SELECT MAX(version) FROM schema_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(v, MIGRATIONS.last().unwrap().0);
    }

    /// Events stored before the search index existed are indexed by its migration.
    #[test]
    fn the_search_migration_indexes_existing_events() {
        let mut conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE schema_version (version INTEGER NOT NULL)")
            .unwrap();
        for (v, sql) in MIGRATIONS.iter().filter(|(v, _)| *v < 11) {
            conn.execute_batch(sql).unwrap();
            conn.execute("INSERT INTO schema_version VALUES (?1)", [v])
                .unwrap();
        }
        conn.execute_batch(
            r#"INSERT INTO rooms (room_id, room_version, creator, created_ts) VALUES ('!r', '12', '@a:x', 0);
               INSERT INTO events (event_id, pos, room_id, sender, type, state_key, depth, origin_server_ts, json)
               VALUES ('$m', 1, '!r', '@a:x', 'm.room.message', NULL, 1, 0, '{"content":{"body":"Old Note"}}'),
                      ('$t', 2, '!r', '@a:x', 'm.room.topic', '', 2, 0, '{"content":{"topic":"old topic"}}'),
                      ('$e', 3, '!r', '@a:x', 'm.room.encrypted', NULL, 3, 0, '{"content":{"ciphertext":"note"}}'),
                      ('$bad', 4, '!r', '@a:x', 'm.room.message', NULL, 4, 0, 'not json');"#,
        )
        .unwrap();
        run(&mut conn).unwrap();
        let hits: Vec<String> = conn
            .prepare(
                "SELECT x.event_id FROM event_search s JOIN event_search_rows x ON x.rowid = s.rowid
                  WHERE event_search MATCH 'old' ORDER BY x.event_id",
            )
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(hits, ["$m", "$t"]);
    }
}
