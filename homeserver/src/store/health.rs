//! Storage seam for the readiness probe (`GET /ready`).

use super::StoreResult;

pub trait HealthStore: Send + Sync {
    /// A real write through the normal write path (group commit, fsync), changing nothing:
    /// fails when the database cannot be written (read-only, full, writer gone).
    fn probe_write(&self) -> StoreResult<()>;
}
