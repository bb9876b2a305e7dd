use super::SqliteStore;
use crate::store::StoreResult;
use crate::store::health::HealthStore;

impl HealthStore for SqliteStore {
    fn probe_write(&self) -> StoreResult<()> {
        // Rewrites the row with its own value: SQLite still writes the page, so the commit
        // needs the write lock, WAL space and an fsync, like any acknowledged write.
        self.db.write(|ctx| {
            ctx.tx
                .execute("UPDATE stream_position SET pos = pos WHERE id = 0", [])?;
            Ok(())
        })
    }
}
