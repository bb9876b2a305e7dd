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
    (9, include_str!("schema/v9_identity.sql")),
    (14, include_str!("schema/v14_identity_sessions.sql")),
];

pub fn run(conn: &mut Connection) -> StoreResult<()> {
    conn.execute_batch("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")?;
    let current: i64 = conn
        .query_row("SELECT MAX(version) FROM schema_version", [], |r| {
            r.get::<_, Option<i64>>(0)
        })?
        .unwrap_or(0);
    for (version, sql) in MIGRATIONS.iter().filter(|(v, _)| *v > current) {
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
    fn migrations_are_idempotent() {
        let mut conn = Connection::open_in_memory().unwrap();
        run(&mut conn).unwrap();
        run(&mut conn).unwrap();
        let v: i64 = conn
            .query_row("SELECT MAX(version) FROM schema_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(v, MIGRATIONS.last().unwrap().0);
    }
}
