//! Storage seam for cached copies of other servers' media (fetched over federation).

use super::StoreResult;

/// One cached remote file or thumbnail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteMediaRecord {
    /// The server in the `mxc://` URI.
    pub origin: String,
    pub media_id: String,
    /// `""` for the file, `"WxH-method"` for a thumbnail.
    pub variant: String,
    /// Our file name for the bytes (never the remote's id: that is not ours to trust).
    pub local_id: String,
    pub content_type: Option<String>,
    pub filename: Option<String>,
    pub size: u64,
    /// Lower-case hex SHA-256 of the bytes as stored.
    pub sha256: String,
    pub fetched_ts: i64,
    pub requested_by: String,
}

pub trait RemoteMediaStore: Send + Sync {
    fn get_remote_media(
        &self,
        origin: &str,
        media_id: &str,
        variant: &str,
    ) -> StoreResult<Option<RemoteMediaRecord>>;
    /// Records a fetched copy; false (nothing written) if one is already recorded.
    fn insert_remote_media(&self, rec: &RemoteMediaRecord) -> StoreResult<bool>;
    /// Cached copies fetched before `before_ts`, oldest first, at most `limit`.
    fn remote_media_fetched_before(
        &self,
        before_ts: i64,
        limit: usize,
    ) -> StoreResult<Vec<RemoteMediaRecord>>;
    /// Forgets a cached copy (e.g. its file went missing); false if there was none.
    fn delete_remote_media(&self, origin: &str, media_id: &str, variant: &str)
    -> StoreResult<bool>;
}
