//! `SearchStore`: queries over the FTS5 index `event_search` (kept by triggers on `events`,
//! schema `v11_spec.sql`). Visibility comes in as position ranges per room, so counting and
//! paging happen in one place, here.

use rusqlite::params;

use super::SqliteStore;
use super::rooms::{EVENT_COLS, collect, event_from_row};
use crate::store::StoreResult;
use crate::store::search::{SearchHit, SearchOrder, SearchQuery, SearchStore};

/// The hits of a query, before ordering (`r` is the redaction `EVENT_COLS` reads: always NULL
/// here, redacted events are not hits): `?1` match, `?2` keys, `?3` ranges, `?4` senders (or
/// NULL), `?5` not_senders, `?6` url (NULL, 1 or 0).
const HITS: &str = "FROM event_search s
    JOIN event_search_rows x ON x.rowid = s.rowid
    JOIN events e ON e.event_id = x.event_id
    LEFT JOIN events r ON r.event_id = e.redacted_by
    WHERE event_search MATCH ?1
      AND x.key IN (SELECT value FROM json_each(?2))
      AND e.redacted_by IS NULL AND e.pos IS NOT NULL
      AND EXISTS (SELECT 1 FROM json_each(?3) v
                   WHERE json_extract(v.value, '$[0]') = x.room_id
                     AND e.pos BETWEEN json_extract(v.value, '$[1]') AND json_extract(v.value, '$[2]'))
      AND (?4 IS NULL OR e.sender IN (SELECT value FROM json_each(?4)))
      AND e.sender NOT IN (SELECT value FROM json_each(?5))
      AND (?6 IS NULL OR (json_type(e.json, '$.content.url') = 'text') = ?6)";

impl SearchStore for SqliteStore {
    fn search(&self, q: &SearchQuery) -> StoreResult<(Vec<SearchHit>, u64)> {
        let keys = serde_json::to_string(&q.keys)?;
        let ranges = serde_json::to_string(&q.ranges)?;
        let senders = q.senders.as_ref().map(serde_json::to_string).transpose()?;
        let not_senders = serde_json::to_string(&q.not_senders)?;
        let url = q.with_url.map(i64::from);
        let limit = q.limit as i64;
        self.db.read(|c| {
            let count: i64 = c.query_row(
                &format!("SELECT COUNT(*) {HITS}"),
                params![q.fts, keys, ranges, senders, not_senders, url],
                |r| r.get(0),
            )?;
            let (order, cursor) = match q.order {
                SearchOrder::Recent { before } => (
                    "AND e.pos < ?7 ORDER BY e.pos DESC LIMIT ?8",
                    before.unwrap_or(i64::MAX),
                ),
                SearchOrder::Rank { offset } => (
                    // ?7 is the offset; ties by recency so pages are stable.
                    "ORDER BY bm25(event_search), e.pos DESC LIMIT ?8 OFFSET ?7",
                    i64::try_from(offset).unwrap_or(i64::MAX),
                ),
            };
            let mut stmt = c.prepare(&format!(
                "SELECT {EVENT_COLS}, bm25(event_search) {HITS} {order}"
            ))?;
            let hits = collect(stmt.query_map(
                params![
                    q.fts,
                    keys,
                    ranges,
                    senders,
                    not_senders,
                    url,
                    cursor,
                    limit
                ],
                |r| {
                    Ok(SearchHit {
                        event: event_from_row(r)?,
                        rank: -r.get::<_, f64>(13)?,
                    })
                },
            )?)?;
            Ok((hits, count.max(0) as u64))
        })
    }
}

#[cfg(test)]
#[path = "search_tests.rs"]
mod tests;
