//! SQLite side of the admin room jobs and the blocked-room list (schema v16).

use rusqlite::{OptionalExtension, params};

use super::SqliteStore;
use super::rooms::collect;
use crate::store::room_jobs::{BlockedRoom, JobKind, JobStatus, RoomJobRow, RoomJobStore};
use crate::store::{StoreError, StoreResult};

const COLS: &str = "job_id, kind, room_id, requested_by, params, status, error, result, \
                    created_ts, updated_ts";

fn job(r: &rusqlite::Row<'_>) -> rusqlite::Result<(RoomJobRow, String, String)> {
    let kind: String = r.get(1)?;
    let status: String = r.get(5)?;
    Ok((
        RoomJobRow {
            job_id: r.get(0)?,
            kind: JobKind::Delete,
            room_id: r.get(2)?,
            requested_by: r.get(3)?,
            params: r.get(4)?,
            status: JobStatus::Scheduled,
            error: r.get(6)?,
            result: r.get(7)?,
            created_ts: r.get(8)?,
            updated_ts: r.get(9)?,
        },
        kind,
        status,
    ))
}

/// Rows with their enums parsed; an unknown value is corruption (the CHECKs forbid it).
fn typed(rows: Vec<(RoomJobRow, String, String)>) -> StoreResult<Vec<RoomJobRow>> {
    rows.into_iter()
        .map(|(mut row, kind, status)| {
            row.kind = JobKind::parse(&kind)
                .ok_or_else(|| StoreError::Corrupt(format!("room job kind {kind:?}")))?;
            row.status = JobStatus::parse(&status)
                .ok_or_else(|| StoreError::Corrupt(format!("room job status {status:?}")))?;
            Ok(row)
        })
        .collect()
}

impl RoomJobStore for SqliteStore {
    fn insert_job(&self, j: RoomJobRow) -> StoreResult<()> {
        self.db.write(move |ctx| {
            ctx.tx.execute(
                &format!("INSERT INTO admin_room_jobs ({COLS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"),
                params![
                    j.job_id,
                    j.kind.as_str(),
                    j.room_id,
                    j.requested_by,
                    j.params,
                    j.status.as_str(),
                    j.error,
                    j.result,
                    j.created_ts,
                    j.updated_ts
                ],
            )?;
            Ok(())
        })
    }

    fn update_job(
        &self,
        job_id: &str,
        status: JobStatus,
        error: Option<String>,
        result: Option<String>,
        now: i64,
    ) -> StoreResult<()> {
        let id = job_id.to_owned();
        self.db.write(move |ctx| {
            ctx.tx.execute(
                "UPDATE admin_room_jobs SET status = ?2, error = coalesce(?3, error),
                     result = coalesce(?4, result), updated_ts = ?5 WHERE job_id = ?1",
                params![id, status.as_str(), error, result, now],
            )?;
            Ok(())
        })
    }

    fn job(&self, job_id: &str) -> StoreResult<Option<RoomJobRow>> {
        let row = self.db.read(|c| {
            Ok(c.query_row(
                &format!("SELECT {COLS} FROM admin_room_jobs WHERE job_id = ?1"),
                [job_id],
                job,
            )
            .optional()?)
        })?;
        Ok(typed(row.into_iter().collect())?.pop())
    }

    fn jobs_for_room(&self, room_id: &str, kind: JobKind) -> StoreResult<Vec<RoomJobRow>> {
        let rows = self.db.read(|c| {
            let mut st = c.prepare(&format!(
                "SELECT {COLS} FROM admin_room_jobs WHERE room_id = ?1 AND kind = ?2
                 ORDER BY created_ts, job_id"
            ))?;
            collect(st.query_map(params![room_id, kind.as_str()], job)?)
        })?;
        typed(rows)
    }

    fn open_jobs(&self) -> StoreResult<Vec<RoomJobRow>> {
        let rows = self.db.read(|c| {
            let mut st = c.prepare(&format!(
                "SELECT {COLS} FROM admin_room_jobs WHERE status IN ('scheduled', 'active')
                 ORDER BY created_ts, job_id"
            ))?;
            collect(st.query_map([], job)?)
        })?;
        typed(rows)
    }

    fn blocked_rooms(&self) -> StoreResult<Vec<BlockedRoom>> {
        self.db.read(|c| {
            let mut st = c.prepare(
                "SELECT room_id, blocked_by, blocked_ts FROM blocked_rooms ORDER BY room_id",
            )?;
            collect(st.query_map([], |r| {
                Ok(BlockedRoom {
                    room_id: r.get(0)?,
                    blocked_by: r.get(1)?,
                    blocked_ts: r.get(2)?,
                })
            })?)
        })
    }

    fn block_room(&self, b: BlockedRoom) -> StoreResult<()> {
        self.db.write(move |ctx| {
            ctx.tx.execute(
                "INSERT OR IGNORE INTO blocked_rooms (room_id, blocked_by, blocked_ts)
                 VALUES (?1, ?2, ?3)",
                params![b.room_id, b.blocked_by, b.blocked_ts],
            )?;
            Ok(())
        })
    }

    fn unblock_room(&self, room_id: &str) -> StoreResult<bool> {
        let id = room_id.to_owned();
        self.db.write(move |ctx| {
            Ok(ctx
                .tx
                .execute("DELETE FROM blocked_rooms WHERE room_id = ?1", [&id])?
                > 0)
        })
    }

    fn delete_room_remnants(&self, room_id: &str) -> StoreResult<usize> {
        let id = room_id.to_owned();
        self.db.write(move |ctx| {
            let tx = ctx.tx;
            let mut n = tx.execute("DELETE FROM remote_invites WHERE room_id = ?1", [&id])?;
            // Queued PDUs of the room would outlive its events. Membership events stay queued:
            // the other servers must still learn that our users left.
            const QUEUED: &str = "SELECT id FROM federation_outbox_payloads
                 WHERE json_extract(json, '$.room_id') = ?1
                   AND json_extract(json, '$.type') IS NOT 'm.room.member'";
            n += tx.execute(
                &format!(
                    "DELETE FROM federation_outbox WHERE kind = 'pdu' AND payload_id IN ({QUEUED})"
                ),
                [&id],
            )?;
            tx.execute(
                &format!(
                    "DELETE FROM federation_outbox_payloads WHERE id IN ({QUEUED})
                   AND id NOT IN (SELECT payload_id FROM federation_outbox)"
                ),
                [&id],
            )?;
            Ok(n)
        })
    }
}
