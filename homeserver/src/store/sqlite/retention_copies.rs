//! Retention of the other copies of content (docs/GOVERNANCE.md, "Other copies of content"):
//! the federation outbox, content report reasons and the stripped state of remote invites. Deleted and overwritten cells are zeroed
//! (`secure_delete`) and the purge reclaims the space afterwards, as for events.

use super::SqliteStore;
use super::outbox::collect_payloads;
use crate::store::StoreResult;

impl SqliteStore {
    pub(super) fn expire_outbox_rows(&self, before_ts: i64, dry_run: bool) -> StoreResult<usize> {
        if dry_run {
            return self.db.read(|c| {
                let n: i64 = c.query_row(
                    "SELECT COUNT(*) FROM federation_outbox WHERE queued_ts < ?1",
                    [before_ts],
                    |r| r.get(0),
                )?;
                Ok(n as usize)
            });
        }
        self.db.write(move |ctx| {
            let payloads = {
                let mut st = ctx.tx.prepare_cached(
                    "DELETE FROM federation_outbox WHERE queued_ts < ?1 RETURNING payload_id",
                )?;
                st.query_map([before_ts], |r| r.get::<_, i64>(0))?
                    .collect::<Result<Vec<_>, _>>()?
            };
            collect_payloads(ctx.tx, &payloads)?;
            Ok(payloads.len())
        })
    }

    pub(super) fn erase_old_report_reasons(
        &self,
        before_ts: i64,
        dry_run: bool,
    ) -> StoreResult<usize> {
        const OLD: &str = "ts < ?1 AND reason IS NOT NULL";
        if dry_run {
            return self.db.read(|c| {
                let n: i64 = c.query_row(
                    &format!("SELECT COUNT(*) FROM reports WHERE {OLD}"),
                    [before_ts],
                    |r| r.get(0),
                )?;
                Ok(n as usize)
            });
        }
        self.db.write(move |ctx| {
            Ok(ctx.tx.execute(
                &format!("UPDATE reports SET reason = NULL WHERE {OLD}"),
                [before_ts],
            )?)
        })
    }

    pub(super) fn expire_remote_invite_rows(
        &self,
        before_ts: i64,
        dry_run: bool,
    ) -> StoreResult<usize> {
        // Answered (the user's membership is no longer this invite), or sent too long ago.
        const GONE: &str = "NOT EXISTS (SELECT 1 FROM memberships m WHERE m.room_id = i.room_id
                AND m.user_id = i.user_id AND m.membership = 'invite' AND m.event_id = i.event_id)
             OR NOT EXISTS (SELECT 1 FROM events e WHERE e.event_id = i.event_id
                AND e.origin_server_ts >= ?1)";
        if dry_run {
            return self.db.read(|c| {
                let n: i64 = c.query_row(
                    &format!("SELECT COUNT(*) FROM remote_invites i WHERE {GONE}"),
                    [before_ts],
                    |r| r.get(0),
                )?;
                Ok(n as usize)
            });
        }
        self.db.write(move |ctx| {
            Ok(ctx.tx.execute(
                &format!(
                    "DELETE FROM remote_invites WHERE (room_id, user_id) IN
                     (SELECT i.room_id, i.user_id FROM remote_invites i WHERE {GONE})"
                ),
                [before_ts],
            )?)
        })
    }
}
