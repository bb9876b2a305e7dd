//! The purge job: expired events (deleted, or minimised when the row is needed), the media they
//! referenced, redacted originals past their grace, rooms every local member has forgotten;
//! then the database files are rewritten so nothing deleted survives in free pages or the WAL.
//! Work goes through the writer in batches of `batch_size` rows. Held rooms and held users'
//! events are never touched. Every run (dry runs too) is audited with counts only.

use std::collections::{BTreeSet, HashMap, HashSet};

use handover_compliance::Outcome;
use ruma::RoomVersionId;
use ruma::canonical_json::{CanonicalJsonObject, redact};
use ruma::room_version_rules::RedactionRules;
use serde::Serialize;
use serde_json::Value;

use super::RetentionService;
use crate::error::{Error, Result};
use crate::service::audit::entry;
use crate::service::blocking;
use crate::service::progress::{JobProgress, NoProgress};
use crate::service::rooms::state::rules_for;
use crate::store::retention::{Candidate, Cursor, HoldKind, Minimised};

pub const ACTION_PURGE: &str = "retention.purge";

/// What a run did (or, in a dry run, would do). Ids only, never content.
#[derive(Debug, Default, Clone, Serialize)]
pub struct PurgeReport {
    pub dry_run: bool,
    pub rooms_checked: usize,
    pub rooms_held: usize,
    /// Expired events whose rows were deleted.
    pub events_deleted: usize,
    /// Expired events kept for the room's integrity (state, DAG tips, redactions of kept
    /// events) whose stored JSON was reduced to the redacted form.
    pub events_minimised: usize,
    /// Redacted events whose original content was erased after `redacted_grace`.
    pub redacted_erased: usize,
    pub media_deleted: usize,
    /// Files of earlier deletions whose unlink had failed, unlinked by this run.
    pub media_unlink_retried: usize,
    /// Files whose unlink still fails (their rows are gone; retried by every run).
    pub media_unlink_failing: usize,
    /// Files an expired event referred to, kept because another remaining event (or a profile
    /// avatar) still refers to them.
    pub media_kept_referenced: usize,
    /// Redacted originals and forgotten rooms kept because they are younger than the room's
    /// effective `min_lifetime` (MSC1763: nothing is purged before it).
    pub min_lifetime_kept: usize,
    pub rooms_deleted: usize,
    /// Undelivered to-device messages past `to_device_lifetime`.
    pub to_device_deleted: usize,
    /// Federation queue rows past `outbox_lifetime` (with their payloads).
    pub outbox_deleted: usize,
    /// Cached copies of other servers' media past `remote_media_lifetime`.
    pub remote_media_deleted: usize,
    /// Content reports whose reason was erased after `report_reason_lifetime`.
    pub report_reasons_erased: usize,
    /// Stripped state of answered invites from other servers, or past `remote_invite_lifetime`.
    pub remote_invites_deleted: usize,
    /// Unreferenced octet-stream uploads (encrypted attachments) past their lifetime.
    pub unreferenced_media_deleted: usize,
    /// Event rows deleted with forgotten rooms.
    pub room_events_deleted: usize,
    /// Free pages were returned (incremental vacuum) and the WAL checkpointed and truncated.
    pub space_reclaimed: bool,
    /// Dry run only: the ids that would go.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub event_ids: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub media_ids: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub room_ids: Vec<String>,
}

impl PurgeReport {
    fn changed(&self) -> bool {
        self.events_deleted
            + self.events_minimised
            + self.redacted_erased
            + self.media_deleted
            + self.media_unlink_retried
            + self.rooms_deleted
            + self.to_device_deleted
            + self.outbox_deleted
            + self.remote_media_deleted
            + self.report_reasons_erased
            + self.remote_invites_deleted
            + self.unreferenced_media_deleted
            > 0
    }
}

/// Local media ids (`mxc://<us>/<id>`) an event's content refers to.
pub fn media_ids(json: &str, server_name: &str) -> Vec<String> {
    let v: Value = serde_json::from_str(json).unwrap_or(Value::Null);
    let mut out = vec![];
    for c in [&v["content"], &v["content"]["m.new_content"]] {
        for url in [
            &c["url"],
            &c["file"]["url"],
            &c["info"]["thumbnail_url"],
            &c["info"]["thumbnail_file"]["url"],
        ] {
            if let Some((server, id)) = url
                .as_str()
                .and_then(|u| u.strip_prefix("mxc://"))
                .and_then(|u| u.split_once('/'))
                && server == server_name
            {
                out.push(id.to_owned());
            }
        }
    }
    out
}

/// An event's `origin_server_ts` from its stored JSON (0 if unreadable: treated as old).
fn origin_server_ts(json: &str) -> i64 {
    serde_json::from_str::<Value>(json)
        .ok()
        .and_then(|v| v["origin_server_ts"].as_i64())
        .unwrap_or(0)
}

/// The event's redacted form (the room version's rules): only the keys auth needs remain.
pub(super) fn minimise(c: &Candidate, rules: &RedactionRules) -> Result<Minimised> {
    let obj: CanonicalJsonObject = serde_json::from_str(&c.json).map_err(Error::internal)?;
    let red = redact(obj, rules, None).map_err(Error::internal)?;
    let content = match red.get("content") {
        Some(v) => serde_json::to_string(v).map_err(Error::internal)?,
        None => "{}".into(),
    };
    Ok(Minimised {
        event_id: c.event_id.clone(),
        room_id: c.room_id.clone(),
        json: serde_json::to_string(&red).map_err(Error::internal)?,
        content,
        state: c.state_key.clone().map(|k| (c.kind.clone(), k)),
    })
}

pub(super) fn rules(version: &str) -> Result<RedactionRules> {
    let v = RoomVersionId::try_from(version).map_err(Error::internal)?;
    Ok(rules_for(&v)?.redaction)
}

/// One batch, split into rows to delete and rows to minimise, and the media they refer to.
#[derive(Default)]
pub(super) struct Batch {
    pub(super) delete: Vec<String>,
    pub(super) minimise: Vec<Minimised>,
    pub(super) media: BTreeSet<String>,
}

impl RetentionService {
    /// One purge run. `actor` is who ran it (the server's job or `admin-cli`).
    pub async fn purge(&self, actor: &str, dry_run: bool) -> Result<PurgeReport> {
        self.purge_with_progress(actor, dry_run, &mut NoProgress)
            .await
    }

    /// A purge run telling `progress` how far it got: one unit per room, then one for the
    /// server-wide steps (redacted originals, forgotten rooms, copies, reclaiming space).
    pub async fn purge_with_progress(
        &self,
        actor: &str,
        dry_run: bool,
        progress: &mut dyn JobProgress,
    ) -> Result<PurgeReport> {
        let now = self.clock.now_ms();
        let mut rep = PurgeReport {
            dry_run,
            ..PurgeReport::default()
        };
        let held: HashSet<String> = self
            .holds()
            .await?
            .into_iter()
            .filter(|h| h.kind == HoldKind::Room)
            .map(|h| h.target)
            .collect();
        let store = self.store.clone();
        let rooms = blocking(move || Ok(store.rooms_with_versions()?)).await?;
        let total = rooms.len() as u64 + 1;
        for (done, (room_id, version)) in rooms.into_iter().enumerate() {
            progress.update(done as u64, total);
            if held.contains(&room_id) {
                rep.rooms_held += 1;
                continue;
            }
            rep.rooms_checked += 1;
            let Some(max) = self.effective(&room_id).await?.max_lifetime else {
                continue;
            };
            let cutoff = now.saturating_sub(i64::try_from(max).unwrap_or(i64::MAX));
            self.expire_room(&room_id, &rules(&version)?, cutoff, &mut rep)
                .await?;
        }
        let grace = i64::try_from(self.settings.redacted_grace_ms).unwrap_or(i64::MAX);
        self.erase_redacted(now, now.saturating_sub(grace), &mut rep)
            .await?;
        self.delete_forgotten_rooms(now, &mut rep).await?;
        if let Some(life) = self.settings.to_device_lifetime_ms {
            let before = now.saturating_sub(i64::try_from(life).unwrap_or(i64::MAX));
            let store = self.store.clone();
            rep.to_device_deleted =
                blocking(move || Ok(store.expire_to_device(before, dry_run)?)).await?;
        }
        self.expire_copies(now, &mut rep).await?;
        if !dry_run {
            // Last, so an unlink that failed in this run gets a second try at once.
            (rep.media_unlink_retried, rep.media_unlink_failing) =
                self.media.retry_pending_deletions().await?;
        }
        if !dry_run && rep.changed() {
            let store = self.store.clone();
            blocking(move || Ok(store.reclaim_space()?)).await?;
            rep.space_reclaimed = true;
        }
        progress.update(total, total);
        let e = entry(actor, ACTION_PURGE, Outcome::Success)
            .detail("dry_run", dry_run)
            .detail("rooms_checked", rep.rooms_checked as u64)
            .detail("rooms_held", rep.rooms_held as u64)
            .detail("events_deleted", rep.events_deleted as u64)
            .detail("events_minimised", rep.events_minimised as u64)
            .detail("redacted_erased", rep.redacted_erased as u64)
            .detail("media_deleted", rep.media_deleted as u64)
            .detail("media_kept_referenced", rep.media_kept_referenced as u64)
            .detail("media_unlink_retried", rep.media_unlink_retried as u64)
            .detail("media_unlink_failing", rep.media_unlink_failing as u64)
            .detail("min_lifetime_kept", rep.min_lifetime_kept as u64)
            .detail("rooms_deleted", rep.rooms_deleted as u64)
            .detail("room_events_deleted", rep.room_events_deleted as u64)
            .detail("to_device_deleted", rep.to_device_deleted as u64)
            .detail("outbox_deleted", rep.outbox_deleted as u64)
            .detail("remote_media_deleted", rep.remote_media_deleted as u64)
            .detail("report_reasons_erased", rep.report_reasons_erased as u64)
            .detail("remote_invites_deleted", rep.remote_invites_deleted as u64)
            .detail(
                "unreferenced_media_deleted",
                rep.unreferenced_media_deleted as u64,
            )
            .detail("space_reclaimed", rep.space_reclaimed);
        self.audit.record(e).await?;
        tracing::info!(
            dry_run,
            events_deleted = rep.events_deleted,
            events_minimised = rep.events_minimised,
            redacted_erased = rep.redacted_erased,
            media_deleted = rep.media_deleted,
            rooms_deleted = rep.rooms_deleted,
            "retention purge"
        );
        Ok(rep)
    }

    async fn expire_room(
        &self,
        room_id: &str,
        rules: &RedactionRules,
        cutoff: i64,
        rep: &mut PurgeReport,
    ) -> Result<()> {
        let limit = self.settings.batch_size;
        let mut after = Cursor::START;
        loop {
            let (store, rid, from) = (self.store.clone(), room_id.to_owned(), after.clone());
            let found =
                blocking(move || Ok(store.expired_events(&rid, cutoff, &from, limit)?)).await?;
            let Some(last) = found.last() else { break };
            after = Cursor::after(last);
            let full = found.len() == limit;
            let mut batch = Batch::default();
            for c in &found {
                // Media of state events (avatars) may still be in use by current state.
                if c.state_key.is_none() {
                    batch
                        .media
                        .extend(media_ids(&c.json, self.server_name.as_str()));
                }
                if c.keep_row {
                    batch.minimise.push(minimise(c, rules)?);
                } else {
                    batch.delete.push(c.event_id.clone());
                }
            }
            let (deleted, minimised, media) = self.commit(batch, rep).await?;
            rep.events_deleted += deleted;
            rep.events_minimised += minimised;
            rep.media_deleted += media;
            if !full {
                break;
            }
        }
        Ok(())
    }

    /// Whether an event sent at `ts` in `room_id` is younger than the room's effective
    /// `min_lifetime` (looked up once per room and run, in `mins`).
    async fn within_min_lifetime(
        &self,
        room_id: &str,
        ts: i64,
        now: i64,
        mins: &mut HashMap<String, Option<u64>>,
    ) -> Result<bool> {
        let min = match mins.get(room_id) {
            Some(m) => *m,
            None => {
                let m = self.effective(room_id).await?.min_lifetime;
                mins.insert(room_id.to_owned(), m);
                m
            }
        };
        Ok(min.is_some_and(|m| now.saturating_sub(ts) < i64::try_from(m).unwrap_or(i64::MAX)))
    }

    async fn erase_redacted(&self, now: i64, before: i64, rep: &mut PurgeReport) -> Result<()> {
        let limit = self.settings.batch_size;
        let counted: HashSet<String> = rep.event_ids.iter().cloned().collect();
        let mut mins = HashMap::new();
        let mut after = Cursor::START;
        loop {
            let (store, from) = (self.store.clone(), after.clone());
            let found =
                blocking(move || Ok(store.redacted_originals(before, &from, limit)?)).await?;
            let Some((last, _)) = found.last() else { break };
            after = Cursor::after(last);
            let full = found.len() == limit;
            let mut batch = Batch::default();
            for (c, version) in &found {
                // A dry run has already counted it among the expired events.
                if rep.dry_run && counted.contains(c.event_id.as_str()) {
                    continue;
                }
                // A redaction hides the event from clients at once; its original is erased
                // only once the room's minimum lifetime has passed too.
                let sent = origin_server_ts(&c.json);
                if self
                    .within_min_lifetime(&c.room_id, sent, now, &mut mins)
                    .await?
                {
                    rep.min_lifetime_kept += 1;
                    continue;
                }
                if c.state_key.is_none() {
                    batch
                        .media
                        .extend(media_ids(&c.json, self.server_name.as_str()));
                }
                batch.minimise.push(minimise(c, &rules(version)?)?);
            }
            let (_, minimised, media) = self.commit(batch, rep).await?;
            rep.redacted_erased += minimised;
            rep.media_deleted += media;
            if !full {
                break;
            }
        }
        Ok(())
    }

    async fn delete_forgotten_rooms(&self, now: i64, rep: &mut PurgeReport) -> Result<()> {
        let (store, server) = (self.store.clone(), self.server_name.to_string());
        let rooms = blocking(move || Ok(store.forgotten_rooms(&server)?)).await?;
        let limit = self.settings.batch_size;
        let mut mins = HashMap::new();
        for room_id in rooms {
            // Deleting the room deletes its newest event too: wait for its minimum lifetime.
            let (store, rid) = (self.store.clone(), room_id.clone());
            let newest = blocking(move || Ok(store.newest_event_ts(&rid)?)).await?;
            if let Some(ts) = newest
                && self
                    .within_min_lifetime(&room_id, ts, now, &mut mins)
                    .await?
            {
                rep.min_lifetime_kept += 1;
                continue;
            }
            // The media its messages referred to goes with it.
            let mut media = BTreeSet::new();
            let mut after = Cursor::START;
            loop {
                let (store, rid, from) = (self.store.clone(), room_id.clone(), after.clone());
                let found =
                    blocking(move || Ok(store.expired_events(&rid, i64::MAX, &from, limit)?))
                        .await?;
                let Some(last) = found.last() else { break };
                after = Cursor::after(last);
                for c in found.iter().filter(|c| c.state_key.is_none()) {
                    media.extend(media_ids(&c.json, self.server_name.as_str()));
                }
                if found.len() < limit {
                    break;
                }
            }
            let batch = Batch {
                media,
                ..Batch::default()
            };
            if rep.dry_run {
                rep.room_ids.push(room_id.clone());
                rep.rooms_deleted += 1;
                rep.media_deleted += self.commit(batch, rep).await?.2;
                continue;
            }
            let (store, rid) = (self.store.clone(), room_id.clone());
            rep.room_events_deleted += blocking(move || Ok(store.delete_room(&rid)?)).await?;
            rep.rooms_deleted += 1;
            if let Ok(rid) = ruma::RoomId::parse(&room_id) {
                self.rooms.evict(&rid);
            }
            rep.media_deleted += self.commit(batch, rep).await?.2;
        }
        Ok(())
    }

    /// Applies a batch (or, in a dry run, counts it and notes the ids):
    /// `(deleted, minimised, media deleted)`.
    pub(super) async fn commit(
        &self,
        b: Batch,
        rep: &mut PurgeReport,
    ) -> Result<(usize, usize, usize)> {
        // Media a held user uploaded stays, whoever's expiring event referred to it.
        let held_users: HashSet<String> = self
            .holds()
            .await?
            .into_iter()
            .filter(|h| h.kind == HoldKind::User)
            .map(|h| h.target)
            .collect();
        if rep.dry_run {
            rep.event_ids.extend(b.delete.iter().cloned());
            rep.event_ids
                .extend(b.minimise.iter().map(|m| m.event_id.clone()));
            let media = self.files_to_delete(b.media, &held_users, rep).await?;
            rep.media_ids.extend(media.iter().cloned());
            return Ok((b.delete.len(), b.minimise.len(), media.len()));
        }
        let (store, now) = (self.store.clone(), self.clock.now_ms());
        let (delete, minimise) = (b.delete, b.minimise);
        let (deleted, minimised) =
            blocking(move || Ok(store.purge_events(delete, minimise, now)?)).await?;
        // After the events (and their references) are gone: what is left decides.
        let media = self.files_to_delete(b.media, &held_users, rep).await?;
        let media = self.media.delete_local(media).await?;
        Ok((deleted, minimised, media))
    }
}
