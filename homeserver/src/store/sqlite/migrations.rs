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
];

pub fn run(conn: &mut Connection) -> StoreResult<()> {
    conn.execute_batch("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")?;
    // Every version not yet applied, not just those above the highest: version numbers are
    // handed out to branches in advance, so a lower one can arrive after a higher one ran.
    let applied: Vec<i64> = {
        let mut st = conn.prepare("SELECT version FROM schema_version")?;
        st.query_map([], |r| r.get(0))?
            .collect::<Result<_, _>>()?
    };
    for (version, sql) in MIGRATIONS.iter().filter(|(v, _)| !applied.contains(v)) {
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
