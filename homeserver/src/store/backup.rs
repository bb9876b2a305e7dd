//! Storage seam for server-side key backup (versions and encrypted room keys).

use super::StoreResult;

#[derive(Debug, Clone)]
pub struct BackupVersion {
    pub version: i64,
    /// `{"algorithm": ..., "auth_data": ...}` as JSON text.
    pub algorithm: String,
    pub etag: i64,
    pub count: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupKey {
    pub room_id: String,
    pub session_id: String,
    pub first_message_index: i64,
    pub forwarded_count: i64,
    pub is_verified: bool,
    /// The whole `KeyBackupData` JSON.
    pub json: String,
}

/// Decides whether `new` replaces `existing` (the spec's rules live in the service).
pub type ReplaceRule = Box<dyn Fn(&BackupKey, &BackupKey) -> bool + Send>;

pub trait BackupStore: Send + Sync {
    fn create_backup_version(&self, user_id: &str, algorithm: &str) -> StoreResult<i64>;
    /// A live version, or the latest live one when `version` is `None`.
    fn backup_version(
        &self,
        user_id: &str,
        version: Option<i64>,
    ) -> StoreResult<Option<BackupVersion>>;
    fn update_backup_version(
        &self,
        user_id: &str,
        version: i64,
        algorithm: &str,
    ) -> StoreResult<bool>;
    /// Tombstones the version and deletes its keys; `false` if there was no live version.
    fn delete_backup_version(&self, user_id: &str, version: i64) -> StoreResult<bool>;
    /// Keys of a version, optionally narrowed to a room and a session.
    fn backup_keys(
        &self,
        user_id: &str,
        version: i64,
        room_id: Option<&str>,
        session_id: Option<&str>,
    ) -> StoreResult<Vec<BackupKey>>;
    /// Stores keys where `replace` allows (or no key exists), bumping the etag when anything
    /// changed. Returns the version afterwards (`None`: no such live version).
    fn put_backup_keys(
        &self,
        user_id: &str,
        version: i64,
        keys: Vec<BackupKey>,
        replace: ReplaceRule,
    ) -> StoreResult<Option<BackupVersion>>;
    fn delete_backup_keys(
        &self,
        user_id: &str,
        version: i64,
        room_id: Option<&str>,
        session_id: Option<&str>,
    ) -> StoreResult<Option<BackupVersion>>;
}
