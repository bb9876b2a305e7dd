//! SQLite implementation of every storage trait. One file per table family.

mod account_data;
mod admin;
mod admin_media;
mod admin_rooms;
mod appservice;
mod appservice_crypto;
mod audit;
mod backup;
mod console;
pub mod db;
#[cfg(test)]
mod db_tests;
mod dehydrated;
mod deliveries;
mod device_grants;
mod federated_rooms;
mod federation_events;
mod filters;
mod health;
mod identity;
mod keys;
mod media;
#[cfg(test)]
mod media_refs_tests;
mod migrations;
mod outbox;
mod profile_fields;
mod push;
mod receipts;
mod registration_tokens;
mod relations;
mod remote_e2ee;
mod remote_media;
mod reports;
mod retention;
mod retention_copies;
mod room_jobs;
mod rooms;
mod sar;
mod search;
mod server_keys;
pub mod snapshot;
mod threepids;
mod to_device;
mod users;
mod visibility;

use std::sync::Arc;

pub use db::{Db, WriteCtx};
#[cfg(test)]
pub(crate) use federation_events::insert_outlier;

/// The embedded store: one database, every storage trait.
#[derive(Clone)]
pub struct SqliteStore {
    pub db: Arc<Db>,
}

impl SqliteStore {
    pub fn open(path: &std::path::Path, readers: usize) -> crate::store::StoreResult<Self> {
        Ok(Self {
            db: Db::open(path, readers)?,
        })
    }
}

/// A store on a fresh database in a temporary directory (kept alive by the returned guard).
#[cfg(test)]
pub(crate) fn test_store() -> (SqliteStore, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = SqliteStore::open(&dir.path().join("test.db"), 2).expect("open store");
    (store, dir)
}
