//! Room deletion and shutdown (Synapse's delete room API, v1 and v2): block the room, remove
//! its local members (moving them, and its local aliases, to a new room with a message when
//! `new_room_user_id` is given), then purge it through the retention service, which respects
//! legal holds and leaves nothing behind (service/retention/history.rs).

use std::sync::Arc;

use handover_policy::Denial;
use ruma::{RoomId, UserId};
use serde_json::json;

use super::media::RULE_LEGAL_HOLD;
use super::room_jobs::{DeleteRoomParams, RoomJob, ShutdownResult};
use super::{AdminService, action};
use crate::error::{Error, Result};
use crate::service::blocking;
use crate::service::rooms::EventSpec;
use crate::service::rooms::create::{CreateRoomParams, Preset};
use crate::service::users::Session;
use crate::store::room_jobs::{JobKind, JobStatus, RoomJobRow};

/// Synapse's defaults for the room the members are moved to.
pub const DEFAULT_ROOM_NAME: &str = "Content Violation Notification";
pub const DEFAULT_MESSAGE: &str = "Sharing illegal content on this server is not permitted and \
     rooms in violation will be blocked.";
/// Said in the members' leave events.
const LEAVE_REASON: &str = "This room has been shut down by a server admin";

impl AdminService {
    /// Checks a deletion request: the new room's user is local, the room is known (or, for
    /// v1 with `block`, may be unknown), no other deletion of it is running, and no legal hold
    /// stops the purge (refusal audited, rule `legal_hold`). Returns whether the room is known.
    async fn check_delete(
        &self,
        who: &Session,
        room_id: &RoomId,
        p: &DeleteRoomParams,
        allow_unknown: bool,
    ) -> Result<bool> {
        self.authorize(who, action::ROOM_DELETE, Some(room_id.as_str()))
            .await?;
        if let Some(u) = &p.new_room_user_id {
            self.require_local(u)?;
        }
        let known = self.rooms.room_version(room_id).await.is_ok();
        let block_only = allow_unknown && p.block;
        if !(known || block_only) {
            return Err(Error::not_found(format!("Unknown room {room_id}")));
        }
        if self.open_job(room_id, JobKind::Delete).await? {
            return Err(Error::invalid_param(format!(
                "A deletion of {room_id} is already in progress"
            )));
        }
        if known
            && p.purge
            && let Some(reason) = self.retention.hold_on(room_id, true).await?
        {
            let denial = Denial::new(RULE_LEGAL_HOLD, reason);
            (self.audit)
                .record_denial(
                    &denial,
                    action::ROOM_DELETE,
                    who.user_id.as_str(),
                    Some(room_id.as_str()),
                )
                .await?;
            return Err(Error::policy(&denial));
        }
        Ok(known)
    }

    /// `DELETE /_synapse/admin/v2/rooms/{roomId}`: starts the deletion; returns its id.
    pub async fn delete_room(
        self: &Arc<Self>,
        who: &Session,
        room_id: &RoomId,
        p: DeleteRoomParams,
    ) -> Result<String> {
        self.check_delete(who, room_id, &p, false).await?;
        let params = serde_json::to_value(&p).map_err(Error::internal)?;
        let row = self
            .new_job(JobKind::Delete, room_id, &who.user_id, params)
            .await?;
        let id = row.job_id.clone();
        self.spawn_job(row);
        Ok(id)
    }

    /// `DELETE /_synapse/admin/v1/rooms/{roomId}`: the same, answered once done. An unknown
    /// room with `block` is only blocked (pre-emptively, as Synapse allows). The job runs on
    /// its own task, so a client that hangs up does not stop it half-way.
    pub async fn delete_room_now(
        self: &Arc<Self>,
        who: &Session,
        room_id: &RoomId,
        p: DeleteRoomParams,
    ) -> Result<ShutdownResult> {
        let known = self.check_delete(who, room_id, &p, true).await?;
        if !known {
            self.block(&who.user_id, room_id, true).await?;
            return Ok(ShutdownResult::default());
        }
        let params = serde_json::to_value(&p).map_err(Error::internal)?;
        let row = self
            .new_job(JobKind::Delete, room_id, &who.user_id, params)
            .await?;
        let this = self.clone();
        let job: RoomJob = tokio::spawn(async move { this.run_job(row).await })
            .await
            .map_err(|e| Error::internal(format!("room deletion task: {e}")))??;
        match job.status {
            JobStatus::Complete => Ok(job.shutdown.unwrap_or_default()),
            _ => Err(Error::internal(
                job.error
                    .unwrap_or_else(|| "the room deletion failed".into()),
            )),
        }
    }

    /// The deletion's steps (see the module comment); each may run again after a restart.
    pub(super) async fn run_delete(&self, row: &RoomJobRow) -> Result<ShutdownResult> {
        let p: DeleteRoomParams = serde_json::from_str(&row.params).map_err(Error::internal)?;
        let room_id = RoomId::parse(&row.room_id).map_err(Error::internal)?;
        let actor = UserId::parse(&row.requested_by).map_err(Error::internal)?;
        if p.block {
            self.block(&actor, &room_id, true).await?;
        }
        let result = match row.result.as_deref() {
            // Done before a restart: not redone (a second new room would be made).
            Some(done) => serde_json::from_str(done).map_err(Error::internal)?,
            None => {
                let r = self.shutdown(&room_id, &p).await?;
                let json = serde_json::to_string(&r).map_err(Error::internal)?;
                self.set_status(&row.job_id, JobStatus::Active, None, Some(json))
                    .await?;
                r
            }
        };
        if p.purge {
            if !p.force_purge && !result.failed_to_kick_users.is_empty() {
                return Err(Error::forbidden(format!(
                    "Users are still in the room ({}); set force_purge to purge anyway",
                    result.failed_to_kick_users.join(", ")
                )));
            }
            if self.rooms.room_version(&room_id).await.is_ok() {
                let (jobs, rid) = (self.jobs.clone(), room_id.to_string());
                blocking(move || Ok(jobs.delete_room_remnants(&rid)?)).await?;
                self.retention.delete_room(actor.as_str(), &room_id).await?;
            }
        }
        Ok(result)
    }

    /// Removes the room's local members (each leaves, as Synapse's shutdown does, and forgets
    /// the room) and, with `new_room_user_id`, makes the new room, says why in it, moves the
    /// members and the local aliases there.
    async fn shutdown(&self, room_id: &RoomId, p: &DeleteRoomParams) -> Result<ShutdownResult> {
        let mut r = ShutdownResult {
            local_aliases: self.rooms.local_aliases(room_id).await?,
            ..ShutdownResult::default()
        };
        let new_room = match &p.new_room_user_id {
            Some(owner) => Some(self.notice_room(owner, p).await?),
            None => None,
        };
        r.new_room_id = new_room.as_ref().map(|r| r.to_string());
        let server = self.users.server_name().to_owned();
        let mut members = self.rooms.member_rows(room_id).await?;
        // Invites and knocks first: they are answered inside the room while it still has a
        // local member joined (else a rejection would go over federation).
        members.sort_by_key(|m| m.membership == "join");
        for m in members {
            let local = m.user_id.server_name().as_str() == server;
            if !local || !matches!(m.membership.as_str(), "join" | "invite" | "knock") {
                continue;
            }
            let user = m.user_id;
            match self
                .rooms
                .leave(room_id, &user, Some(LEAVE_REASON.into()))
                .await
            {
                Ok(()) => {
                    let _ = self.rooms.forget(room_id, &user).await;
                    r.kicked_users.push(user.to_string());
                }
                Err(e) => {
                    tracing::warn!(%user, error = %e, "shutdown could not remove a member");
                    r.failed_to_kick_users.push(user.to_string());
                    continue;
                }
            }
            if let (Some(new), Some(owner)) = (&new_room, &p.new_room_user_id)
                && &user != owner
                && let Err(e) = self.rooms.join(new, &user, None).await
            {
                // Still removed from the old room; they can be invited by hand.
                tracing::warn!(%user, error = %e, "shutdown could not move a member");
            }
        }
        if let (Some(new), Some(owner)) = (&new_room, &p.new_room_user_id) {
            for alias in &r.local_aliases {
                self.rooms.move_alias(alias, new, owner).await?;
            }
        }
        Ok(r)
    }

    /// The room the members are moved to: public to join (they join it themselves), members
    /// at power -10 so only its admin speaks, and the admin's message first.
    async fn notice_room(&self, owner: &UserId, p: &DeleteRoomParams) -> Result<ruma::OwnedRoomId> {
        let mut pl = serde_json::Map::new();
        pl.insert("users_default".into(), json!(-10));
        let params = CreateRoomParams {
            version: None,
            preset: Some(Preset::PublicChat),
            is_public: false,
            name: Some(
                p.room_name
                    .clone()
                    .unwrap_or_else(|| DEFAULT_ROOM_NAME.into()),
            ),
            topic: None,
            alias_localpart: None,
            invite: vec![],
            is_direct: false,
            initial_state: vec![],
            creation_content: None,
            power_level_override: Some(pl),
        };
        let new = self.rooms.create_room(owner, params).await?;
        let body = p.message.clone().unwrap_or_else(|| DEFAULT_MESSAGE.into());
        let spec = EventSpec::new(
            ruma::events::TimelineEventType::RoomMessage,
            json!({ "msgtype": "m.text", "body": body }),
            None,
        );
        self.rooms.send(&new, owner, spec, None).await?;
        Ok(new)
    }
}
