//! Background room jobs of the admin API (Synapse's delete room v2 and purge history): the
//! request is authorised, checked and written to `admin_room_jobs` before it is answered, then
//! run on a task. Status is read back from the table, so it outlives a restart (Synapse keeps it
//! in memory for 24 h). A job a restart interrupted (`scheduled` or `active`) is resumed at
//! start-up from its durable parameters: each step is idempotent (blocking, the shutdown, whose
//! outcome is stored once done and not redone, and the purge, which only finds what is left).
//! Each request and each job's end are audited (who, what, target, outcome).

use std::sync::Arc;

use handover_compliance::Outcome;
use ruma::{OwnedUserId, RoomId};
use serde::{Deserialize, Serialize};

use super::{AdminService, action};
use crate::error::{Error, Result};
use crate::service::audit::entry;
use crate::service::blocking;
use crate::store::room_jobs::{JobKind, JobStatus, RoomJobRow};

/// What a room deletion does (Synapse's body of `DELETE /_synapse/admin/v{1,2}/rooms/{id}`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct DeleteRoomParams {
    /// Creates a room with this local user as admin and moves the local members into it.
    pub new_room_user_id: Option<OwnedUserId>,
    pub room_name: Option<String>,
    pub message: Option<String>,
    pub block: bool,
    pub purge: bool,
    /// Purge even if local users could not be removed.
    pub force_purge: bool,
}

impl Default for DeleteRoomParams {
    fn default() -> Self {
        Self {
            new_room_user_id: None,
            room_name: None,
            message: None,
            block: false,
            purge: true,
            force_purge: false,
        }
    }
}

/// The shutdown's outcome, as Synapse reports it.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct ShutdownResult {
    pub kicked_users: Vec<String>,
    pub failed_to_kick_users: Vec<String>,
    pub local_aliases: Vec<String>,
    pub new_room_id: Option<String>,
}

/// What a history purge removes (Synapse's purge_history body, the point made a time).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub struct PurgeHistoryParams {
    pub before_ts: i64,
    pub delete_local_events: bool,
}

/// Where a history purge stops.
#[derive(Debug, Clone)]
pub enum PurgePoint {
    /// Events before this one (it, and later events, stay).
    Event(ruma::OwnedEventId),
    Ts(i64),
}

/// One job as the status endpoints show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomJob {
    pub id: String,
    pub kind: JobKind,
    pub room_id: String,
    pub status: JobStatus,
    pub error: Option<String>,
    pub shutdown: Option<ShutdownResult>,
}

impl RoomJob {
    fn from_row(r: RoomJobRow) -> Self {
        Self {
            shutdown: r
                .result
                .as_deref()
                .and_then(|s| serde_json::from_str(s).ok()),
            id: r.job_id,
            kind: r.kind,
            room_id: r.room_id,
            status: r.status,
            error: r.error,
        }
    }
}

/// 96 random bits in hex: opaque, safe in a URL path.
fn new_job_id() -> String {
    let bytes: [u8; 12] = rand::random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl AdminService {
    /// Writes a new job (status `scheduled`) and audits the request.
    pub(super) async fn new_job(
        &self,
        kind: JobKind,
        room_id: &RoomId,
        who: &OwnedUserId,
        params: serde_json::Value,
    ) -> Result<RoomJobRow> {
        let now = crate::store::now_ms();
        let row = RoomJobRow {
            job_id: new_job_id(),
            kind,
            room_id: room_id.to_string(),
            requested_by: who.to_string(),
            params: params.to_string(),
            status: JobStatus::Scheduled,
            error: None,
            result: None,
            created_ts: now,
            updated_ts: now,
        };
        let (jobs, r) = (self.jobs.clone(), row.clone());
        blocking(move || Ok(jobs.insert_job(r)?)).await?;
        let what = match kind {
            JobKind::Delete => action::ROOM_DELETE,
            JobKind::PurgeHistory => action::ROOM_PURGE_HISTORY,
        };
        let e = entry(who.as_str(), what, Outcome::Success)
            .target(room_id.as_str())
            .detail("job_id", row.job_id.as_str())
            .detail("params", params);
        self.audit.record(e).await?;
        Ok(row)
    }

    /// Runs a job on a task of its own.
    pub(super) fn spawn_job(self: &Arc<Self>, row: RoomJobRow) {
        let this = self.clone();
        tokio::spawn(async move {
            let id = row.job_id.clone();
            if let Err(e) = this.run_job(row).await {
                tracing::error!(job = %id, error = %e, "admin room job could not record its end");
            }
        });
    }

    /// Runs a job to its end and records it: `complete`, or `failed` with the error.
    pub(super) async fn run_job(&self, row: RoomJobRow) -> Result<RoomJob> {
        self.set_status(&row.job_id, JobStatus::Active, None, None)
            .await?;
        let outcome = match row.kind {
            JobKind::Delete => self.run_delete(&row).await.map(Some),
            JobKind::PurgeHistory => self.run_purge_history(&row).await.map(|()| None),
        };
        let (status, error, result) = match &outcome {
            Ok(r) => (
                JobStatus::Complete,
                None,
                r.as_ref().and_then(|r| serde_json::to_string(r).ok()),
            ),
            Err(e) => (JobStatus::Failed, Some(e.message().to_owned()), None),
        };
        self.set_status(&row.job_id, status, error.clone(), result)
            .await?;
        let what = match row.kind {
            JobKind::Delete => action::ROOM_DELETE_DONE,
            JobKind::PurgeHistory => action::ROOM_PURGE_HISTORY_DONE,
        };
        let out = match status {
            JobStatus::Complete => Outcome::Success,
            _ => Outcome::Failure,
        };
        let mut e = entry(&row.requested_by, what, out)
            .target(&row.room_id)
            .detail("job_id", row.job_id.as_str())
            .detail("status", status.as_str());
        if let Some(err) = &error {
            e = e.detail("error", err.as_str());
        }
        self.audit.record(e).await?;
        let jobs = self.jobs.clone();
        let id = row.job_id.clone();
        let row = blocking(move || Ok(jobs.job(&id)?))
            .await?
            .ok_or_else(|| Error::internal("room job vanished"))?;
        Ok(RoomJob::from_row(row))
    }

    pub(super) async fn set_status(
        &self,
        job_id: &str,
        status: JobStatus,
        error: Option<String>,
        result: Option<String>,
    ) -> Result<()> {
        let (jobs, id) = (self.jobs.clone(), job_id.to_owned());
        let now = crate::store::now_ms();
        blocking(move || Ok(jobs.update_job(&id, status, error, result, now)?)).await
    }

    /// Start-up: every job a stopped server left open runs again (see the module comment).
    pub async fn resume_room_jobs(self: &Arc<Self>) -> Result<usize> {
        let jobs = self.jobs.clone();
        let open = blocking(move || Ok(jobs.open_jobs()?)).await?;
        let n = open.len();
        for row in open {
            tracing::info!(job = %row.job_id, kind = row.kind.as_str(), "resuming admin room job");
            self.spawn_job(row);
        }
        Ok(n)
    }

    /// One job by id, of `kind` (404 otherwise).
    pub async fn room_job(
        &self,
        who: &crate::service::users::Session,
        kind: JobKind,
        id: &str,
    ) -> Result<RoomJob> {
        let what = match kind {
            JobKind::Delete => action::ROOM_DELETE_STATUS,
            JobKind::PurgeHistory => action::ROOM_PURGE_HISTORY_STATUS,
        };
        self.authorize(who, what, Some(id)).await?;
        let (jobs, jid) = (self.jobs.clone(), id.to_owned());
        let row = blocking(move || Ok(jobs.job(&jid)?))
            .await?
            .filter(|r| r.kind == kind)
            .ok_or_else(|| Error::not_found(format!("No task with id {id}")))?;
        self.audited(who, what, id, None).await?;
        Ok(RoomJob::from_row(row))
    }

    /// The room's deletion jobs, oldest first (404 if there are none, as Synapse).
    pub async fn room_delete_jobs(
        &self,
        who: &crate::service::users::Session,
        room_id: &RoomId,
    ) -> Result<Vec<RoomJob>> {
        self.authorize(who, action::ROOM_DELETE_STATUS, Some(room_id.as_str()))
            .await?;
        let (jobs, rid) = (self.jobs.clone(), room_id.to_string());
        let rows = blocking(move || Ok(jobs.jobs_for_room(&rid, JobKind::Delete)?)).await?;
        if rows.is_empty() {
            return Err(Error::not_found(format!(
                "No delete task for room_id {room_id}"
            )));
        }
        self.audited(who, action::ROOM_DELETE_STATUS, room_id.as_str(), None)
            .await?;
        Ok(rows.into_iter().map(RoomJob::from_row).collect())
    }

    /// Whether the room has a job of `kind` still open (a second one is refused).
    pub(super) async fn open_job(&self, room_id: &RoomId, kind: JobKind) -> Result<bool> {
        let (jobs, rid) = (self.jobs.clone(), room_id.to_string());
        let rows = blocking(move || Ok(jobs.jobs_for_room(&rid, kind)?)).await?;
        Ok(rows.iter().any(|r| r.status.is_open()))
    }
}
