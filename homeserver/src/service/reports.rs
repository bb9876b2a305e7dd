//! Content reports: events (reporter must be joined and able to see the event), rooms and users.
//! Stored for moderators and, later, the IG audit trail.

use std::sync::Arc;

use ruma::{EventId, RoomId, UserId};

use super::blocking;
use super::rooms::RoomService;
use super::rooms::format::Viewer;
use super::users::UserService;
use crate::error::{Error, Result};
use crate::store::now_ms;
use crate::store::reports::{Report, ReportStore};

pub struct ReportService {
    store: Arc<dyn ReportStore>,
    rooms: Arc<RoomService>,
    users: Arc<UserService>,
}

impl ReportService {
    pub fn new(
        store: Arc<dyn ReportStore>,
        rooms: Arc<RoomService>,
        users: Arc<UserService>,
    ) -> Self {
        Self {
            store,
            rooms,
            users,
        }
    }

    /// `POST /rooms/{roomId}/report/{eventId}`. The spec answers 404 both for an unknown event
    /// and for one the reporter cannot see, so the two are indistinguishable.
    pub async fn report_event(
        &self,
        reporter: &UserId,
        room_id: &RoomId,
        event_id: &EventId,
        reason: Option<String>,
    ) -> Result<i64> {
        let hidden =
            || Error::not_found("The event was not found or you are not joined to the room");
        self.rooms
            .require_joined(room_id, reporter)
            .await
            .map_err(|_| hidden())?;
        let viewer = Viewer {
            user_id: reporter,
            device_id: None,
        };
        self.rooms
            .get_event(room_id, event_id, viewer)
            .await
            .map_err(|_| hidden())?;
        self.add(Report {
            room_id: Some(room_id.to_owned()),
            event_id: Some(event_id.to_owned()),
            ..report(reporter, reason)
        })
        .await
    }

    /// `POST /rooms/{roomId}/report`: the reporter need not be joined; 404 for unknown rooms.
    pub async fn report_room(
        &self,
        reporter: &UserId,
        room_id: &RoomId,
        reason: String,
    ) -> Result<i64> {
        self.rooms
            .room_version(room_id)
            .await
            .map_err(|_| Error::not_found("The room was not found"))?;
        self.add(Report {
            room_id: Some(room_id.to_owned()),
            ..report(reporter, Some(reason))
        })
        .await
    }

    /// `POST /users/{userId}/report`: 404 for an unknown local user. Users of other servers
    /// cannot be checked without federation and are recorded as reported.
    pub async fn report_user(
        &self,
        reporter: &UserId,
        target: &UserId,
        reason: String,
    ) -> Result<i64> {
        let local = target.server_name() == self.rooms.server_name();
        if local && self.users.get_user(target).await?.is_none() {
            return Err(Error::not_found("The user was not found"));
        }
        self.add(Report {
            target_user: Some(target.to_owned()),
            ..report(reporter, Some(reason))
        })
        .await
    }

    async fn add(&self, r: Report) -> Result<i64> {
        let store = self.store.clone();
        let id = blocking(move || Ok(store.add_report(&r)?)).await?;
        // The id only: reasons may hold patient details and stay out of logs.
        tracing::info!(report_id = id, "content reported");
        Ok(id)
    }

    /// Reports after `after_id`, oldest first.
    pub async fn reports_after(&self, after_id: i64, limit: usize) -> Result<Vec<(i64, Report)>> {
        let store = self.store.clone();
        blocking(move || Ok(store.reports_after(after_id, limit)?)).await
    }
}

fn report(reporter: &UserId, reason: Option<String>) -> Report {
    Report {
        reporter: reporter.to_owned(),
        room_id: None,
        event_id: None,
        target_user: None,
        reason,
        // Removed from the spec in v1.18 and not parsed by ruma; the column stays for old clients.
        score: None,
        ts: now_ms(),
    }
}

#[cfg(test)]
#[path = "reports_tests.rs"]
mod tests;
