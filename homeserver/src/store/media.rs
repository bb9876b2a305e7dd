//! Storage seam for the content repository's metadata. The bytes themselves live on disk
//! (`service::media::files`); these rows say what each file is and who uploaded it.

use ruma::OwnedUserId;

use super::StoreResult;

/// One uploaded file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaRecord {
    /// The media id part of `mxc://<our server>/<media_id>`.
    pub media_id: String,
    pub uploader: OwnedUserId,
    /// As the uploader sent it; `None` is served as `application/octet-stream`.
    pub content_type: Option<String>,
    pub filename: Option<String>,
    pub size: u64,
    /// Lower-case hex SHA-256 of the bytes, for integrity checks and audit.
    pub sha256: String,
    pub created_ts: i64,
}

/// A generated thumbnail. `width`, `height` and `method` are the (capped) box the client asked
/// for, which is the cache key; the image itself may be smaller (we never upscale).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThumbnailRecord {
    pub media_id: String,
    pub width: u32,
    pub height: u32,
    pub method: String,
    pub content_type: String,
    pub size: u64,
}

/// Who may see a file: its room binding and quarantine flag.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MediaAccess {
    /// The room the media was first sent in.
    pub bound_room: Option<String>,
    pub quarantined: bool,
}

/// One event's reference to a file (`media_refs`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaRef {
    pub event_id: String,
    pub room_id: String,
    pub sender: String,
}

pub trait MediaStore: Send + Sync {
    /// Records a new upload; `Conflict("media")` if the id already has content.
    fn insert_media(&self, media: &MediaRecord) -> StoreResult<()>;
    fn get_media(&self, media_id: &str) -> StoreResult<Option<MediaRecord>>;
    /// Records an upload the scanner flagged and its quarantine flag, atomically: the row is
    /// never visible unflagged.
    fn insert_quarantined_media(&self, media: &MediaRecord, reason: &str) -> StoreResult<()>;
    fn media_access(&self, media_id: &str) -> StoreResult<MediaAccess>;
    /// Binds each media id not yet bound to `room_id` (first binding wins). Existing media is
    /// bound only by its uploader's events; ids not uploaded yet (async upload) bind too.
    /// Returns how many were bound.
    fn bind_media(
        &self,
        media_ids: &[String],
        sender: &str,
        room_id: &str,
        event_id: &str,
        ts: i64,
    ) -> StoreResult<usize>;
    /// Records (or replaces, if two requests raced to generate it) a cached thumbnail.
    fn put_thumbnail(&self, thumb: &ThumbnailRecord) -> StoreResult<()>;
    fn get_thumbnail(
        &self,
        media_id: &str,
        width: u32,
        height: u32,
        method: &str,
    ) -> StoreResult<Option<ThumbnailRecord>>;
    /// Deletes the media row, its thumbnail rows and its room binding, and records the id as
    /// pending file deletion (same transaction); false if there was no media row.
    fn delete_media(&self, media_id: &str) -> StoreResult<bool>;
    /// Ids whose rows are deleted but whose files were not yet confirmed unlinked.
    fn pending_media_deletions(&self) -> StoreResult<Vec<String>>;
    /// Every file of the id is gone: forget the pending deletion.
    fn clear_pending_media_deletion(&self, media_id: &str) -> StoreResult<()>;
    /// Records that an event's content refers to these files (full `mxc://` URIs), whoever
    /// sent it and whether or not the files exist yet.
    fn add_media_refs(
        &self,
        mxcs: &[String],
        event_id: &str,
        room_id: &str,
        sender: &str,
    ) -> StoreResult<()>;
    /// The references to a file from events still stored and not minimised by retention,
    /// oldest first.
    fn media_refs(&self, mxc: &str) -> StoreResult<Vec<MediaRef>>;
    /// Uploads made before `before_ts`, oldest first (at most `limit`), of type
    /// `application/octet-stream` (or none) that nothing keeps: no event refers to
    /// `{mxc_prefix}{media_id}`, no profile avatar is it, it is not quarantined, and its uploader
    /// is neither held nor a member of a held room (an encrypted message there may refer to it).
    fn unreferenced_media_before(
        &self,
        mxc_prefix: &str,
        before_ts: i64,
        limit: usize,
    ) -> StoreResult<Vec<String>>;
    /// Whether some user's profile avatar is this file.
    fn is_profile_avatar(&self, mxc: &str) -> StoreResult<bool>;
    /// Moves a file's room binding to `(room_id, event_id)`, or removes it (`None`).
    fn rebind_media(&self, media_id: &str, to: Option<(&str, &str)>, ts: i64) -> StoreResult<()>;
}
