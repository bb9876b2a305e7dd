//! Storage seam for subject-access request exports (UK GDPR Art. 15): one query per area of a
//! person's data. Secrets (password hashes, token hashes, keys) are never selected.

use super::StoreResult;

/// A device (session) of the account, without any token.
#[derive(Debug, Clone)]
pub struct SarSession {
    pub device_id: String,
    pub display_name: Option<String>,
    pub created_ts: i64,
    pub last_seen_ts: Option<i64>,
    pub last_seen_ip: Option<String>,
    /// How many access tokens the device holds (the tokens themselves are never exported).
    pub access_tokens: i64,
}

/// An event as stored: its JSON is the PDU the server holds (ciphertext for encrypted ones).
#[derive(Debug, Clone)]
pub struct SarEvent {
    pub event_id: String,
    /// Stream position (`None`: an outlier), for paging.
    pub pos: Option<i64>,
    pub room_id: String,
    pub sender: String,
    pub kind: String,
    pub state_key: Option<String>,
    pub origin_server_ts: i64,
    pub json: String,
    pub redacted: bool,
}

/// A file the person uploaded.
#[derive(Debug, Clone)]
pub struct SarMedia {
    pub media_id: String,
    pub content_type: Option<String>,
    pub filename: Option<String>,
    pub size: i64,
    pub sha256: String,
    pub created_ts: i64,
    /// Flagged by the scanner: listed, but the file is withheld from the export.
    pub quarantined: bool,
    /// The room the file was first sent in (`profile` for an avatar), if any.
    pub bound_to: Option<String>,
}

/// Where a page of events resumes: positioned events in stream order, then outliers (no
/// position) by event id. The export reads a page at a time, so it never holds them all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SarCursor {
    Start,
    Pos(i64),
    Outlier(String),
}

impl SarCursor {
    /// The cursor just after `e`.
    pub fn after(e: &SarEvent) -> Self {
        match e.pos {
            Some(p) => SarCursor::Pos(p),
            None => SarCursor::Outlier(e.event_id.clone()),
        }
    }
}

pub trait SarStore: Send + Sync {
    fn sar_sessions(&self, user_id: &str) -> StoreResult<Vec<SarSession>>;
    /// Events `user_id` sent in `room_id` after `after`, in stream order (outliers last), at
    /// most `limit`.
    fn sar_events_sent(
        &self,
        user_id: &str,
        room_id: &str,
        after: &SarCursor,
        limit: usize,
    ) -> StoreResult<Vec<SarEvent>>;
    /// Events of others in `room_id` whose stored JSON names `user_id` (mentions, replies,
    /// membership changes about them; encrypted events only if their clear parts do), paged
    /// as `sar_events_sent`.
    fn sar_events_mentioning(
        &self,
        user_id: &str,
        room_id: &str,
        after: &SarCursor,
        limit: usize,
    ) -> StoreResult<Vec<SarEvent>>;
    fn sar_media(&self, user_id: &str) -> StoreResult<Vec<SarMedia>>;
}
