//! The outbound federation queue on SQLite (`federation_outbox`, `federation_outbox_payloads`).

use rusqlite::{OptionalExtension, Transaction, params};

use super::SqliteStore;
use crate::store::outbox::{OutboxBatch, OutboxItem, OutboxKind, OutboxStore, QueueCounts};
use crate::store::{StoreError, StoreResult};

fn kind_of(s: &str) -> StoreResult<OutboxKind> {
    match s {
        "pdu" => Ok(OutboxKind::Pdu),
        "edu" => Ok(OutboxKind::Edu),
        other => Err(StoreError::Corrupt(format!("outbox kind {other:?}"))),
    }
}

/// The rows of `destination` claimed under `txn_id`, oldest first, with their JSON.
fn batch_items(
    tx: &Transaction<'_>,
    destination: &str,
    txn_id: &str,
) -> StoreResult<Vec<OutboxItem>> {
    let mut st = tx.prepare_cached(
        "SELECT o.id, o.kind, p.json FROM federation_outbox o
         JOIN federation_outbox_payloads p ON p.id = o.payload_id
         WHERE o.destination = ?1 AND o.txn_id = ?2 ORDER BY o.id",
    )?;
    let rows = st.query_map(params![destination, txn_id], |r| {
        Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?, r.get(2)?))
    })?;
    rows.map(|r| {
        let (id, kind, json) = r?;
        Ok(OutboxItem {
            id,
            kind: kind_of(&kind)?,
            json,
        })
    })
    .collect()
}

/// Deletes the payloads among `ids` that no queue row uses any more.
pub(super) fn collect_payloads(tx: &Transaction<'_>, ids: &[i64]) -> StoreResult<()> {
    let mut st = tx.prepare_cached(
        "DELETE FROM federation_outbox_payloads WHERE id = ?1
         AND NOT EXISTS (SELECT 1 FROM federation_outbox WHERE payload_id = ?1)",
    )?;
    for id in ids {
        st.execute([id])?;
    }
    Ok(())
}

impl OutboxStore for SqliteStore {
    fn enqueue(
        &self,
        destinations: &[String],
        kind: OutboxKind,
        json: &str,
        queued_ts: i64,
    ) -> StoreResult<()> {
        if destinations.is_empty() {
            return Ok(());
        }
        let (dests, json) = (destinations.to_vec(), json.to_owned());
        self.db.write(move |ctx| {
            ctx.tx.execute(
                "INSERT INTO federation_outbox_payloads (json) VALUES (?1)",
                [&json],
            )?;
            let payload = ctx.tx.last_insert_rowid();
            let mut st = ctx.tx.prepare_cached(
                "INSERT INTO federation_outbox (destination, kind, payload_id, queued_ts)
                 VALUES (?1, ?2, ?3, ?4)",
            )?;
            for d in &dests {
                st.execute(params![d, kind.as_str(), payload, queued_ts])?;
            }
            Ok(())
        })
    }

    fn queue_counts(&self) -> StoreResult<Vec<QueueCounts>> {
        self.db.read(|c| {
            let mut st = c.prepare_cached(
                "SELECT destination, SUM(kind = 'pdu'), SUM(kind = 'edu')
                 FROM federation_outbox GROUP BY destination ORDER BY destination",
            )?;
            let rows = st.query_map([], |r| {
                Ok(QueueCounts {
                    destination: r.get(0)?,
                    pdus: r.get::<_, i64>(1)? as u64,
                    edus: r.get::<_, i64>(2)? as u64,
                })
            })?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
    }

    fn claim_batch(
        &self,
        destination: &str,
        max_pdus: usize,
        max_edus: usize,
        max_bytes: usize,
        new_txn_id: &str,
    ) -> StoreResult<Option<OutboxBatch>> {
        let (dest, new_txn) = (destination.to_owned(), new_txn_id.to_owned());
        self.db.write(move |ctx| {
            // Batches are claimed from the front of the queue, so an unconfirmed one is first.
            let claimed: Option<Option<String>> = ctx
                .tx
                .query_row(
                    "SELECT txn_id FROM federation_outbox WHERE destination = ?1
                     ORDER BY id LIMIT 1",
                    [&dest],
                    |r| r.get(0),
                )
                .optional()?;
            let txn_id = match claimed {
                None => return Ok(None),
                Some(Some(txn)) => txn,
                Some(None) => {
                    let ids = {
                        let mut st = ctx.tx.prepare_cached(
                            "SELECT o.id, o.kind, length(CAST(p.json AS BLOB)) FROM federation_outbox o
                             JOIN federation_outbox_payloads p ON p.id = o.payload_id
                             WHERE o.destination = ?1 AND o.txn_id IS NULL ORDER BY o.id LIMIT ?2",
                        )?;
                        let rows = st
                            .query_map(params![dest, (max_pdus + max_edus) as i64], |r| {
                                Ok((
                                    r.get::<_, i64>(0)?,
                                    r.get::<_, String>(1)?,
                                    r.get::<_, i64>(2)? as usize,
                                ))
                            })?;
                        let (mut pdus, mut edus, mut bytes, mut ids) = (0, 0, 0, Vec::new());
                        for row in rows {
                            let (id, kind, len) = row?;
                            let n = match kind_of(&kind)? {
                                OutboxKind::Pdu => &mut pdus,
                                OutboxKind::Edu => &mut edus,
                            };
                            *n += 1;
                            // One byte per item for the separating comma.
                            bytes += len + 1;
                            // A contiguous run only: order is kept across transactions too.
                            if pdus > max_pdus
                                || edus > max_edus
                                || (bytes > max_bytes && !ids.is_empty())
                            {
                                break;
                            }
                            ids.push(id);
                        }
                        ids
                    };
                    let mut st = ctx
                        .tx
                        .prepare_cached("UPDATE federation_outbox SET txn_id = ?1 WHERE id = ?2")?;
                    for id in &ids {
                        st.execute(params![new_txn, id])?;
                    }
                    new_txn
                }
            };
            let items = batch_items(ctx.tx, &dest, &txn_id)?;
            Ok(Some(OutboxBatch { txn_id, items }))
        })
    }

    fn release_batch(&self, destination: &str, txn_id: &str) -> StoreResult<()> {
        let (dest, txn) = (destination.to_owned(), txn_id.to_owned());
        self.db.write(move |ctx| {
            ctx.tx.execute(
                "UPDATE federation_outbox SET txn_id = NULL WHERE destination = ?1 AND txn_id = ?2",
                params![dest, txn],
            )?;
            Ok(())
        })
    }

    fn delete_batch(&self, destination: &str, txn_id: &str) -> StoreResult<u64> {
        let (dest, txn) = (destination.to_owned(), txn_id.to_owned());
        self.db.write(move |ctx| {
            let payloads = {
                let mut st = ctx.tx.prepare_cached(
                    "DELETE FROM federation_outbox WHERE destination = ?1 AND txn_id = ?2
                     RETURNING payload_id",
                )?;
                st.query_map(params![dest, txn], |r| r.get::<_, i64>(0))?
                    .collect::<Result<Vec<_>, _>>()?
            };
            collect_payloads(ctx.tx, &payloads)?;
            Ok(payloads.len() as u64)
        })
    }

    fn drop_destination(&self, destination: &str) -> StoreResult<(u64, u64)> {
        let dest = destination.to_owned();
        self.db.write(move |ctx| {
            let rows = {
                let mut st = ctx.tx.prepare_cached(
                    "DELETE FROM federation_outbox WHERE destination = ?1
                     RETURNING payload_id, kind",
                )?;
                st.query_map([&dest], |r| {
                    Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?))
                })?
                .collect::<Result<Vec<_>, _>>()?
            };
            let payloads: Vec<i64> = rows.iter().map(|(p, _)| *p).collect();
            collect_payloads(ctx.tx, &payloads)?;
            let pdus = rows.iter().filter(|(_, k)| k == "pdu").count() as u64;
            Ok((pdus, rows.len() as u64 - pdus))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::sqlite::test_store;

    fn payload_rows(s: &SqliteStore) -> i64 {
        s.db.read(|c| {
            Ok(
                c.query_row("SELECT COUNT(*) FROM federation_outbox_payloads", [], |r| {
                    r.get(0)
                })?,
            )
        })
        .unwrap()
    }

    fn jsons(b: &OutboxBatch) -> Vec<&str> {
        b.items.iter().map(|i| i.json.as_str()).collect()
    }

    #[test]
    fn batches_keep_order_limits_and_their_claim() {
        let (s, _d) = test_store();
        let a = vec!["a.nhs.uk".to_owned()];
        assert!(
            s.claim_batch("a.nhs.uk", 2, 1, usize::MAX, "t0")
                .unwrap()
                .is_none()
        );
        for (kind, json) in [
            (OutboxKind::Pdu, "p1"),
            (OutboxKind::Edu, "e1"),
            (OutboxKind::Pdu, "p2"),
            (OutboxKind::Edu, "e2"),
            (OutboxKind::Pdu, "p3"),
        ] {
            s.enqueue(&a, kind, json, 1).unwrap();
        }
        // Stops before the second EDU (limit 1): the run is p1 e1 p2, not p1 e1 p2 p3.
        let b1 = s
            .claim_batch("a.nhs.uk", 2, 1, usize::MAX, "t1")
            .unwrap()
            .unwrap();
        assert_eq!(
            (b1.txn_id.as_str(), jsons(&b1)),
            ("t1", vec!["p1", "e1", "p2"])
        );
        assert_eq!(b1.counts(), (2, 1));
        // Not confirmed: the same batch again, under its first id, whatever id is offered.
        let again = s
            .claim_batch("a.nhs.uk", 50, 100, usize::MAX, "t9")
            .unwrap()
            .unwrap();
        assert_eq!(again, b1);
        assert_eq!(s.delete_batch("a.nhs.uk", "t1").unwrap(), 3);
        let b2 = s
            .claim_batch("a.nhs.uk", 2, 1, usize::MAX, "t2")
            .unwrap()
            .unwrap();
        assert_eq!(jsons(&b2), vec!["e2", "p3"]);
        assert_eq!(s.delete_batch("a.nhs.uk", "t2").unwrap(), 2);
        assert!(
            s.claim_batch("a.nhs.uk", 2, 1, usize::MAX, "t3")
                .unwrap()
                .is_none()
        );
        assert_eq!(payload_rows(&s), 0);
    }

    #[test]
    fn batches_are_sized_by_bytes_and_can_be_released() {
        let (s, _d) = test_store();
        let a = vec!["a.nhs.uk".to_owned()];
        for json in ["p1-------", "p2-------", "p3-------", "p4-------"] {
            s.enqueue(&a, OutboxKind::Pdu, json, 1).unwrap();
        }
        // 10 bytes an item with its comma: 25 bytes hold two.
        let b = s
            .claim_batch("a.nhs.uk", 50, 100, 25, "t1")
            .unwrap()
            .unwrap();
        assert_eq!(jsons(&b), vec!["p1-------", "p2-------"]);
        assert_eq!(b.bytes(), 18);
        // Released: claimed again from the front under a new id; one item always fits.
        s.release_batch("a.nhs.uk", "t1").unwrap();
        let b = s
            .claim_batch("a.nhs.uk", 50, 100, 1, "t2")
            .unwrap()
            .unwrap();
        assert_eq!((b.txn_id.as_str(), jsons(&b)), ("t2", vec!["p1-------"]));
    }

    #[test]
    fn payloads_are_shared_and_collected_with_their_last_row() {
        let (s, _d) = test_store();
        let both = vec!["a.nhs.uk".to_owned(), "b.nhs.uk".to_owned()];
        s.enqueue(&both, OutboxKind::Pdu, r#"{"x":1}"#, 1).unwrap();
        s.enqueue(&both[1..], OutboxKind::Edu, r#"{"e":1}"#, 2)
            .unwrap();
        assert_eq!(payload_rows(&s), 2);
        let counts = s.queue_counts().unwrap();
        assert_eq!(
            counts,
            vec![
                QueueCounts {
                    destination: "a.nhs.uk".into(),
                    pdus: 1,
                    edus: 0
                },
                QueueCounts {
                    destination: "b.nhs.uk".into(),
                    pdus: 1,
                    edus: 1
                },
            ]
        );
        let b = s
            .claim_batch("a.nhs.uk", 50, 100, usize::MAX, "ta")
            .unwrap()
            .unwrap();
        assert_eq!(jsons(&b), vec![r#"{"x":1}"#]);
        s.delete_batch("a.nhs.uk", "ta").unwrap();
        // Still used by b.nhs.uk's row.
        assert_eq!(payload_rows(&s), 2);
        assert_eq!(s.drop_destination("b.nhs.uk").unwrap(), (1, 1));
        assert_eq!(payload_rows(&s), 0);
        assert!(s.queue_counts().unwrap().is_empty());
        // Deleting an unknown batch is a no-op.
        assert_eq!(s.delete_batch("a.nhs.uk", "nope").unwrap(), 0);
    }
}
