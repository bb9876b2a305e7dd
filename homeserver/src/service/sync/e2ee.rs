//! The end-to-end encryption parts of a /sync response: `device_lists`,
//! `device_one_time_keys_count`, `device_unused_fallback_key_types`.

use ruma::api::client::sync::sync_events::v3::Response;

use super::{SyncRequest, SyncService};
use crate::error::Result;
use crate::service::users::Session;

impl SyncService {
    /// Fills the E2EE sections; `true` when device lists changed (news for a long-poll). Key
    /// counts are always present but alone never end a long-poll.
    pub(super) async fn e2ee_sections(
        &self,
        session: &Session,
        req: &SyncRequest,
        since: i64,
        upto: i64,
        response: &mut Response,
    ) -> Result<bool> {
        let (user, device) = (&session.user_id, &session.device_id);
        response.device_one_time_keys_count = self.e2ee.one_time_key_counts(user, device).await?;
        response.device_unused_fallback_key_types =
            Some(self.e2ee.unused_fallback_key_types(user, device).await?);
        // An initial sync has no "changed since": the client queries every member anyway.
        if req.since.is_none() {
            return Ok(false);
        }
        let changes = self.e2ee.device_list_changes(user, since, upto).await?;
        let news = !changes.is_empty();
        response.device_lists.changed = changes.changed;
        response.device_lists.left = changes.left;
        Ok(news)
    }
}
