//! The bridge's durable state: one SQLite file (WAL), migrations applied by name so the shared
//! tables (transactions seen, audit) and each bridge's own tables evolve independently, and an
//! append-only audit table. Calls run on the blocking pool: SQLite must not stall the executor.

use std::path::Path;
use std::sync::{Arc, Mutex};

use rusqlite::{Connection, OptionalExtension, params};
use serde_json::Value;

/// A named migration: applied once, in list order, recorded in `migrations`.
pub type Migration = (&'static str, &'static str);

/// The tables every bridge has.
const CORE_MIGRATIONS: &[Migration] = &[
    (
        "core_v1",
        "CREATE TABLE appservice_txns (
         txn_id TEXT PRIMARY KEY,
         received_at INTEGER NOT NULL
     );
     CREATE TABLE audit (
         id INTEGER PRIMARY KEY AUTOINCREMENT,
         at INTEGER NOT NULL,
         action TEXT NOT NULL,
         outcome TEXT NOT NULL,
         actor TEXT,
         target TEXT,
         detail TEXT NOT NULL
     );",
    ),
    (
        // The bot's session (bot.rs `login_persistent`): its device is kept across restarts with
        // matrix-sdk's stores, so it needs the same access token and device id.
        "core_v2_bot_session",
        "CREATE TABLE bot_session (
         id INTEGER PRIMARY KEY CHECK (id = 1),
         user_id TEXT NOT NULL,
         device_id TEXT NOT NULL,
         access_token TEXT NOT NULL
     );",
    ),
];

/// The table of handled Matrix events (a bridge sees an event from its sync and maybe again from
/// an appservice transaction, or twice after a reconnect): list it in a bridge's migrations to
/// use [`Db::first_sight_of_event`]. `IF NOT EXISTS`: the alerts bridge created the same table in
/// its own first migration.
pub const HANDLED_EVENTS: Migration = (
    "core_handled_events",
    "CREATE TABLE IF NOT EXISTS handled_events (event_id TEXT PRIMARY KEY)",
);

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("database task failed: {0}")]
    Join(String),
}

pub type Result<T> = std::result::Result<T, StoreError>;

/// The shared connection. Cheap to clone.
#[derive(Clone)]
pub struct Db {
    conn: Arc<Mutex<Connection>>,
}

/// One audit row.
#[derive(Debug, Clone)]
pub struct AuditEntry {
    pub action: String,
    /// `ok`, `denied`, `error`.
    pub outcome: String,
    pub actor: Option<String>,
    pub target: Option<String>,
    pub detail: Value,
}

impl AuditEntry {
    pub fn new(action: &str, outcome: &str) -> Self {
        Self {
            action: action.to_owned(),
            outcome: outcome.to_owned(),
            actor: None,
            target: None,
            detail: Value::Object(Default::default()),
        }
    }
    pub fn actor(mut self, actor: impl Into<String>) -> Self {
        self.actor = Some(actor.into());
        self
    }
    pub fn target(mut self, target: impl Into<String>) -> Self {
        self.target = Some(target.into());
        self
    }
    pub fn detail(mut self, key: &str, value: impl Into<Value>) -> Self {
        if let Value::Object(m) = &mut self.detail {
            m.insert(key.to_owned(), value.into());
        }
        self
    }
}

impl Db {
    /// Opens (creating) the database and applies the core and `migrations` not yet applied.
    pub fn open(path: &Path, migrations: &[Migration]) -> Result<Self> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            let _ = std::fs::create_dir_all(dir);
        }
        let conn = Connection::open(path)?;
        Self::init(conn, migrations)
    }

    /// An in-memory database (unit tests).
    pub fn memory(migrations: &[Migration]) -> Result<Self> {
        Self::init(Connection::open_in_memory()?, migrations)
    }

    fn init(mut conn: Connection, migrations: &[Migration]) -> Result<Self> {
        // WAL + FULL sync: an acknowledged webhook or a recorded escalation survives power loss.
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS migrations (name TEXT PRIMARY KEY, applied_at INTEGER NOT NULL)",
        )?;
        for (name, sql) in CORE_MIGRATIONS.iter().chain(migrations) {
            let tx = conn.transaction()?;
            let done: Option<String> = tx
                .query_row("SELECT name FROM migrations WHERE name = ?1", [name], |r| {
                    r.get(0)
                })
                .optional()?;
            if done.is_none() {
                tx.execute_batch(sql)?;
                tx.execute(
                    "INSERT INTO migrations (name, applied_at) VALUES (?1, ?2)",
                    params![name, crate::now_ms()],
                )?;
            }
            tx.commit()?;
        }
        Ok(Self {
            conn: Arc::new(Mutex::new(conn)),
        })
    }

    /// Runs `f` on the connection on the blocking pool.
    pub async fn call<R, F>(&self, f: F) -> Result<R>
    where
        R: Send + 'static,
        F: FnOnce(&mut Connection) -> rusqlite::Result<R> + Send + 'static,
    {
        let conn = self.conn.clone();
        tokio::task::spawn_blocking(move || {
            let mut c = conn.lock().unwrap_or_else(|p| p.into_inner());
            f(&mut c).map_err(StoreError::from)
        })
        .await
        .map_err(|e| StoreError::Join(e.to_string()))?
    }

    /// Runs `f` on the connection on this thread (start-up, tests).
    pub fn call_sync<R>(
        &self,
        f: impl FnOnce(&mut Connection) -> rusqlite::Result<R>,
    ) -> Result<R> {
        let mut c = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut c).map_err(StoreError::from)
    }

    /// Appends an audit row.
    pub async fn audit(&self, e: AuditEntry) -> Result<()> {
        self.call(move |c| insert_audit(c, &e)).await
    }

    /// Audit rows, newest last, optionally only one action (status pages, tests).
    pub fn audit_rows(&self, action: Option<&str>) -> Result<Vec<AuditEntry>> {
        self.call_sync(|c| {
            let mut st = c.prepare(
                "SELECT action, outcome, actor, target, detail FROM audit
                 WHERE ?1 IS NULL OR action = ?1 ORDER BY id",
            )?;
            let rows = st.query_map([action], |r| {
                Ok(AuditEntry {
                    action: r.get(0)?,
                    outcome: r.get(1)?,
                    actor: r.get(2)?,
                    target: r.get(3)?,
                    detail: serde_json::from_str(&r.get::<_, String>(4)?).unwrap_or(Value::Null),
                })
            })?;
            rows.collect()
        })
    }

    /// Records an appservice transaction id; false when it was already seen (a retry).
    pub async fn first_sight_of_txn(&self, txn_id: String) -> Result<bool> {
        self.call(move |c| {
            let n = c.execute(
                "INSERT OR IGNORE INTO appservice_txns (txn_id, received_at) VALUES (?1, ?2)",
                params![txn_id, crate::now_ms()],
            )?;
            Ok(n == 1)
        })
        .await
    }

    /// Marks an event as handled; false when it already was. Needs [`HANDLED_EVENTS`] (or an
    /// equivalent table) among the bridge's migrations.
    pub async fn first_sight_of_event(&self, event_id: String) -> Result<bool> {
        self.call(move |c| {
            c.execute(
                "INSERT OR IGNORE INTO handled_events (event_id) VALUES (?1)",
                [event_id],
            )
            .map(|n| n == 1)
        })
        .await
    }

    /// Whether a transaction id was already processed.
    pub async fn txn_seen(&self, txn_id: String) -> Result<bool> {
        self.call(move |c| {
            c.query_row(
                "SELECT 1 FROM appservice_txns WHERE txn_id = ?1",
                [txn_id],
                |_| Ok(()),
            )
            .optional()
            .map(|o| o.is_some())
        })
        .await
    }
}

/// The bridges' own state code speaks rusqlite: a store error as one.
pub fn into_sqlite(e: StoreError) -> rusqlite::Error {
    match e {
        StoreError::Sqlite(e) => e,
        other => rusqlite::Error::ToSqlConversionFailure(other.to_string().into()),
    }
}

impl Db {
    /// The bot's stored session: `(user_id, device_id, access_token)`.
    pub async fn bot_session(&self) -> Result<Option<(String, String, String)>> {
        self.call(|c| {
            c.query_row(
                "SELECT user_id, device_id, access_token FROM bot_session WHERE id = 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()
        })
        .await
    }

    pub async fn set_bot_session(&self, user: String, device: String, token: String) -> Result<()> {
        self.call(move |c| {
            c.execute(
                "INSERT OR REPLACE INTO bot_session (id, user_id, device_id, access_token)
                 VALUES (1, ?1, ?2, ?3)",
                params![user, device, token],
            )
            .map(|_| ())
        })
        .await
    }
}

/// Appends an audit row inside the caller's transaction (so the row and the change it
/// records commit together).
pub fn insert_audit(c: &Connection, e: &AuditEntry) -> rusqlite::Result<()> {
    c.execute(
        "INSERT INTO audit (at, action, outcome, actor, target, detail) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            crate::now_ms(),
            e.action,
            e.outcome,
            e.actor,
            e.target,
            e.detail.to_string()
        ],
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXTRA: &[Migration] = &[HANDLED_EVENTS, ("x_v1", "CREATE TABLE x (a INTEGER)")];

    #[tokio::test]
    async fn migrations_once_audit_and_txn_dedupe() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        let db = Db::open(&path, EXTRA).unwrap();
        db.audit(AuditEntry::new("a.b", "ok").actor("@u:x").detail("k", 1))
            .await
            .unwrap();
        assert!(db.first_sight_of_txn("t1".into()).await.unwrap());
        assert!(!db.first_sight_of_txn("t1".into()).await.unwrap());
        assert!(db.first_sight_of_event("$e".into()).await.unwrap());
        assert!(!db.first_sight_of_event("$e".into()).await.unwrap());
        drop(db);
        // Reopen: migrations are not re-run (CREATE TABLE would fail), state survived.
        let db = Db::open(&path, EXTRA).unwrap();
        assert!(db.txn_seen("t1".into()).await.unwrap());
        let rows = db.audit_rows(Some("a.b")).unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].detail["k"], 1);
        assert_eq!(rows[0].actor.as_deref(), Some("@u:x"));
    }
}
