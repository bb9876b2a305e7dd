//! Which files an expiring event takes with it. A file goes only when nothing that stays still
//! refers to it: no remaining (unminimised) event of any room, whoever sent it, and no profile
//! avatar. A file kept that way loses its room binding if that room no longer refers to it: the
//! binding moves to the room of the oldest remaining reference sent by the uploader (the events
//! that may bind a file, `media_not_in_your_rooms`), else to `profile` for an avatar, else it is
//! removed (only the uploader may fetch it). Files uploaded by a held user are never deleted.

use std::collections::{BTreeSet, HashSet};

use handover_policy::media::PROFILE_BINDING;

use super::RetentionService;
use super::purge::PurgeReport;
use crate::error::Result;

impl RetentionService {
    /// Of `ids` (files referred to by events this run removes), those to delete. In a dry run,
    /// the events and rooms the run has counted (`rep.event_ids`, `rep.room_ids`) are still
    /// stored and are discounted here; in a real run they are already gone.
    pub(super) async fn files_to_delete(
        &self,
        ids: BTreeSet<String>,
        held_users: &HashSet<String>,
        rep: &mut PurgeReport,
    ) -> Result<Vec<String>> {
        let gone_events: HashSet<&str> = rep.event_ids.iter().map(String::as_str).collect();
        let gone_rooms: HashSet<&str> = rep.room_ids.iter().map(String::as_str).collect();
        let mut delete = Vec::new();
        let mut kept = 0;
        for id in ids {
            let refs = self.media.references(&id).await?;
            let Some(uploader) = refs.uploader.as_deref() else {
                continue; // no content: nothing on disk
            };
            if held_users.contains(uploader) {
                continue;
            }
            let live: Vec<_> = refs
                .events
                .iter()
                .filter(|r| {
                    !gone_events.contains(r.event_id.as_str())
                        && !gone_rooms.contains(r.room_id.as_str())
                })
                .collect();
            if live.is_empty() && !refs.profile_avatar {
                delete.push(id);
                continue;
            }
            kept += 1;
            let bound = refs.bound_room.as_deref();
            let bound_still_refers = live.iter().any(|r| Some(r.room_id.as_str()) == bound);
            if rep.dry_run
                || bound.is_none()
                || bound == Some(PROFILE_BINDING)
                || bound_still_refers
            {
                continue;
            }
            let to = match live.iter().find(|r| r.sender == uploader) {
                Some(r) => Some((r.room_id.clone(), r.event_id.clone())),
                None if refs.profile_avatar => Some((PROFILE_BINDING.to_owned(), String::new())),
                None => None,
            };
            self.media.rebind(&id, to).await?;
        }
        rep.media_kept_referenced += kept;
        Ok(delete)
    }
}
