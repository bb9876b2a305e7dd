//! A room's history for admins: reading it (Synapse's room messages API: the client
//! `/messages` without the membership check, audited) and purging it (Synapse's purge history
//! API: a background job, status by id, through the retention service so legal holds win and
//! purged events leave the database and the search index).

use std::sync::Arc;

use handover_policy::Denial;
use ruma::RoomId;
use ruma::api::client::filter::RoomEventFilter;

use super::media::RULE_LEGAL_HOLD;
use super::room_jobs::{PurgeHistoryParams, PurgePoint};
use super::{AdminService, action};
use crate::error::{Error, Result};
use crate::service::retention::HistoryPurge;
use crate::service::rooms::Messages;
use crate::service::users::Session;
use crate::store::room_jobs::{JobKind, RoomJobRow};
use crate::store::rooms::Direction;

/// A page request of the room messages API.
#[derive(Debug, Clone)]
pub struct MessagesQuery {
    pub from: Option<i64>,
    pub to: Option<i64>,
    pub dir: Direction,
    pub limit: usize,
    pub filter: RoomEventFilter,
}

impl AdminService {
    /// `GET /_synapse/admin/v1/rooms/{roomId}/messages`
    pub async fn room_messages(
        &self,
        who: &Session,
        room_id: &RoomId,
        q: MessagesQuery,
    ) -> Result<Messages> {
        self.authorize(who, action::ROOM_MESSAGES, Some(room_id.as_str()))
            .await?;
        let m = self
            .rooms
            .admin_messages(
                room_id,
                &who.user_id,
                q.from,
                q.to,
                q.dir,
                q.limit,
                &q.filter,
            )
            .await?;
        self.audited(who, action::ROOM_MESSAGES, room_id.as_str(), None)
            .await?;
        Ok(m)
    }

    /// `POST /_synapse/admin/v1/purge_history/{roomId}[/{eventId}]`: starts the purge; returns
    /// its id. An event as the point keeps that event and everything sent at or after its time.
    pub async fn purge_history(
        self: &Arc<Self>,
        who: &Session,
        room_id: &RoomId,
        point: PurgePoint,
        delete_local_events: bool,
    ) -> Result<String> {
        self.authorize(who, action::ROOM_PURGE_HISTORY, Some(room_id.as_str()))
            .await?;
        self.rooms.room_version(room_id).await?;
        let before_ts = match point {
            PurgePoint::Ts(ts) => ts,
            PurgePoint::Event(id) => self.rooms.event_ts(room_id, &id).await?,
        };
        if self.open_job(room_id, JobKind::PurgeHistory).await? {
            return Err(Error::invalid_param(format!(
                "A history purge of {room_id} is already in progress"
            )));
        }
        if let Some(reason) = self.retention.hold_on(room_id, false).await? {
            let denial = Denial::new(RULE_LEGAL_HOLD, reason);
            (self.audit)
                .record_denial(
                    &denial,
                    action::ROOM_PURGE_HISTORY,
                    who.user_id.as_str(),
                    Some(room_id.as_str()),
                )
                .await?;
            return Err(Error::policy(&denial));
        }
        let p = PurgeHistoryParams {
            before_ts,
            delete_local_events,
        };
        let params = serde_json::to_value(p).map_err(Error::internal)?;
        let row = self
            .new_job(JobKind::PurgeHistory, room_id, &who.user_id, params)
            .await?;
        let id = row.job_id.clone();
        self.spawn_job(row);
        Ok(id)
    }

    pub(super) async fn run_purge_history(&self, row: &RoomJobRow) -> Result<()> {
        let p: PurgeHistoryParams = serde_json::from_str(&row.params).map_err(Error::internal)?;
        let room_id = RoomId::parse(&row.room_id).map_err(Error::internal)?;
        let h = HistoryPurge {
            before_ts: p.before_ts,
            delete_local_events: p.delete_local_events,
        };
        self.retention
            .purge_history(&row.requested_by, &room_id, h)
            .await?;
        Ok(())
    }
}
