//! Media moderation (Synapse's media admin API): a user's uploads, a room's files, quarantine
//! (the same `media_quarantine` flag the upload scanner sets, so a quarantined file is never
//! served), protection from quarantine, and deletion through the media service's deletion path
//! (row and pending-deletion record first, then the files). A file a legal hold covers is never
//! deleted: a single deletion is refused naming rule `legal_hold` (audited), bulk deletions
//! skip it.

use handover_policy::Denial;
use ruma::{RoomId, UserId};

use super::{AdminService, action};
use crate::error::{Error, Result};
use crate::service::blocking;
use crate::service::users::Session;
use crate::store::admin_media::{
    AdminMediaRow, MediaListQuery, MediaStatsQuery, MediaSweep, UserMediaStats,
};

/// Rule id of an admin action refused because a legal hold covers its target.
pub const RULE_LEGAL_HOLD: &str = "legal_hold";

/// A room's files, split as Synapse does.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct RoomMedia {
    pub local: Vec<String>,
    pub remote: Vec<String>,
}

impl AdminService {
    fn mxc_prefix(&self) -> String {
        format!("mxc://{}/", self.users.server_name())
    }

    /// Admin media calls name local files only (we keep no remote files to moderate beyond a
    /// short-lived cache).
    fn require_local_media(&self, server: &str, media_id: &str) -> Result<String> {
        if server != self.users.server_name() {
            return Err(Error::invalid_param("Can only act on local media"));
        }
        if media_id.is_empty()
            || !media_id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            return Err(Error::invalid_param(format!(
                "Invalid media id {media_id:?}"
            )));
        }
        Ok(format!("{}{media_id}", self.mxc_prefix()))
    }

    pub async fn user_media(
        &self,
        who: &Session,
        user_id: &UserId,
        q: MediaListQuery,
    ) -> Result<(Vec<AdminMediaRow>, u64)> {
        self.authorize(who, action::USER_MEDIA, Some(user_id.as_str()))
            .await?;
        self.require_local(user_id)?;
        if self.load_details(user_id).await?.is_none() {
            return Err(Error::not_found("User not found"));
        }
        let (store, user) = (self.media_store.clone(), user_id.to_string());
        let page = blocking(move || Ok(store.user_media(&user, &q)?)).await?;
        self.audited(who, action::USER_MEDIA, user_id.as_str(), None)
            .await?;
        Ok(page)
    }

    /// Deletes the page of the user's uploads that the same query would list; files a legal
    /// hold covers are kept. Returns the deleted ids and how many that was.
    pub async fn delete_user_media(
        &self,
        who: &Session,
        user_id: &UserId,
        q: MediaListQuery,
    ) -> Result<Vec<String>> {
        self.authorize(who, action::USER_MEDIA_DELETE, Some(user_id.as_str()))
            .await?;
        self.require_local(user_id)?;
        if self.load_details(user_id).await?.is_none() {
            return Err(Error::not_found("User not found"));
        }
        let (store, user) = (self.media_store.clone(), user_id.to_string());
        let (rows, _) = blocking(move || Ok(store.user_media(&user, &q)?)).await?;
        let ids = rows.into_iter().map(|r| r.media_id).collect();
        let deleted = self.delete_unheld(ids).await?;
        let d = ("deleted_media", deleted.clone().into());
        self.audited(who, action::USER_MEDIA_DELETE, user_id.as_str(), Some(d))
            .await?;
        Ok(deleted)
    }

    pub async fn room_media(&self, who: &Session, room_id: &RoomId) -> Result<RoomMedia> {
        self.authorize(who, action::ROOM_MEDIA, Some(room_id.as_str()))
            .await?;
        self.rooms.current_state(room_id).await?;
        let (store, room, prefix) = (
            self.media_store.clone(),
            room_id.to_string(),
            self.mxc_prefix(),
        );
        let all = blocking(move || Ok(store.room_media(&room, &prefix)?)).await?;
        let prefix = self.mxc_prefix();
        let (local, remote) = all.into_iter().partition(|m| m.starts_with(&prefix));
        self.audited(who, action::ROOM_MEDIA, room_id.as_str(), None)
            .await?;
        Ok(RoomMedia { local, remote })
    }

    /// Quarantines one file (a protected one stays as it is, as on Synapse). Idempotent.
    pub async fn quarantine_media(
        &self,
        who: &Session,
        server: &str,
        media_id: &str,
    ) -> Result<()> {
        let mxc = format!("mxc://{server}/{media_id}");
        self.authorize(who, action::MEDIA_QUARANTINE, Some(&mxc))
            .await?;
        self.require_local_media(server, media_id)?;
        let n = self.quarantine_ids(who, vec![media_id.to_owned()]).await?;
        self.audited(
            who,
            action::MEDIA_QUARANTINE,
            &mxc,
            Some(("quarantined", n.into())),
        )
        .await
    }

    pub async fn unquarantine_media(
        &self,
        who: &Session,
        server: &str,
        media_id: &str,
    ) -> Result<()> {
        let mxc = format!("mxc://{server}/{media_id}");
        self.authorize(who, action::MEDIA_UNQUARANTINE, Some(&mxc))
            .await?;
        self.require_local_media(server, media_id)?;
        let (store, id) = (self.media_store.clone(), media_id.to_owned());
        let was = blocking(move || Ok(store.unquarantine_media(&id)?)).await?;
        self.audited(
            who,
            action::MEDIA_UNQUARANTINE,
            &mxc,
            Some(("was_quarantined", was.into())),
        )
        .await
    }

    /// Quarantines every local file the room's events refer to or that is bound to it.
    pub async fn quarantine_room_media(&self, who: &Session, room_id: &RoomId) -> Result<u64> {
        self.authorize(who, action::ROOM_MEDIA_QUARANTINE, Some(room_id.as_str()))
            .await?;
        let (store, room, prefix) = (
            self.media_store.clone(),
            room_id.to_string(),
            self.mxc_prefix(),
        );
        let all = blocking(move || Ok(store.room_media(&room, &prefix)?)).await?;
        let prefix = self.mxc_prefix();
        let ids = (all.iter())
            .filter_map(|m| m.strip_prefix(&prefix).map(str::to_owned))
            .collect();
        let n = self.quarantine_ids(who, ids).await?;
        self.audited(
            who,
            action::ROOM_MEDIA_QUARANTINE,
            room_id.as_str(),
            Some(("quarantined", n.into())),
        )
        .await?;
        Ok(n)
    }

    pub async fn quarantine_user_media(&self, who: &Session, user_id: &UserId) -> Result<u64> {
        self.authorize(who, action::USER_MEDIA_QUARANTINE, Some(user_id.as_str()))
            .await?;
        self.require_local(user_id)?;
        let (store, user) = (self.media_store.clone(), user_id.to_string());
        let ids = blocking(move || Ok(store.user_media_ids(&user)?)).await?;
        let n = self.quarantine_ids(who, ids).await?;
        self.audited(
            who,
            action::USER_MEDIA_QUARANTINE,
            user_id.as_str(),
            Some(("quarantined", n.into())),
        )
        .await?;
        Ok(n)
    }

    async fn quarantine_ids(&self, who: &Session, ids: Vec<String>) -> Result<u64> {
        let (store, by) = (self.media_store.clone(), who.user_id.to_string());
        blocking(move || Ok(store.quarantine_media(&ids, &by)?)).await
    }

    /// Protects a file from quarantine (or lifts the protection).
    pub async fn protect_media(&self, who: &Session, media_id: &str, protect: bool) -> Result<()> {
        let server = self.users.server_name().to_owned();
        let mxc = format!("mxc://{server}/{media_id}");
        let what = if protect {
            action::MEDIA_PROTECT
        } else {
            action::MEDIA_UNPROTECT
        };
        self.authorize(who, what, Some(&mxc)).await?;
        self.require_local_media(&server, media_id)?;
        let (store, id) = (self.media_store.clone(), media_id.to_owned());
        if !blocking(move || Ok(store.set_media_protected(&id, protect)?)).await? {
            return Err(Error::not_found("Unknown media"));
        }
        self.audited(who, what, &mxc, None).await
    }

    /// Deletes one local file; refused (rule `legal_hold`, audited) when a hold covers it.
    pub async fn delete_media(
        &self,
        who: &Session,
        server: &str,
        media_id: &str,
    ) -> Result<Vec<String>> {
        let mxc = format!("mxc://{server}/{media_id}");
        self.authorize(who, action::MEDIA_DELETE, Some(&mxc))
            .await?;
        self.require_local_media(server, media_id)?;
        let (store, id, m) = (self.media_store.clone(), media_id.to_owned(), mxc.clone());
        let (exists, held) = blocking(move || {
            Ok((
                store.media_row(&id)?.is_some(),
                store.media_under_hold(&id, &m)?,
            ))
        })
        .await?;
        if !exists {
            return Err(Error::not_found("Unknown media"));
        }
        if held {
            let denial = Denial::new(
                RULE_LEGAL_HOLD,
                "a legal hold covers this file (its uploader or a room it was sent in)",
            );
            self.audit
                .record_denial(
                    &denial,
                    action::MEDIA_DELETE,
                    who.user_id.as_str(),
                    Some(&mxc),
                )
                .await?;
            return Err(Error::policy(&denial));
        }
        self.media.delete_local(vec![media_id.to_owned()]).await?;
        self.audited(who, action::MEDIA_DELETE, &mxc, None).await?;
        Ok(vec![media_id.to_owned()])
    }

    /// `POST /media/delete?before_ts=`: local files uploaded before the cut-off (we keep no
    /// access times), larger than `size_gt`, not protected, optionally not avatars; files under a
    /// legal hold are kept.
    pub async fn delete_media_before(
        &self,
        who: &Session,
        before_ts: i64,
        size_gt: u64,
        keep_profiles: bool,
    ) -> Result<Vec<String>> {
        let server = self.users.server_name().to_owned();
        self.authorize(who, action::MEDIA_DELETE_OLD, Some(&server))
            .await?;
        let sweep = MediaSweep {
            before_ts,
            size_gt,
            keep_profiles,
            mxc_prefix: self.mxc_prefix(),
        };
        let store = self.media_store.clone();
        let ids = blocking(move || Ok(store.media_to_sweep(&sweep)?)).await?;
        let deleted = self.delete_unheld(ids).await?;
        let d = serde_json::json!({
            "before_ts": before_ts, "size_gt": size_gt, "keep_profiles": keep_profiles,
            "deleted": deleted.len(),
        });
        self.audited(who, action::MEDIA_DELETE_OLD, &server, Some(("sweep", d)))
            .await?;
        Ok(deleted)
    }

    async fn delete_unheld(&self, ids: Vec<String>) -> Result<Vec<String>> {
        let (store, prefix) = (self.media_store.clone(), self.mxc_prefix());
        let free = blocking(move || {
            let mut free = Vec::new();
            for id in ids {
                if !store.media_under_hold(&id, &format!("{prefix}{id}"))? {
                    free.push(id);
                }
            }
            Ok(free)
        })
        .await?;
        self.media.delete_local(free.clone()).await?;
        Ok(free)
    }

    /// Synapse's `statistics/users/media`: uploads per local user.
    pub async fn media_statistics(
        &self,
        who: &Session,
        q: MediaStatsQuery,
    ) -> Result<(Vec<UserMediaStats>, u64)> {
        self.authorize(who, action::MEDIA_STATISTICS, None).await?;
        let store = self.media_store.clone();
        let page = blocking(move || Ok(store.media_statistics(&q)?)).await?;
        let server = self.users.server_name().to_owned();
        self.audited(who, action::MEDIA_STATISTICS, &server, None)
            .await?;
        Ok(page)
    }
}
