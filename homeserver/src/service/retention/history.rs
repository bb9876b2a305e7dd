//! Purges an admin asks for (the admin API's room jobs, service/admin/room_jobs.rs), done with
//! the purge job's own machinery so they leave no more behind than it does: rows deleted (or,
//! where the room needs the row, minimised), their search index entries with them (triggers),
//! the files only they referred to, then the free pages and the WAL rewritten. Legal holds win:
//! a held room is refused, and a held user's events are never touched.
//!
//! - `purge_history`: a room's events sent before a time. State is kept (Synapse: "room state
//!   data is always preserved"), and so are local users' events unless `delete_local_events`.
//! - `delete_room`: the whole room, as a forgotten room is deleted.

use std::collections::BTreeSet;

use handover_compliance::Outcome;
use ruma::RoomId;
use serde_json::Value;

use super::RetentionService;
use super::purge::{Batch, PurgeReport, media_ids, minimise, rules};
use crate::error::{Error, Result};
use crate::service::audit::entry;
use crate::service::blocking;
use crate::store::retention::{Cursor, HoldKind};

pub const ACTION_PURGE_HISTORY: &str = "retention.purge_history";
pub const ACTION_ROOM_DELETE: &str = "retention.room_delete";
/// The rule a purge refused by a legal hold names (the admin API's, too).
const RULE_LEGAL_HOLD: &str = "legal_hold";

/// What `purge_history` removes.
#[derive(Debug, Clone, Copy)]
pub struct HistoryPurge {
    /// Events sent before this time (ms since the epoch).
    pub before_ts: i64,
    /// Also events sent by this server's users.
    pub delete_local_events: bool,
}

impl RetentionService {
    /// Why a legal hold stops purging the room, if one does: the room is held or (for a
    /// whole-room deletion) a held user sent events in it.
    pub async fn hold_on(&self, room_id: &RoomId, whole_room: bool) -> Result<Option<String>> {
        let holds = self.holds().await?;
        if holds
            .iter()
            .any(|h| h.kind == HoldKind::Room && h.target == room_id.as_str())
        {
            return Ok(Some(format!("room {room_id} is under a legal hold")));
        }
        if whole_room {
            let (store, rid) = (self.store.clone(), room_id.to_string());
            let users = blocking(move || Ok(store.held_senders_in_room(&rid)?)).await?;
            if !users.is_empty() {
                return Ok(Some(format!(
                    "events in room {room_id} were sent by users under a legal hold ({})",
                    users.join(", ")
                )));
            }
        }
        Ok(None)
    }

    /// A hold placed after the job was accepted still wins: the job fails naming the rule.
    async fn check_not_held(&self, room_id: &RoomId, whole_room: bool) -> Result<()> {
        match self.hold_on(room_id, whole_room).await? {
            Some(reason) => Err(Error::forbidden(format!(
                "Refused by rule `{RULE_LEGAL_HOLD}`: {reason}"
            ))),
            None => Ok(()),
        }
    }

    /// Purges the room's history sent before `p.before_ts`; audited with counts.
    pub async fn purge_history(
        &self,
        actor: &str,
        room_id: &RoomId,
        p: HistoryPurge,
    ) -> Result<PurgeReport> {
        self.check_not_held(room_id, false).await?;
        let version = self.rooms.room_version(room_id).await?;
        let rules = rules(version.as_str())?;
        let mut rep = PurgeReport::default();
        let limit = self.settings.batch_size;
        let suffix = format!(":{}", self.server_name);
        let mut after = Cursor::START;
        loop {
            let (store, rid, from) = (self.store.clone(), room_id.to_string(), after.clone());
            let found =
                blocking(move || Ok(store.expired_events(&rid, p.before_ts, &from, limit)?))
                    .await?;
            let Some(last) = found.last() else { break };
            after = Cursor::after(last);
            let full = found.len() == limit;
            let mut batch = Batch::default();
            for c in &found {
                if c.state_key.is_some() {
                    continue;
                }
                let sender = serde_json::from_str::<Value>(&c.json)
                    .ok()
                    .and_then(|v| v["sender"].as_str().map(str::to_owned))
                    .unwrap_or_default();
                if !p.delete_local_events && sender.ends_with(&suffix) {
                    continue;
                }
                batch
                    .media
                    .extend(media_ids(&c.json, self.server_name.as_str()));
                if c.keep_row {
                    batch.minimise.push(minimise(c, &rules)?);
                } else {
                    batch.delete.push(c.event_id.clone());
                }
            }
            let (deleted, minimised, media) = self.commit(batch, &mut rep).await?;
            rep.events_deleted += deleted;
            rep.events_minimised += minimised;
            rep.media_deleted += media;
            if !full {
                break;
            }
        }
        self.reclaim_if_changed(&mut rep).await?;
        let e = entry(actor, ACTION_PURGE_HISTORY, Outcome::Success)
            .target(room_id.as_str())
            .detail("before_ts", p.before_ts)
            .detail("delete_local_events", p.delete_local_events)
            .detail("events_deleted", rep.events_deleted as u64)
            .detail("events_minimised", rep.events_minimised as u64)
            .detail("media_deleted", rep.media_deleted as u64)
            .detail("space_reclaimed", rep.space_reclaimed);
        self.audit.record(e).await?;
        Ok(rep)
    }

    /// Deletes everything about the room (events, state, memberships, aliases, receipts, its
    /// files no other event uses, queued copies for other servers); audited with counts.
    pub async fn delete_room(&self, actor: &str, room_id: &RoomId) -> Result<PurgeReport> {
        self.check_not_held(room_id, true).await?;
        let mut rep = PurgeReport::default();
        let limit = self.settings.batch_size;
        let mut media = BTreeSet::new();
        let mut after = Cursor::START;
        loop {
            let (store, rid, from) = (self.store.clone(), room_id.to_string(), after.clone());
            let found =
                blocking(move || Ok(store.expired_events(&rid, i64::MAX, &from, limit)?)).await?;
            let Some(last) = found.last() else { break };
            after = Cursor::after(last);
            for c in found.iter().filter(|c| c.state_key.is_none()) {
                media.extend(media_ids(&c.json, self.server_name.as_str()));
            }
            if found.len() < limit {
                break;
            }
        }
        let (store, rid) = (self.store.clone(), room_id.to_string());
        rep.room_events_deleted = blocking(move || Ok(store.delete_room(&rid)?)).await?;
        rep.rooms_deleted = 1;
        self.rooms.evict(room_id);
        let batch = Batch {
            media,
            ..Batch::default()
        };
        rep.media_deleted += self.commit(batch, &mut rep).await?.2;
        self.reclaim_if_changed(&mut rep).await?;
        let e = entry(actor, ACTION_ROOM_DELETE, Outcome::Success)
            .target(room_id.as_str())
            .detail("room_events_deleted", rep.room_events_deleted as u64)
            .detail("media_deleted", rep.media_deleted as u64)
            .detail("space_reclaimed", rep.space_reclaimed);
        self.audit.record(e).await?;
        Ok(rep)
    }

    /// Returns free pages and truncates the WAL once anything went, so no deleted cell
    /// survives in either file.
    async fn reclaim_if_changed(&self, rep: &mut PurgeReport) -> Result<()> {
        if rep.events_deleted + rep.events_minimised + rep.room_events_deleted + rep.media_deleted
            > 0
        {
            let store = self.store.clone();
            blocking(move || Ok(store.reclaim_space()?)).await?;
            rep.space_reclaimed = true;
        }
        Ok(())
    }
}
