use rusqlite::params;

use super::SqliteStore;
use crate::store::reports::{Report, ReportStore};
use crate::store::{StoreError, StoreResult};

fn parse<T: TryFrom<String>>(v: Option<String>) -> StoreResult<Option<T>>
where
    T::Error: std::fmt::Display,
{
    v.map(|s| T::try_from(s).map_err(|e| StoreError::Corrupt(e.to_string())))
        .transpose()
}

impl ReportStore for SqliteStore {
    fn add_report(&self, r: &Report) -> StoreResult<i64> {
        let r = r.clone();
        self.db.write(move |ctx| {
            ctx.tx.execute(
                "INSERT INTO reports (reporter, room_id, event_id, target_user, reason, score, ts)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![
                    r.reporter.as_str(),
                    r.room_id.as_ref().map(|x| x.as_str()),
                    r.event_id.as_ref().map(|x| x.as_str()),
                    r.target_user.as_ref().map(|x| x.as_str()),
                    r.reason,
                    r.score,
                    r.ts
                ],
            )?;
            Ok(ctx.tx.last_insert_rowid())
        })
    }

    fn reports_after(&self, after_id: i64, limit: usize) -> StoreResult<Vec<(i64, Report)>> {
        self.db.read(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT id, reporter, room_id, event_id, target_user, reason, score, ts
                 FROM reports WHERE id > ?1 ORDER BY id LIMIT ?2",
            )?;
            type Row = (
                i64,
                String,
                Option<String>,
                Option<String>,
                Option<String>,
                Option<String>,
                Option<i64>,
                i64,
            );
            let rows = stmt
                .query_map(params![after_id, limit as i64], |r| {
                    Ok((
                        r.get(0)?,
                        r.get(1)?,
                        r.get(2)?,
                        r.get(3)?,
                        r.get(4)?,
                        r.get(5)?,
                        r.get(6)?,
                        r.get(7)?,
                    ))
                })?
                .collect::<Result<Vec<Row>, _>>()?;
            rows.into_iter()
                .map(|(id, reporter, room, event, target, reason, score, ts)| {
                    Ok((
                        id,
                        Report {
                            reporter: reporter.try_into().map_err(|e: ruma::IdParseError| {
                                StoreError::Corrupt(e.to_string())
                            })?,
                            room_id: parse(room)?,
                            event_id: parse(event)?,
                            target_user: parse(target)?,
                            reason,
                            score,
                            ts,
                        },
                    ))
                })
                .collect()
        })
    }
}
