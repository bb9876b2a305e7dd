//! The other copies of content (docs/GOVERNANCE.md, "Other copies of content"): each has its
//! own lifetime in `[retention]`, so nothing a purge erases from the rooms survives elsewhere
//! on the server for longer than the organisation allows.

use super::RetentionService;
use super::purge::PurgeReport;
use crate::error::Result;
use crate::service::blocking;

/// `now - lifetime`: what was made before this has expired.
fn before(now: i64, lifetime_ms: u64) -> i64 {
    now.saturating_sub(i64::try_from(lifetime_ms).unwrap_or(i64::MAX))
}

impl RetentionService {
    pub(super) async fn expire_copies(&self, now: i64, rep: &mut PurgeReport) -> Result<()> {
        let copies = self.settings.copies;
        let dry_run = rep.dry_run;
        if let Some(life) = copies.outbox_ms {
            let (store, t) = (self.store.clone(), before(now, life));
            rep.outbox_deleted = blocking(move || Ok(store.expire_outbox(t, dry_run)?)).await?;
        }
        if let Some(life) = copies.report_reason_ms {
            let (store, t) = (self.store.clone(), before(now, life));
            rep.report_reasons_erased =
                blocking(move || Ok(store.erase_report_reasons(t, dry_run)?)).await?;
        }
        // Answered invites' previews go whatever the lifetime (`i64::MIN`: none is too old).
        let t = copies.remote_invite_ms.map_or(i64::MIN, |l| before(now, l));
        let store = self.store.clone();
        rep.remote_invites_deleted =
            blocking(move || Ok(store.expire_remote_invites(t, dry_run)?)).await?;
        if let Some(life) = copies.unreferenced_media_ms {
            rep.unreferenced_media_deleted = self
                .media
                .expire_unreferenced(before(now, life), dry_run)
                .await?;
        }
        if let Some(life) = copies.remote_media_ms {
            rep.remote_media_deleted = self
                .media
                .expire_remote_cache(before(now, life), dry_run)
                .await?;
        }
        Ok(())
    }
}
