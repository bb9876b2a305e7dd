//! The EPR bridge's tables (in its SQLite file): patient rooms and the filing queue, each change
//! committed with its audit row.

use handover_bridge_core::store::{
    AuditEntry, Db, HANDLED_EVENTS, Migration, insert_audit, into_sqlite,
};
use rusqlite::{OptionalExtension, params};

pub const MIGRATIONS: &[Migration] = &[HANDLED_EVENTS, ("epr_v1", include_str!("schema_v1.sql"))];

/// A room linked to a patient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatientRoom {
    pub room_id: String,
    pub fhir_base: String,
    pub patient_id: String,
}

impl PatientRoom {
    pub fn reference(&self) -> String {
        format!("Patient/{}", self.patient_id)
    }
}

/// One filing (a row of the queue).
#[derive(Debug, Clone)]
pub struct FilingRow {
    pub event_id: String,
    pub room_id: String,
    pub kind: String,
    pub author: String,
    pub sent_at: i64,
    pub payload: Option<String>,
    pub state: String,
    pub attempts: i64,
    pub resource: Option<String>,
    pub last_error: Option<String>,
}

/// A new filing request.
#[derive(Debug, Clone)]
pub struct NewFiling {
    pub event_id: String,
    pub room_id: String,
    pub kind: &'static str,
    pub requested_by: String,
    pub author: String,
    pub sent_at: i64,
    pub payload: String,
}

const COLS: &str =
    "event_id, room_id, kind, author, sent_at, payload, state, attempts, resource, last_error";

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<FilingRow> {
    Ok(FilingRow {
        event_id: r.get(0)?,
        room_id: r.get(1)?,
        kind: r.get(2)?,
        author: r.get(3)?,
        sent_at: r.get(4)?,
        payload: r.get(5)?,
        state: r.get(6)?,
        attempts: r.get(7)?,
        resource: r.get(8)?,
        last_error: r.get(9)?,
    })
}

#[derive(Clone)]
pub struct EprStore {
    pub db: Db,
}

impl EprStore {
    pub fn new(db: Db) -> Self {
        Self { db }
    }

    pub async fn room_of_patient(
        &self,
        base: String,
        patient_id: String,
    ) -> rusqlite::Result<Option<String>> {
        self.db
            .call(move |c| {
                c.query_row(
                    "SELECT room_id FROM patient_rooms WHERE fhir_base = ?1 AND patient_id = ?2",
                    params![base, patient_id],
                    |r| r.get(0),
                )
                .optional()
            })
            .await
            .map_err(into_sqlite)
    }

    pub async fn patient_of_room(&self, room_id: String) -> rusqlite::Result<Option<PatientRoom>> {
        self.db
            .call(move |c| {
                c.query_row(
                    "SELECT room_id, fhir_base, patient_id FROM patient_rooms WHERE room_id = ?1",
                    [room_id],
                    |r| {
                        Ok(PatientRoom {
                            room_id: r.get(0)?,
                            fhir_base: r.get(1)?,
                            patient_id: r.get(2)?,
                        })
                    },
                )
                .optional()
            })
            .await
            .map_err(into_sqlite)
    }

    /// Records a new patient room with its audit row.
    pub async fn link_room(&self, room: PatientRoom, by: String, now: i64) -> rusqlite::Result<()> {
        self.db
            .call(move |c| {
                let tx = c.transaction()?;
                tx.execute(
                    "INSERT INTO patient_rooms (room_id, fhir_base, patient_id, created_by, created_at)
                     VALUES (?1, ?2, ?3, ?4, ?5)",
                    params![room.room_id, room.fhir_base, room.patient_id, by, now],
                )?;
                insert_audit(
                    &tx,
                    &AuditEntry::new("room.created", "ok")
                        .actor(by)
                        .target(&room.room_id)
                        .detail("patient", room.reference()),
                )?;
                tx.commit()
            })
            .await
            .map_err(into_sqlite)
    }

    /// Queues a filing unless the event was ever queued before: `None` when new, else the
    /// existing row (filed, queued or refused: never filed twice).
    pub async fn enqueue(&self, f: NewFiling, now: i64) -> rusqlite::Result<Option<FilingRow>> {
        self.db
            .call(move |c| {
                let tx = c.transaction()?;
                let existing = tx
                    .query_row(
                        &format!("SELECT {COLS} FROM filings WHERE event_id = ?1"),
                        [&f.event_id],
                        row,
                    )
                    .optional()?;
                if existing.is_some() {
                    return Ok(existing);
                }
                tx.execute(
                    "INSERT INTO filings (event_id, room_id, kind, requested_by, requested_at, author,
                        sent_at, payload, state, attempts, next_attempt_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 'queued', 0, ?5)",
                    params![f.event_id, f.room_id, f.kind, f.requested_by, now, f.author, f.sent_at,
                            f.payload],
                )?;
                insert_audit(
                    &tx,
                    &AuditEntry::new("file.requested", "ok")
                        .actor(&f.requested_by)
                        .target(&f.event_id)
                        .detail("room_id", f.room_id.clone())
                        .detail("kind", f.kind),
                )?;
                tx.commit()?;
                Ok(None)
            })
            .await
            .map_err(into_sqlite)
    }

    /// Queued filings whose next attempt is due.
    pub async fn due(&self, now: i64) -> rusqlite::Result<Vec<FilingRow>> {
        self.db
            .call(move |c| {
                let mut st = c.prepare(&format!(
                    "SELECT {COLS} FROM filings WHERE state = 'queued' AND next_attempt_at <= ?1
                     ORDER BY next_attempt_at"
                ))?;
                st.query_map([now], row)?.collect()
            })
            .await
            .map_err(into_sqlite)
    }

    #[cfg(test)]
    pub async fn get(&self, event_id: String) -> rusqlite::Result<Option<FilingRow>> {
        self.db
            .call(move |c| {
                c.query_row(
                    &format!("SELECT {COLS} FROM filings WHERE event_id = ?1"),
                    [event_id],
                    row,
                )
                .optional()
            })
            .await
            .map_err(into_sqlite)
    }

    /// Filed: the resource recorded, the payload dropped, audited.
    pub async fn filed(&self, event_id: String, resource: String) -> rusqlite::Result<bool> {
        self.finish(event_id, "filed", Some(resource), None).await
    }

    /// Refused by the FHIR server (or unfileable): kept as failed with the reason, audited.
    pub async fn failed(&self, event_id: String, reason: String) -> rusqlite::Result<bool> {
        self.finish(event_id, "failed", None, Some(reason)).await
    }

    async fn finish(
        &self,
        event_id: String,
        state: &'static str,
        resource: Option<String>,
        reason: Option<String>,
    ) -> rusqlite::Result<bool> {
        self.db
            .call(move |c| {
                let tx = c.transaction()?;
                let n = tx.execute(
                    "UPDATE filings SET state = ?1, resource = ?2, last_error = ?3, payload = NULL,
                        next_attempt_at = NULL, attempts = attempts + 1
                     WHERE event_id = ?4 AND state = 'queued'",
                    params![state, resource, reason, event_id],
                )?;
                if n == 1 {
                    let mut a = AuditEntry::new(
                        if state == "filed" {
                            "file.filed"
                        } else {
                            "file.refused"
                        },
                        if state == "filed" { "ok" } else { "error" },
                    )
                    .target(&event_id);
                    if let Some(r) = &resource {
                        a = a.detail("resource", r.clone());
                    }
                    if let Some(r) = &reason {
                        a = a.detail("reason", r.clone());
                    }
                    insert_audit(&tx, &a)?;
                }
                tx.commit()?;
                Ok(n == 1)
            })
            .await
            .map_err(into_sqlite)
    }

    /// A retryable failure: the next attempt scheduled, audited. Returns the attempts so far.
    pub async fn retry_later(
        &self,
        event_id: String,
        reason: String,
        next_at: i64,
    ) -> rusqlite::Result<i64> {
        self.db
            .call(move |c| {
                let tx = c.transaction()?;
                tx.execute(
                    "UPDATE filings SET attempts = attempts + 1, last_error = ?1, next_attempt_at = ?2
                     WHERE event_id = ?3 AND state = 'queued'",
                    params![reason, next_at, event_id],
                )?;
                let attempts: i64 = tx.query_row(
                    "SELECT attempts FROM filings WHERE event_id = ?1",
                    [&event_id],
                    |r| r.get(0),
                )?;
                insert_audit(
                    &tx,
                    &AuditEntry::new("file.retry", "error")
                        .target(&event_id)
                        .detail("reason", reason)
                        .detail("attempts", attempts),
                )?;
                tx.commit()?;
                Ok(attempts)
            })
            .await
            .map_err(into_sqlite)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn new_filing(id: &str) -> NewFiling {
        NewFiling {
            event_id: id.into(),
            room_id: "!r:x".into(),
            kind: "text",
            requested_by: "@a:x".into(),
            author: "@b:x".into(),
            sent_at: 5,
            payload: r#"{"body":"plan"}"#.into(),
        }
    }

    #[tokio::test]
    async fn queue_is_durable_idempotent_and_audited() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("epr.db");
        let s = EprStore::new(Db::open(&path, MIGRATIONS).unwrap());
        let room = PatientRoom {
            room_id: "!r:x".into(),
            fhir_base: "http://f".into(),
            patient_id: "p1".into(),
        };
        s.link_room(room.clone(), "@a:x".into(), 1).await.unwrap();
        assert!(
            s.link_room(room.clone(), "@a:x".into(), 1).await.is_err(),
            "one room per patient"
        );
        assert_eq!(
            s.room_of_patient("http://f".into(), "p1".into())
                .await
                .unwrap()
                .as_deref(),
            Some("!r:x")
        );
        assert_eq!(s.patient_of_room("!r:x".into()).await.unwrap(), Some(room));

        assert!(s.enqueue(new_filing("$e1"), 100).await.unwrap().is_none());
        let again = s.enqueue(new_filing("$e1"), 200).await.unwrap().unwrap();
        assert_eq!(again.state, "queued");
        assert_eq!(s.due(99).await.unwrap().len(), 0);
        assert_eq!(s.due(100).await.unwrap().len(), 1);
        assert_eq!(
            s.retry_later("$e1".into(), "503: down".into(), 500)
                .await
                .unwrap(),
            1
        );
        assert_eq!(s.due(499).await.unwrap().len(), 0);
        drop(s);

        // Reopened (a restart): the queue is still there, then filed once.
        let s = EprStore::new(Db::open(&path, MIGRATIONS).unwrap());
        let due = s.due(500).await.unwrap();
        assert_eq!(due[0].payload.as_deref(), Some(r#"{"body":"plan"}"#));
        assert!(
            s.filed("$e1".into(), "Communication/c1".into())
                .await
                .unwrap()
        );
        assert!(
            !s.filed("$e1".into(), "Communication/c2".into())
                .await
                .unwrap()
        );
        let row = s.get("$e1".into()).await.unwrap().unwrap();
        assert_eq!(
            (row.state.as_str(), row.resource.as_deref()),
            ("filed", Some("Communication/c1"))
        );
        assert_eq!(row.payload, None, "the message is not kept once filed");
        let again = s.enqueue(new_filing("$e1"), 900).await.unwrap().unwrap();
        assert_eq!(again.resource.as_deref(), Some("Communication/c1"));

        assert!(s.enqueue(new_filing("$e2"), 1).await.unwrap().is_none());
        assert!(s.failed("$e2".into(), "422: bad".into()).await.unwrap());
        assert!(s.due(i64::MAX).await.unwrap().is_empty());
        let actions: Vec<String> =
            s.db.audit_rows(None)
                .unwrap()
                .into_iter()
                .map(|a| a.action)
                .collect();
        assert_eq!(
            actions,
            [
                "room.created",
                "file.requested",
                "file.retry",
                "file.filed",
                "file.requested",
                "file.refused"
            ]
        );
    }
}
