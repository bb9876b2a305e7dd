//! Storage seam for the admin API's media moderation: a user's uploads with Synapse's
//! orderings, the files a room refers to, quarantine and protection flags, the local files old
//! enough for a bulk deletion, legal holds over a file.

use super::StoreResult;

/// One local upload as the admin API lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminMediaRow {
    pub media_id: String,
    pub media_type: Option<String>,
    pub upload_name: Option<String>,
    pub media_length: u64,
    pub created_ts: i64,
    /// Who quarantined it: an admin's user id, or `Some("")` when the upload scanner did.
    pub quarantined_by: Option<String>,
    pub safe_from_quarantine: bool,
}

/// Synapse's `order_by` values for a user's media.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MediaOrder {
    MediaId,
    UploadName,
    #[default]
    CreatedTs,
    /// We do not record accesses: ordered by upload time.
    LastAccessTs,
    MediaLength,
    MediaType,
    QuarantinedBy,
    SafeFromQuarantine,
}

#[derive(Debug, Clone, Default)]
pub struct MediaListQuery {
    pub from: u64,
    pub limit: u64,
    pub order: MediaOrder,
    pub backwards: bool,
}

/// Which local files a bulk deletion (`POST /media/delete`) takes.
#[derive(Debug, Clone)]
pub struct MediaSweep {
    pub before_ts: i64,
    pub size_gt: u64,
    /// Keep files that are some user's avatar (`mxc_prefix` + id).
    pub keep_profiles: bool,
    pub mxc_prefix: String,
}

/// One user's uploads in total (Synapse's media statistics).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserMediaStats {
    pub user_id: String,
    pub displayname: Option<String>,
    pub media_count: u64,
    pub media_length: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StatsOrder {
    #[default]
    UserId,
    Displayname,
    MediaLength,
    MediaCount,
}

#[derive(Debug, Clone, Default)]
pub struct MediaStatsQuery {
    pub from: u64,
    pub limit: u64,
    pub order: StatsOrder,
    pub backwards: bool,
    /// Uploads at or after / before these times (ms) only.
    pub from_ts: Option<i64>,
    pub until_ts: Option<i64>,
    /// Substring of the user id or display name.
    pub search_term: Option<String>,
}

pub trait AdminMediaStore: Send + Sync {
    /// Users with at least one upload in the window, and how many such users there are.
    fn media_statistics(&self, q: &MediaStatsQuery) -> StoreResult<(Vec<UserMediaStats>, u64)>;
    /// One page of a user's uploads and how many they have.
    fn user_media(
        &self,
        user_id: &str,
        q: &MediaListQuery,
    ) -> StoreResult<(Vec<AdminMediaRow>, u64)>;
    fn media_row(&self, media_id: &str) -> StoreResult<Option<(AdminMediaRow, String)>>;
    /// Every `mxc://` URI the room's stored events refer to, plus local files bound to it.
    fn room_media(&self, room_id: &str, mxc_prefix: &str) -> StoreResult<Vec<String>>;
    /// Quarantines the files not protected and not yet quarantined; returns how many.
    fn quarantine_media(&self, media_ids: &[String], by: &str) -> StoreResult<u64>;
    /// Returns false when it was not quarantined.
    fn unquarantine_media(&self, media_id: &str) -> StoreResult<bool>;
    /// Returns false when there is no such local file.
    fn set_media_protected(&self, media_id: &str, protected: bool) -> StoreResult<bool>;
    /// Ids of the user's uploads.
    fn user_media_ids(&self, user_id: &str) -> StoreResult<Vec<String>>;
    /// Local files created before the cut-off, larger than `size_gt`, not protected (and not
    /// avatars when asked), oldest first.
    fn media_to_sweep(&self, s: &MediaSweep) -> StoreResult<Vec<String>>;
    /// Whether a legal hold covers the file: its uploader is held, or it is bound to or referred
    /// to from a held room.
    fn media_under_hold(&self, media_id: &str, mxc: &str) -> StoreResult<bool>;
}
