//! Cached copies of other servers' media age out (`retention.remote_media_lifetime`): a copy
//! is a second home for content whose original lives elsewhere, and is fetched again when
//! next downloaded. The file goes first and the row after it, so a failed unlink leaves the
//! row in place and the next purge tries again.

use std::io;

use super::MediaService;
use crate::error::Result;
use crate::service::blocking;

/// Rows listed per pass.
const BATCH: usize = 500;

impl MediaService {
    /// Deletes the cached copies fetched before `before_ts` (counts them in a dry run).
    pub async fn expire_remote_cache(&self, before_ts: i64, dry_run: bool) -> Result<usize> {
        let (store, files) = (self.remote_store.clone(), self.remote_files.clone());
        blocking(move || {
            let mut n = 0;
            loop {
                let rows = store.remote_media_fetched_before(before_ts, BATCH)?;
                if dry_run {
                    return Ok(rows.len());
                }
                let mut progress = 0;
                for rec in &rows {
                    match std::fs::remove_file(files.original_path(&rec.local_id)) {
                        Ok(()) => {}
                        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                        Err(e) => {
                            tracing::warn!(local_id = %rec.local_id, error = %e, "cached remote media not deleted; retried by the next purge");
                            continue;
                        }
                    }
                    store.delete_remote_media(&rec.origin, &rec.media_id, &rec.variant)?;
                    progress += 1;
                }
                n += progress;
                // Only failures left (they stay listed first): stop until the next run.
                if rows.len() < BATCH || progress == 0 {
                    return Ok(n);
                }
            }
        })
        .await
    }
}
