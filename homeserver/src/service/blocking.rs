//! Runs blocking work (SQLite, hashing) off the async executor. A leaf helper used across the
//! service layer (re-exported as `service::blocking`), kept apart from the wiring in `mod.rs`.

use crate::error::{Error, Result};

/// Runs `f` on tokio's blocking pool and returns its result.
pub async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::internal(format!("blocking task failed: {e}")))?
}
