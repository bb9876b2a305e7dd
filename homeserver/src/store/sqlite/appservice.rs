//! The appservice queue on SQLite (`appservice_queue`, schema v8).

use rusqlite::{OptionalExtension, Transaction, params};

use super::SqliteStore;
use crate::store::appservice::{AppserviceBatch, AppserviceStore};
use crate::store::rooms::NewEvent;
use crate::store::{StoreError, StoreResult};

/// Queues `ev` for each appservice interested in it, inside the event's own write.
pub(super) fn enqueue_event(tx: &Transaction<'_>, ev: &NewEvent) -> StoreResult<()> {
    if ev.appservices.is_empty() {
        return Ok(());
    }
    let mut st = tx.prepare_cached(
        "INSERT INTO appservice_queue (appservice_id, event_id) VALUES (?1, ?2)",
    )?;
    for a in &ev.appservices {
        st.execute(params![a, ev.event_id.as_str()])?;
    }
    Ok(())
}

fn batch_events(tx: &Transaction<'_>, as_id: &str, txn_id: &str) -> StoreResult<Vec<ruma::OwnedEventId>> {
    let mut st = tx.prepare_cached(
        "SELECT event_id FROM appservice_queue WHERE appservice_id = ?1 AND txn_id = ?2 ORDER BY id",
    )?;
    let rows = st.query_map(params![as_id, txn_id], |r| r.get::<_, String>(0))?;
    rows.map(|r| {
        let id = r?;
        ruma::OwnedEventId::try_from(id).map_err(|e| StoreError::Corrupt(e.to_string()))
    })
    .collect()
}

impl AppserviceStore for SqliteStore {
    fn claim_appservice_batch(
        &self,
        appservice_id: &str,
        max: usize,
        new_txn_id: &str,
    ) -> StoreResult<Option<AppserviceBatch>> {
        let (as_id, new_txn) = (appservice_id.to_owned(), new_txn_id.to_owned());
        self.db.write(move |ctx| {
            // Batches are claimed from the front, so an unacknowledged one is always first.
            let front: Option<Option<String>> = ctx
                .tx
                .query_row(
                    "SELECT txn_id FROM appservice_queue WHERE appservice_id = ?1 ORDER BY id LIMIT 1",
                    [&as_id],
                    |r| r.get(0),
                )
                .optional()?;
            let txn_id = match front {
                None => return Ok(None),
                Some(Some(open)) => open,
                Some(None) => {
                    ctx.tx.execute(
                        "UPDATE appservice_queue SET txn_id = ?2 WHERE id IN (
                           SELECT id FROM appservice_queue WHERE appservice_id = ?1 AND txn_id IS NULL
                           ORDER BY id LIMIT ?3)",
                        params![as_id, new_txn, max as i64],
                    )?;
                    new_txn
                }
            };
            let event_ids = batch_events(ctx.tx, &as_id, &txn_id)?;
            Ok(Some(AppserviceBatch { txn_id, event_ids }))
        })
    }

    fn ack_appservice_batch(&self, appservice_id: &str, txn_id: &str) -> StoreResult<()> {
        let (as_id, txn) = (appservice_id.to_owned(), txn_id.to_owned());
        self.db.write(move |ctx| {
            ctx.tx.execute(
                "DELETE FROM appservice_queue WHERE appservice_id = ?1 AND txn_id = ?2",
                params![as_id, txn],
            )?;
            Ok(())
        })
    }

    fn appservice_queue_len(&self, appservice_id: &str) -> StoreResult<u64> {
        self.db.read(|c| {
            Ok(c.query_row(
                "SELECT COUNT(*) FROM appservice_queue WHERE appservice_id = ?1",
                [appservice_id],
                |r| r.get::<_, i64>(0),
            )? as u64)
        })
    }
}
