//! The alerts bridge's tables (in the shared bridge SQLite file): alerts with their durable
//! escalation timer (`next_due`), every post of an alert (so a reaction or reply to any of
//! them acknowledges it), readers (receipts), managed rooms, the rota and role holders.

pub use handover_bridge_core::store::into_sqlite;
use handover_bridge_core::store::{AuditEntry, Db, Migration, insert_audit};
use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;

use crate::alert::Alert;

pub const MIGRATIONS: &[Migration] = &[
    ("alerts_v1", include_str!("schema_v1.sql")),
    ("alerts_v2", include_str!("schema_v2.sql")),
];

/// The stored state of one alert.
#[derive(Debug, Clone, Serialize)]
pub struct AlertRow {
    pub source: String,
    pub alert_id: String,
    pub kind: String,
    pub severity: String,
    pub title: String,
    pub text: String,
    pub patient: Option<String>,
    pub rule: String,
    pub received_at: i64,
    /// `pending` (accepted, not posted yet), `open`, `acknowledged`.
    pub state: String,
    pub ack_by: Option<String>,
    pub ack_at: Option<i64>,
    pub ack_via: Option<String>,
    /// Escalation steps done.
    pub esc_step: i64,
    pub next_due: Option<i64>,
}

/// One message posting an alert (step 0: the rule's target; n: escalation step n).
#[derive(Debug, Clone, Serialize)]
pub struct Post {
    pub room_id: String,
    pub event_id: String,
    pub step: i64,
    pub target: String,
    /// The role holder or user it was meant for, when the target is one.
    pub recipient: Option<String>,
    pub at: i64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Read {
    pub user_id: String,
    pub at: i64,
}

pub enum Inserted {
    New,
    /// Same (source, alert_id) and the same body: a retry.
    Duplicate,
    /// Same (source, alert_id), different body.
    Conflict,
}

const ALERT_COLS: &str =
    "source, alert_id, kind, severity, title, text, patient, rule, received_at,
    state, ack_by, ack_at, ack_via, esc_step, next_due";

fn alert_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<AlertRow> {
    Ok(AlertRow {
        source: r.get(0)?,
        alert_id: r.get(1)?,
        kind: r.get(2)?,
        severity: r.get(3)?,
        title: r.get(4)?,
        text: r.get(5)?,
        patient: r.get(6)?,
        rule: r.get(7)?,
        received_at: r.get(8)?,
        state: r.get(9)?,
        ack_by: r.get(10)?,
        ack_at: r.get(11)?,
        ack_via: r.get(12)?,
        esc_step: r.get(13)?,
        next_due: r.get(14)?,
    })
}

fn get_alert(c: &Connection, source: &str, id: &str) -> rusqlite::Result<Option<AlertRow>> {
    c.query_row(
        &format!("SELECT {ALERT_COLS} FROM alerts WHERE source = ?1 AND alert_id = ?2"),
        params![source, id],
        alert_row,
    )
    .optional()
}

/// Typed access to the alert tables.
#[derive(Clone)]
pub struct AlertStore {
    pub db: Db,
}

impl AlertStore {
    pub fn new(db: Db) -> Self {
        Self { db }
    }

    /// Stores a new alert as `pending` with its audit row, in one transaction.
    pub async fn insert(
        &self,
        a: Alert,
        rule: String,
        body_hash: String,
        now: i64,
    ) -> rusqlite::Result<Inserted> {
        self.db
            .call(move |c| {
                let tx = c.transaction()?;
                let existing: Option<String> = tx
                    .query_row(
                        "SELECT body_hash FROM alerts WHERE source = ?1 AND alert_id = ?2",
                        params![a.source, a.alert_id],
                        |r| r.get(0),
                    )
                    .optional()?;
                if let Some(h) = existing {
                    return Ok(if h == body_hash { Inserted::Duplicate } else { Inserted::Conflict });
                }
                tx.execute(
                    "INSERT INTO alerts (source, alert_id, kind, severity, title, text, patient, ward,
                        specialty, rule, received_at, state, esc_step, body_hash)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, 'pending', 0, ?12)",
                    params![
                        a.source, a.alert_id, a.kind.as_str(), a.severity.as_str(), a.title, a.text,
                        a.patient, a.ward, a.specialty, rule, now, body_hash
                    ],
                )?;
                insert_audit(
                    &tx,
                    &AuditEntry::new("alert.received", "ok")
                        .actor(format!("source:{}", a.source))
                        .target(&a.alert_id)
                        .detail("rule", rule)
                        .detail("severity", a.severity.as_str()),
                )?;
                tx.commit()?;
                Ok(Inserted::New)
            })
            .await
            .map_err(into_sqlite)
    }

    pub async fn get(&self, source: String, id: String) -> rusqlite::Result<Option<AlertRow>> {
        self.db
            .call(move |c| get_alert(c, &source, &id))
            .await
            .map_err(into_sqlite)
    }

    pub async fn pending(&self) -> rusqlite::Result<Vec<AlertRow>> {
        self.select("state = 'pending' ORDER BY received_at", ())
            .await
    }

    /// Open alerts whose escalation timer has expired.
    pub async fn due(&self, now: i64) -> rusqlite::Result<Vec<AlertRow>> {
        self.select(
            "state = 'open' AND next_due IS NOT NULL AND next_due <= ?1 ORDER BY next_due",
            [now],
        )
        .await
    }

    async fn select<P: rusqlite::Params + Send + 'static>(
        &self,
        cond: &'static str,
        p: P,
    ) -> rusqlite::Result<Vec<AlertRow>> {
        self.db
            .call(move |c| {
                let mut st = c.prepare(&format!("SELECT {ALERT_COLS} FROM alerts WHERE {cond}"))?;
                st.query_map(p, alert_row)?.collect()
            })
            .await
            .map_err(into_sqlite)
    }

    /// Records posts of step `step` and sets the next timer, with the audit row, atomically.
    /// Step 0 moves the alert from pending to open. Nothing changes if the alert is no longer
    /// in the state the step was planned for (acknowledged meanwhile).
    pub async fn record_step(
        &self,
        source: String,
        id: String,
        step: i64,
        posts: Vec<Post>,
        next_due: Option<i64>,
        audit: AuditEntry,
    ) -> rusqlite::Result<bool> {
        self.db
            .call(move |c| {
                let tx = c.transaction()?;
                let (from_state, to_state) = if step == 0 {
                    ("pending", "open")
                } else {
                    ("open", "open")
                };
                let n = tx.execute(
                    "UPDATE alerts SET state = ?1, esc_step = ?2, next_due = ?3
                     WHERE source = ?4 AND alert_id = ?5 AND state = ?6 AND esc_step = ?7",
                    params![
                        to_state,
                        step,
                        next_due,
                        source,
                        id,
                        from_state,
                        (step - 1).max(0)
                    ],
                )?;
                insert_posts(&tx, &source, &id, &posts)?;
                if n == 1 {
                    insert_audit(&tx, &audit)?;
                }
                tx.commit()?;
                Ok(n == 1)
            })
            .await
            .map_err(into_sqlite)
    }

    /// Extra posts of an alert (re-posted to a new role holder).
    pub async fn add_posts(
        &self,
        source: String,
        id: String,
        posts: Vec<Post>,
    ) -> rusqlite::Result<()> {
        self.db
            .call(move |c| insert_posts(c, &source, &id, &posts))
            .await
            .map_err(into_sqlite)
    }

    /// The alert a posted event belongs to.
    pub async fn alert_of_event(
        &self,
        event_id: String,
    ) -> rusqlite::Result<Option<(String, String)>> {
        self.db
            .call(move |c| {
                c.query_row(
                    "SELECT source, alert_id FROM alert_posts WHERE event_id = ?1",
                    [event_id],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()
            })
            .await
            .map_err(into_sqlite)
    }

    /// Acknowledges an open (or still pending) alert; `None` when it already was.
    pub async fn acknowledge(
        &self,
        source: String,
        id: String,
        by: String,
        via: &'static str,
        at: i64,
    ) -> rusqlite::Result<Option<AlertRow>> {
        self.db
            .call(move |c| {
                let tx = c.transaction()?;
                let n = tx.execute(
                    "UPDATE alerts SET state = 'acknowledged', ack_by = ?1, ack_at = ?2, ack_via = ?3,
                        next_due = NULL
                     WHERE source = ?4 AND alert_id = ?5 AND state IN ('open', 'pending')",
                    params![by, at, via, source, id],
                )?;
                if n == 0 {
                    return Ok(None);
                }
                insert_audit(
                    &tx,
                    &AuditEntry::new("alert.acknowledged", "ok")
                        .actor(&by)
                        .target(format!("{source}/{id}"))
                        .detail("via", via),
                )?;
                let row = get_alert(&tx, &source, &id)?;
                tx.commit()?;
                Ok(row)
            })
            .await
            .map_err(into_sqlite)
    }

    /// Records that `user` read one of the alert's posts; true when new.
    pub async fn add_read(
        &self,
        source: String,
        id: String,
        user: String,
        at: i64,
    ) -> rusqlite::Result<bool> {
        self.db
            .call(move |c| {
                c.execute(
                    "INSERT OR IGNORE INTO alert_reads (source, alert_id, user_id, at) VALUES (?1, ?2, ?3, ?4)",
                    params![source, id, user, at],
                )
                .map(|n| n == 1)
            })
            .await
            .map_err(into_sqlite)
    }

    pub async fn posts_and_reads(
        &self,
        source: String,
        id: String,
    ) -> rusqlite::Result<(Vec<Post>, Vec<Read>)> {
        self.db
            .call(move |c| {
                let mut st = c.prepare(
                    "SELECT room_id, event_id, step, target, recipient, at FROM alert_posts
                     WHERE source = ?1 AND alert_id = ?2 ORDER BY at, rowid",
                )?;
                let posts = st
                    .query_map(params![source, id], |r| {
                        Ok(Post {
                            room_id: r.get(0)?,
                            event_id: r.get(1)?,
                            step: r.get(2)?,
                            target: r.get(3)?,
                            recipient: r.get(4)?,
                            at: r.get(5)?,
                        })
                    })?
                    .collect::<rusqlite::Result<Vec<_>>>()?;
                let mut st = c.prepare(
                    "SELECT user_id, at FROM alert_reads WHERE source = ?1 AND alert_id = ?2 ORDER BY at",
                )?;
                let reads = st
                    .query_map(params![source, id], |r| Ok(Read { user_id: r.get(0)?, at: r.get(1)? }))?
                    .collect::<rusqlite::Result<Vec<_>>>()?;
                Ok((posts, reads))
            })
            .await
            .map_err(into_sqlite)
    }

    /// Open alerts posted to a target (e.g. `role:medreg-oncall`), for a role handover.
    pub async fn open_for_target(&self, target: String) -> rusqlite::Result<Vec<AlertRow>> {
        self.db
            .call(move |c| {
                let mut st = c.prepare(&format!(
                    "SELECT {ALERT_COLS} FROM alerts a WHERE state = 'open' AND EXISTS
                       (SELECT 1 FROM alert_posts p WHERE p.source = a.source
                          AND p.alert_id = a.alert_id AND p.target = ?1)
                     ORDER BY received_at"
                ))?;
                st.query_map([target], alert_row)?.collect()
            })
            .await
            .map_err(into_sqlite)
    }

    /// Room id of a managed room (`room:x`, `role:x`, `user:@x`).
    pub async fn managed_room(&self, key: String) -> rusqlite::Result<Option<String>> {
        self.db
            .call(move |c| {
                c.query_row(
                    "SELECT room_id FROM managed_rooms WHERE key = ?1",
                    [key],
                    |r| r.get(0),
                )
                .optional()
            })
            .await
            .map_err(into_sqlite)
    }

    pub async fn set_managed_room(&self, key: String, room_id: String) -> rusqlite::Result<()> {
        self.db
            .call(move |c| {
                c.execute(
                    "INSERT OR REPLACE INTO managed_rooms (key, room_id, created_at) VALUES (?1, ?2, ?3)",
                    params![key, room_id, handover_bridge_core::now_ms()],
                )
                .map(|_| ())
            })
            .await
            .map_err(into_sqlite)
    }

    /// Marks an event as handled; false when it already was (sync and transactions overlap).
    pub async fn first_sight_of_event(&self, event_id: String) -> rusqlite::Result<bool> {
        self.db
            .first_sight_of_event(event_id)
            .await
            .map_err(into_sqlite)
    }
}

fn insert_posts(c: &Connection, source: &str, id: &str, posts: &[Post]) -> rusqlite::Result<()> {
    for p in posts {
        c.execute(
            "INSERT OR IGNORE INTO alert_posts (room_id, event_id, source, alert_id, step, target, recipient, at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![p.room_id, p.event_id, source, id, p.step, p.target, p.recipient, p.at],
        )?;
    }
    Ok(())
}
