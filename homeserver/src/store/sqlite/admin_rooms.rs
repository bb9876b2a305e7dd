//! SQLite side of the admin API's rooms and event reports.

use rusqlite::{OptionalExtension, params_from_iter};

use super::SqliteStore;
use crate::store::StoreResult;
use crate::store::admin::{AdminRoomRow, AdminRoomStore, EventReportRow, ReportListQuery};

const REPORT_COLS: &str = "r.id, r.ts, r.room_id, r.event_id, r.reporter, r.reason, r.score, \
    (SELECT e.sender FROM events e WHERE e.event_id = r.event_id)";

fn report(r: &rusqlite::Row<'_>) -> rusqlite::Result<EventReportRow> {
    Ok(EventReportRow {
        id: r.get(0)?,
        received_ts: r.get(1)?,
        room_id: r.get(2)?,
        event_id: r.get(3)?,
        reporter: r.get(4)?,
        reason: r.get(5)?,
        score: r.get(6)?,
        sender: r.get(7)?,
    })
}

impl AdminRoomStore for SqliteStore {
    fn all_rooms(&self) -> StoreResult<Vec<AdminRoomRow>> {
        self.db.read(|c| {
            let mut st = c.prepare(
                "SELECT room_id, room_version, creator, is_public, created_ts FROM rooms",
            )?;
            let rows = st
                .query_map([], |r| {
                    let id: String = r.get(0)?;
                    Ok((id, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
                })?
                .collect::<rusqlite::Result<Vec<(String, String, String, bool, i64)>>>()?;
            Ok(rows
                .into_iter()
                .filter_map(|(id, version, creator, is_public, created_ts)| {
                    Some(AdminRoomRow {
                        room_id: id.try_into().ok()?,
                        version,
                        creator,
                        is_public,
                        created_ts,
                    })
                })
                .collect())
        })
    }

    fn event_reports(&self, q: &ReportListQuery) -> StoreResult<(Vec<EventReportRow>, u64)> {
        let mut conds = vec!["r.event_id IS NOT NULL AND r.room_id IS NOT NULL"];
        let mut args: Vec<rusqlite::types::Value> = Vec::new();
        if let Some(room) = &q.room_id {
            conds.push("r.room_id = ?");
            args.push(room.clone().into());
        }
        if let Some(user) = &q.reporter {
            conds.push("r.reporter = ?");
            args.push(user.clone().into());
        }
        let filter = conds.join(" AND ");
        let dir = if q.backwards { "DESC" } else { "ASC" };
        let sql = format!(
            "SELECT {REPORT_COLS} FROM reports r WHERE {filter} ORDER BY r.id {dir} LIMIT ? OFFSET ?"
        );
        let count = format!("SELECT COUNT(*) FROM reports r WHERE {filter}");
        let limit = i64::try_from(q.limit).unwrap_or(i64::MAX);
        let from = i64::try_from(q.from).unwrap_or(i64::MAX);
        self.db.read(|c| {
            let total: i64 = c.query_row(&count, params_from_iter(args.iter()), |r| r.get(0))?;
            let mut page = args.clone();
            page.push(limit.into());
            page.push(from.into());
            let mut st = c.prepare(&sql)?;
            let rows = st
                .query_map(params_from_iter(page.iter()), report)?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok((rows, total.max(0) as u64))
        })
    }

    fn event_report(&self, id: i64) -> StoreResult<Option<EventReportRow>> {
        self.db.read(|c| {
            Ok(c.query_row(
                &format!(
                    "SELECT {REPORT_COLS} FROM reports r WHERE r.id = ?1 AND r.event_id IS NOT NULL \
                     AND r.room_id IS NOT NULL"
                ),
                [id],
                report,
            )
            .optional()?)
        })
    }

    fn delete_event_report(&self, id: i64) -> StoreResult<bool> {
        self.db.write(move |ctx| {
            let n = ctx.tx.execute(
                "DELETE FROM reports WHERE id = ?1 AND event_id IS NOT NULL",
                [id],
            )?;
            Ok(n > 0)
        })
    }

    fn event_json(&self, event_id: &str) -> StoreResult<Option<String>> {
        self.db.read(|c| {
            Ok(c.query_row(
                "SELECT json FROM events WHERE event_id = ?1",
                [event_id],
                |r| r.get(0),
            )
            .optional()?)
        })
    }
}
