//! The admin API's rules (Synapse-compatible `/_synapse/admin/...` and the spec's
//! `/_matrix/client/v1/admin/...`). Every call is authorised here by the caller's admin flag,
//! refused with `403 M_FORBIDDEN` otherwise (that refusal audited too), and every allowed call
//! is audited with who, what and the target. One file per area.

mod erasure;
mod media;
#[cfg(test)]
mod media_tests;
mod reports;
mod restrictions;
mod room_block;
mod room_delete;
mod room_history;
mod room_jobs;
#[cfg(test)]
mod room_jobs_tests;
mod rooms;
#[cfg(test)]
mod tests;
mod tokens;
mod users;

pub use self::erasure::{ERASED, KEPT};
pub use self::media::{RULE_LEGAL_HOLD, RoomMedia};
pub use self::reports::LabelledReport;
pub use self::room_delete::{DEFAULT_MESSAGE, DEFAULT_ROOM_NAME};
pub use self::room_history::MessagesQuery;
pub use self::room_jobs::{DeleteRoomParams, PurgePoint, RoomJob, ShutdownResult};
pub use self::rooms::{RoomListQuery, RoomOrder, RoomSummary};
pub use self::tokens::NewToken;
pub use self::users::{UserDetails, UserUpsert};

use std::sync::Arc;

use handover_compliance::Outcome;
use ruma::{OwnedUserId, UserId};

use super::account_rooms::AccountService;
use super::audit::{AuditService, entry};
use super::blocking;
use super::media::MediaService;
use super::push::PushService;
use super::retention::RetentionService;
use super::rooms::RoomService;
use super::users::{Session, UserService};
use crate::error::{Error, Result};
use crate::store::admin::{AdminRoomStore, AdminStore};
use crate::store::admin_media::AdminMediaStore;
use crate::store::registration_tokens::RegistrationTokenStore;
use crate::store::room_jobs::RoomJobStore;
use crate::store::threepids::ThreepidStore;

/// Audit action names of admin calls (`admin.<area>.<verb>`).
pub mod action {
    pub const USERS_LIST: &str = "admin.users.list";
    pub const USER_GET: &str = "admin.user.get";
    pub const USER_CREATE: &str = "admin.user.create";
    pub const USER_MODIFY: &str = "admin.user.modify";
    pub const USER_DEACTIVATE: &str = "admin.user.deactivate";
    /// Erasure on request (Art. 17), with the records-management exemption.
    pub const USER_ERASE: &str = "admin.user.erase";
    pub const USER_RESET_PASSWORD: &str = "admin.user.reset_password";
    pub const USER_SET_ADMIN: &str = "admin.user.set_admin";
    pub const USER_LOCK: &str = "admin.user.lock";
    pub const USER_SUSPEND: &str = "admin.user.suspend";
    pub const USER_WHOIS: &str = "admin.user.whois";
    pub const USER_DEVICES: &str = "admin.user.devices";
    pub const USER_DEVICES_DELETE: &str = "admin.user.devices.delete";
    pub const USER_JOINED_ROOMS: &str = "admin.user.joined_rooms";
    pub const ROOMS_LIST: &str = "admin.rooms.list";
    pub const ROOM_GET: &str = "admin.room.get";
    pub const ROOM_MEMBERS: &str = "admin.room.members";
    pub const ROOM_STATE: &str = "admin.room.state";
    pub const ROOM_MESSAGES: &str = "admin.room.messages";
    /// A room deletion requested (v1 or v2), and its end.
    pub const ROOM_DELETE: &str = "admin.room.delete";
    pub const ROOM_DELETE_DONE: &str = "admin.room.delete.done";
    pub const ROOM_DELETE_STATUS: &str = "admin.room.delete.status";
    pub const ROOM_BLOCK: &str = "admin.room.block";
    pub const ROOM_BLOCK_GET: &str = "admin.room.block.get";
    pub const ROOM_PURGE_HISTORY: &str = "admin.room.purge_history";
    pub const ROOM_PURGE_HISTORY_DONE: &str = "admin.room.purge_history.done";
    pub const ROOM_PURGE_HISTORY_STATUS: &str = "admin.room.purge_history.status";
    pub const REPORTS_LIST: &str = "admin.reports.list";
    pub const REPORT_GET: &str = "admin.report.get";
    pub const REPORT_DELETE: &str = "admin.report.delete";
    pub const USER_MEDIA: &str = "admin.user.media";
    pub const USER_MEDIA_DELETE: &str = "admin.user.media.delete";
    pub const USER_MEDIA_QUARANTINE: &str = "admin.user.media.quarantine";
    pub const ROOM_MEDIA: &str = "admin.room.media";
    pub const ROOM_MEDIA_QUARANTINE: &str = "admin.room.media.quarantine";
    pub const MEDIA_QUARANTINE: &str = "admin.media.quarantine";
    pub const MEDIA_UNQUARANTINE: &str = "admin.media.unquarantine";
    pub const MEDIA_PROTECT: &str = "admin.media.protect";
    pub const MEDIA_UNPROTECT: &str = "admin.media.unprotect";
    pub const MEDIA_DELETE: &str = "admin.media.delete";
    pub const MEDIA_DELETE_OLD: &str = "admin.media.delete_old";
    pub const TOKENS_LIST: &str = "admin.registration_tokens.list";
    pub const TOKEN_GET: &str = "admin.registration_token.get";
    pub const TOKEN_CREATE: &str = "admin.registration_token.create";
    pub const TOKEN_UPDATE: &str = "admin.registration_token.update";
    pub const TOKEN_DELETE: &str = "admin.registration_token.delete";
    pub const USER_PUSHERS: &str = "admin.user.pushers";
    pub const MEDIA_STATISTICS: &str = "admin.statistics.media";
    pub const DENIED: &str = "admin.denied";
}

pub struct AdminDeps {
    pub users: Arc<UserService>,
    pub accounts: Arc<AccountService>,
    pub rooms: Arc<RoomService>,
    pub audit: Arc<AuditService>,
    pub store: Arc<dyn AdminStore>,
    pub room_store: Arc<dyn AdminRoomStore>,
    pub threepids: Arc<dyn ThreepidStore>,
    pub media: Arc<MediaService>,
    pub media_store: Arc<dyn AdminMediaStore>,
    pub tokens: Arc<dyn RegistrationTokenStore>,
    pub push: Arc<PushService>,
    /// Purges for room deletion and history purge (holds respected there).
    pub retention: Arc<RetentionService>,
    /// Room jobs and the blocked-room list.
    pub jobs: Arc<dyn RoomJobStore>,
}

pub struct AdminService {
    users: Arc<UserService>,
    accounts: Arc<AccountService>,
    rooms: Arc<RoomService>,
    audit: Arc<AuditService>,
    store: Arc<dyn AdminStore>,
    room_store: Arc<dyn AdminRoomStore>,
    threepids: Arc<dyn ThreepidStore>,
    media: Arc<MediaService>,
    media_store: Arc<dyn AdminMediaStore>,
    tokens: Arc<dyn RegistrationTokenStore>,
    push: Arc<PushService>,
    retention: Arc<RetentionService>,
    jobs: Arc<dyn RoomJobStore>,
}

impl AdminService {
    /// Also loads the stored locks and suspensions, and the blocked rooms, into their checks.
    pub fn new(d: AdminDeps) -> Result<Self> {
        for r in d.store.restricted_users()? {
            let flags = super::users::RestrictionFlags {
                locked: r.locked,
                suspended: r.suspended,
            };
            d.users.restrictions().set(&r.user_id, flags);
        }
        Self {
            users: d.users,
            accounts: d.accounts,
            rooms: d.rooms,
            audit: d.audit,
            store: d.store,
            room_store: d.room_store,
            threepids: d.threepids,
            media: d.media,
            media_store: d.media_store,
            tokens: d.tokens,
            push: d.push,
            retention: d.retention,
            jobs: d.jobs,
        }
        .loaded()
    }

    fn loaded(self) -> Result<Self> {
        self.load_blocked_rooms()?;
        Ok(self)
    }

    /// The admin check every call starts with. A refusal is audited (who tried what, on whom)
    /// and says nothing about the target, so non-admins cannot probe accounts.
    /// Also used by the services admins reach through the console (SAR, console actions).
    pub(crate) async fn authorize(
        &self,
        who: &Session,
        what: &str,
        target: Option<&str>,
    ) -> Result<()> {
        if who.is_admin {
            return Ok(());
        }
        let mut e = entry(who.user_id.as_str(), action::DENIED, Outcome::Denied);
        if let Some(t) = target {
            e = e.target(t);
        }
        self.audit.record(e.detail("attempted", what)).await?;
        Err(Error::forbidden("You are not a server admin"))
    }

    /// The audit entry of an allowed call.
    async fn audited(
        &self,
        who: &Session,
        what: &str,
        target: &str,
        detail: Option<(&str, serde_json::Value)>,
    ) -> Result<()> {
        let mut e = entry(who.user_id.as_str(), what, Outcome::Success).target(target);
        if let Some((k, v)) = detail {
            e = e.detail(k, v);
        }
        // A failed audit write fails the call it records (docs/GOVERNANCE.md).
        self.audit.record(e).await
    }

    /// Admin calls act on accounts of this server only.
    fn require_local(&self, user_id: &UserId) -> Result<()> {
        if user_id.server_name().as_str() != self.users.server_name() {
            return Err(Error::invalid_param("Can only act on local users"));
        }
        Ok(())
    }

    /// Parses a user id from a path, naming it when malformed.
    pub fn parse_user_id(raw: &str) -> Result<OwnedUserId> {
        UserId::parse(raw)
            .map_err(|e| Error::invalid_param(format!("Invalid user id {raw:?}: {e}")))
    }
}
