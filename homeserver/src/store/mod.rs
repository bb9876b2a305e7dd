//! Storage seams. Each service reaches storage through one narrow trait defined here (or in the
//! submodule for its area); `sqlite/` implements them all on the embedded database. A PostgreSQL
//! backend implements the same traits without touching a service or handler.
//!
//! The traits are synchronous: services call them from `spawn_blocking` (see `service::blocking`).

pub mod account_data;
pub mod admin;
pub mod admin_media;
pub mod appservice;
pub mod appservice_crypto;
pub mod audit;
pub mod backup;
pub mod console;
pub mod dehydrated;
pub mod deliveries;
pub mod device_grants;
pub mod federated_rooms;
pub mod federation_events;
pub mod filters;
pub mod health;
pub mod identity;
pub mod keys;
pub mod media;
pub mod outbox;
pub mod profile_fields;
pub mod push;
pub mod receipts;
pub mod registration_tokens;
pub mod remote_e2ee;
pub mod remote_media;
pub mod reports;
pub mod retention;
pub mod room_jobs;
pub mod rooms;
pub mod sar;
pub mod search;
pub mod server_keys;
pub mod sqlite;
pub mod threepids;
pub mod to_device;
pub mod users;

use thiserror::Error;

#[derive(Debug, Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Sqlite(rusqlite::Error),
    /// The database's file system is full (SQLITE_FULL): nothing was written.
    #[error("the database's storage is full")]
    Full,
    /// The database cannot be written (SQLITE_READONLY: permissions, a read-only mount).
    #[error("the database is read-only")]
    ReadOnly,
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    #[error("i/o error: {0}")]
    Io(String),
    #[error("the write could not be committed")]
    CommitFailed,
    #[error("the database is closed")]
    Closed,
    /// A uniqueness rule the caller should report (e.g. "user exists").
    #[error("{0} already exists")]
    Conflict(&'static str),
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        match e.sqlite_error_code() {
            Some(rusqlite::ErrorCode::DiskFull) => StoreError::Full,
            Some(rusqlite::ErrorCode::ReadOnly) => StoreError::ReadOnly,
            _ => StoreError::Sqlite(e),
        }
    }
}

impl From<serde_json::Error> for StoreError {
    fn from(e: serde_json::Error) -> Self {
        StoreError::Corrupt(e.to_string())
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
