//! Storage seam for the IG lead's console: the read-only lists no other service keeps.

use super::StoreResult;

/// A file the scanner flagged (`media_quarantine`).
#[derive(Debug, Clone)]
pub struct QuarantinedMedia {
    pub media_id: String,
    pub uploader: String,
    pub content_type: Option<String>,
    pub size: i64,
    pub reason: String,
    pub ts: i64,
}

pub trait ConsoleStore: Send + Sync {
    /// Rooms whose current state holds an `m.room.retention` event, with its content.
    fn retention_overrides(&self) -> StoreResult<Vec<(String, String)>>;
    /// Quarantined files, newest first, at most `limit`.
    fn quarantined_media(&self, limit: usize) -> StoreResult<Vec<QuarantinedMedia>>;
}
