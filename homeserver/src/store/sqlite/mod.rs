//! SQLite implementation of every storage trait. One file per table family.

pub mod db;
mod media;
mod migrations;
mod users;

use std::sync::Arc;

pub use db::{Db, WriteCtx};

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
