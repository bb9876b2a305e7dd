//! Media that ages out on its own clock. Cached copies of other servers' media
//! (`retention.remote_media_lifetime`): a copy is a second home for content whose original
//! lives elsewhere, and is fetched again when next downloaded; the file goes first and the row
//! after it, so a failed unlink leaves the row in place and the next purge tries again.
//! Unreferenced octet-stream uploads (`retention.unreferenced_media_lifetime`): encrypted
//! attachments, whose URL only the ciphertext holds.

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
            if dry_run {
                // Nothing is deleted, so batches would repeat: list them all at once.
                let all = store.remote_media_fetched_before(before_ts, i64::MAX as usize)?;
                return Ok(all.len());
            }
            let mut n = 0;
            loop {
                let rows = store.remote_media_fetched_before(before_ts, BATCH)?;
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

    /// Deletes unreferenced `application/octet-stream` uploads made before `before_ts` (see
    /// `MediaStore::unreferenced_media_before`; counts them in a dry run).
    pub async fn expire_unreferenced(&self, before_ts: i64, dry_run: bool) -> Result<usize> {
        let prefix = format!("mxc://{}/", self.server_name);
        // A dry run deletes nothing, so batches would repeat: it lists them all at once.
        let limit = if dry_run { i64::MAX as usize } else { BATCH };
        let mut n = 0;
        loop {
            let (store, p) = (self.store.clone(), prefix.clone());
            let ids = blocking(move || Ok(store.unreferenced_media_before(&p, before_ts, limit)?))
                .await?;
            if dry_run {
                return Ok(ids.len());
            }
            let full = ids.len() == BATCH;
            // Rows go (the pending-deletion record keeps a failed unlink), so each pass
            // makes progress.
            n += self.delete_local(ids).await?;
            if !full {
                return Ok(n);
            }
        }
    }
}
