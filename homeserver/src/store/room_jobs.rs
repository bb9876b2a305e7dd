//! Storage seam for the admin API's room jobs (room deletion, history purge: durable, resumed
//! after a restart) and the blocked-room list.

use super::StoreResult;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobKind {
    Delete,
    PurgeHistory,
}

impl JobKind {
    pub fn as_str(self) -> &'static str {
        match self {
            JobKind::Delete => "delete",
            JobKind::PurgeHistory => "purge_history",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "delete" => Some(JobKind::Delete),
            "purge_history" => Some(JobKind::PurgeHistory),
            _ => None,
        }
    }
}

/// Synapse's task statuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobStatus {
    Scheduled,
    Active,
    Complete,
    Failed,
}

impl JobStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Scheduled => "scheduled",
            JobStatus::Active => "active",
            JobStatus::Complete => "complete",
            JobStatus::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "scheduled" => Some(JobStatus::Scheduled),
            "active" => Some(JobStatus::Active),
            "complete" => Some(JobStatus::Complete),
            "failed" => Some(JobStatus::Failed),
            _ => None,
        }
    }

    /// Not finished: resumed at start-up.
    pub fn is_open(self) -> bool {
        matches!(self, JobStatus::Scheduled | JobStatus::Active)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomJobRow {
    pub job_id: String,
    pub kind: JobKind,
    pub room_id: String,
    pub requested_by: String,
    /// The request as the service understood it (JSON).
    pub params: String,
    pub status: JobStatus,
    pub error: Option<String>,
    /// The shutdown's outcome (JSON), once known.
    pub result: Option<String>,
    pub created_ts: i64,
    pub updated_ts: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockedRoom {
    pub room_id: String,
    pub blocked_by: String,
    pub blocked_ts: i64,
}

pub trait RoomJobStore: Send + Sync {
    fn insert_job(&self, job: RoomJobRow) -> StoreResult<()>;
    /// Sets a job's status (and error / result when given); `updated_ts` = `now`.
    fn update_job(
        &self,
        job_id: &str,
        status: JobStatus,
        error: Option<String>,
        result: Option<String>,
        now: i64,
    ) -> StoreResult<()>;
    fn job(&self, job_id: &str) -> StoreResult<Option<RoomJobRow>>;
    /// The room's jobs of `kind`, oldest first.
    fn jobs_for_room(&self, room_id: &str, kind: JobKind) -> StoreResult<Vec<RoomJobRow>>;
    /// Jobs left `scheduled` or `active` (a restart interrupted them), oldest first.
    fn open_jobs(&self) -> StoreResult<Vec<RoomJobRow>>;

    fn blocked_rooms(&self) -> StoreResult<Vec<BlockedRoom>>;
    /// Blocks a room (idempotent: the first blocker is kept).
    fn block_room(&self, room: BlockedRoom) -> StoreResult<()>;
    /// Unblocks; false if it was not blocked.
    fn unblock_room(&self, room_id: &str) -> StoreResult<bool>;
    /// What a deleted room leaves outside its own tables: stripped state of invites from other
    /// servers, and the room's events still waiting in the federation queue (with their
    /// payloads), except membership events (other servers must learn that our users left).
    /// Returns how many rows went.
    fn delete_room_remnants(&self, room_id: &str) -> StoreResult<usize>;
}
