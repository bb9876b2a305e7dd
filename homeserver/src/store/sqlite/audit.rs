use handover_compliance::{AuditRecord, Checkpoint, GENESIS_HASH, NewEntry, Outcome, seal};
use rusqlite::{OptionalExtension, Row, params};

use super::SqliteStore;
use crate::store::audit::{AuditQuery, AuditStore};
use crate::store::{StoreError, StoreResult};

const COLUMNS: &str = "seq, ts, actor, action, target, outcome, rule, details, prev_hash, hash";

/// A stored row as a record. Unknown outcomes or non-object details are kept verifiable rather
/// than rejected: `verify` must be able to name a tampered row, not fail to read it.
fn from_row(r: &Row<'_>) -> rusqlite::Result<(AuditRecord, String)> {
    let outcome: String = r.get(5)?;
    let details: String = r.get(7)?;
    let rec = AuditRecord {
        seq: r.get(0)?,
        ts: r.get(1)?,
        actor: r.get(2)?,
        action: r.get(3)?,
        target: r.get(4)?,
        outcome: Outcome::parse(&outcome).unwrap_or(Outcome::Failure),
        rule: r.get(6)?,
        details: serde_json::from_str(&details).unwrap_or_default(),
        prev_hash: r.get(8)?,
        hash: r.get(9)?,
    };
    Ok((rec, outcome))
}

/// Corrupt columns make the hash mismatch so verify names the row: break the stored hash.
fn settle((mut rec, outcome): (AuditRecord, String)) -> AuditRecord {
    if Outcome::parse(&outcome).is_none() {
        rec.hash = format!("invalid outcome {outcome:?}");
    }
    rec
}

impl AuditStore for SqliteStore {
    fn append(&self, entry: NewEntry) -> StoreResult<AuditRecord> {
        self.db.write(move |ctx| {
            let last: Option<(i64, String)> = ctx
                .tx
                .query_row(
                    "SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1",
                    [],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()?;
            let (seq, prev) = last.unwrap_or((0, GENESIS_HASH.to_owned()));
            let rec = seal(entry, seq + 1, &prev);
            let details = serde_json::to_string(&rec.details)
                .map_err(|e| StoreError::Corrupt(e.to_string()))?;
            ctx.tx.execute(
                "INSERT INTO audit_log
                 (seq, ts, actor, action, target, outcome, rule, details, prev_hash, hash)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                params![
                    rec.seq,
                    rec.ts,
                    rec.actor,
                    rec.action,
                    rec.target,
                    rec.outcome.as_str(),
                    rec.rule,
                    details,
                    rec.prev_hash,
                    rec.hash
                ],
            )?;
            Ok(rec)
        })
    }

    fn read_after(&self, after_seq: i64, limit: usize) -> StoreResult<Vec<AuditRecord>> {
        self.db.read(|c| {
            let mut stmt = c.prepare_cached(&format!(
                "SELECT {COLUMNS} FROM audit_log WHERE seq > ?1 ORDER BY seq LIMIT ?2"
            ))?;
            let rows = stmt
                .query_map(params![after_seq, limit as i64], from_row)?
                .map(|r| r.map(settle))
                .collect::<Result<_, _>>()?;
            Ok(rows)
        })
    }

    fn read_between(
        &self,
        since: i64,
        until: i64,
        after_seq: i64,
        limit: usize,
    ) -> StoreResult<Vec<AuditRecord>> {
        self.db.read(|c| {
            let mut stmt = c.prepare_cached(&format!(
                "SELECT {COLUMNS} FROM audit_log WHERE ts >= ?1 AND ts < ?2 AND seq > ?3
                 ORDER BY seq LIMIT ?4"
            ))?;
            let rows = stmt
                .query_map(params![since, until, after_seq, limit as i64], from_row)?
                .map(|r| r.map(settle))
                .collect::<Result<_, _>>()?;
            Ok(rows)
        })
    }

    fn search(&self, q: &AuditQuery) -> StoreResult<Vec<AuditRecord>> {
        let mut conds = vec!["1 = 1"];
        let mut args: Vec<rusqlite::types::Value> = Vec::new();
        if let Some(s) = &q.subject {
            // Two indexed lookups (actor, target) rather than one OR over a scan.
            conds.push(
                "seq IN (SELECT seq FROM audit_log WHERE actor = ? \
                 UNION SELECT seq FROM audit_log WHERE target = ?)",
            );
            args.push(s.clone().into());
            args.push(s.clone().into());
        }
        let mut push = |cond: &'static str, v: rusqlite::types::Value| {
            conds.push(cond);
            args.push(v);
        };
        if let Some(r) = &q.rule {
            push("rule = ?", r.clone().into());
        }
        if let Some(a) = &q.action {
            push("action = ?", a.clone().into());
        }
        if let Some(t) = q.since {
            push("ts >= ?", t.into());
        }
        if let Some(t) = q.until {
            push("ts < ?", t.into());
        }
        if let Some(s) = q.before_seq {
            push("seq < ?", s.into());
        }
        if let Some(s) = q.after_seq {
            push("seq > ?", s.into());
        }
        args.push((q.limit as i64).into());
        let order = if q.after_seq.is_some() { "ASC" } else { "DESC" };
        let sql = format!(
            "SELECT {COLUMNS} FROM audit_log WHERE {} ORDER BY seq {order} LIMIT ?",
            conds.join(" AND ")
        );
        self.db.read(move |c| {
            let mut stmt = c.prepare(&sql)?;
            let rows = stmt
                .query_map(rusqlite::params_from_iter(args), from_row)?
                .map(|r| r.map(settle))
                .collect::<Result<_, _>>()?;
            Ok(rows)
        })
    }

    fn head(&self) -> StoreResult<Option<(i64, String)>> {
        self.db.read(|c| {
            Ok(c.query_row(
                "SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?)
        })
    }

    fn append_checkpoint(&self, cp: &Checkpoint) -> StoreResult<bool> {
        let cp = cp.clone();
        self.db.write(move |ctx| {
            let n = ctx.tx.execute(
                "INSERT OR IGNORE INTO audit_checkpoints (seq, hash, ts, key_id, signature)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![cp.seq, cp.hash, cp.ts, cp.key_id, cp.signature],
            )?;
            Ok(n == 1)
        })
    }

    fn checkpoints(&self) -> StoreResult<Vec<Checkpoint>> {
        self.db.read(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT seq, hash, ts, key_id, signature FROM audit_checkpoints ORDER BY seq",
            )?;
            let rows = stmt
                .query_map([], |r| {
                    Ok(Checkpoint {
                        seq: r.get(0)?,
                        hash: r.get(1)?,
                        ts: r.get(2)?,
                        key_id: r.get(3)?,
                        signature: r.get(4)?,
                    })
                })?
                .collect::<Result<_, _>>()?;
            Ok(rows)
        })
    }
}

#[cfg(test)]
#[path = "audit_tests.rs"]
mod tests;
