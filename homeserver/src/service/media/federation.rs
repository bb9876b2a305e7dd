//! Our media for other servers: `GET /_matrix/federation/v1/media/download/{mediaId}` and
//! `/thumbnail/{mediaId}` (spec v1.11 authenticated media).
//!
//! Clinical media must not leave the trust for a server that is not in its room. The rules are
//! the clinical media rules (`check_media_download`), asked with the requesting *server* in the
//! place of the user:
//! - quarantined media: never served;
//! - media bound to a room: only to a server with a member joined to that room now;
//! - a profile avatar: to any listed server (profiles are answered to listed servers anyway);
//! - unbound media: nobody, except (with `unbound_attachments_to_room_mates`) an
//!   `application/octet-stream` file, i.e. an encrypted attachment the server cannot bind, for a
//!   server with a member joined to a room the uploader is joined to.
//!
//! A refusal is audited with its rule (actor: the server) and answers 404 `M_NOT_FOUND`, as for
//! media that does not exist. Only this server's uploads are served: cached copies of other
//! servers' media never leave this server.

use std::time::Duration;

use handover_policy::media::{OCTET_STREAM, RULE_MEDIA_QUARANTINED};
use handover_policy::{Denial, MediaDownloadRequest};
use ruma::{RoomId, ServerName, UInt, UserId};

use super::clinical::essence;
use super::{Content, MediaService};
use crate::error::{Error, Result};
use crate::service::blocking;
use crate::store::media::MediaRecord;

impl MediaService {
    /// The file of `mxc://<us>/<media_id>` for `origin` (a verified, listed server).
    pub async fn download_for_server(
        &self,
        origin: &ServerName,
        media_id: &str,
        timeout: Duration,
    ) -> Result<Content> {
        let rec = self
            .local_media(&self.server_name, media_id, timeout)
            .await?;
        self.check_server_access(origin, &rec).await?;
        // The remote server's client asks for a name of its own if it wants one.
        self.original_content(rec, None).await
    }

    /// A thumbnail of `mxc://<us>/<media_id>` for `origin`.
    pub async fn thumbnail_for_server(
        &self,
        origin: &ServerName,
        media_id: &str,
        (width, height): (UInt, UInt),
        method: Option<&ruma::media::Method>,
        timeout: Duration,
    ) -> Result<Content> {
        let spec = self.thumbnail_spec(width, height, method)?;
        let rec = self
            .local_media(&self.server_name, media_id, timeout)
            .await?;
        self.check_server_access(origin, &rec).await?;
        self.thumbnail_content(rec, spec).await
    }

    /// May `origin` have this file? See the module comment for the rules.
    async fn check_server_access(&self, origin: &ServerName, rec: &MediaRecord) -> Result<()> {
        let (store, id) = (self.store.clone(), rec.media_id.clone());
        let access = blocking(move || Ok(store.media_access(&id)?)).await?;
        let target = self.mxc(&rec.media_id);
        let hook = "check_media_download";
        if access.quarantined {
            let denial = Denial::new(RULE_MEDIA_QUARANTINED, "the file is quarantined");
            self.audit
                .record_denial(&denial, hook, origin.as_str(), Some(target.as_str()))
                .await?;
            return Err(not_found());
        }
        let bound = access
            .bound_room
            .as_deref()
            .and_then(|r| RoomId::parse(r).ok());
        let member_of_bound_room = match &bound {
            Some(room) => self.server_in_room(origin, room).await,
            None => false,
        };
        let content_type = essence(rec.content_type.as_deref());
        let shares_room_with_uploader = access.bound_room.is_none()
            && content_type == OCTET_STREAM
            && self.server_shares_room_with(origin, &rec.uploader).await?;
        // The server stands where the policy expects a user: it never equals the uploader, so
        // the uploader's own exemption cannot apply to it.
        let decision = self.policy.check_media_download(&MediaDownloadRequest {
            user: origin.as_str(),
            uploader: rec.uploader.as_str(),
            content_type: &content_type,
            bound_room: access.bound_room.as_deref(),
            member_of_bound_room,
            shares_room_with_uploader,
        });
        if let Err(denial) = decision {
            self.audit
                .record_denial(&denial, hook, origin.as_str(), Some(target.as_str()))
                .await?;
            return Err(not_found());
        }
        Ok(())
    }

    /// Whether `origin` has a member joined to `room` now (an unknown room: no).
    async fn server_in_room(&self, origin: &ServerName, room: &RoomId) -> bool {
        match self.rooms.current_state(room).await {
            Ok(state) => state.joined_servers().iter().any(|s| s == origin),
            Err(_) => false,
        }
    }

    /// Whether `origin` has a member joined to a room `user` is joined to.
    async fn server_shares_room_with(&self, origin: &ServerName, user: &UserId) -> Result<bool> {
        for room in self.rooms.joined_rooms(user).await? {
            if self.server_in_room(origin, &room).await {
                return Ok(true);
            }
        }
        Ok(false)
    }
}

fn not_found() -> Error {
    Error::not_found("Media not found")
}
