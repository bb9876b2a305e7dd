//! POST /_matrix/client/unstable/org.matrix.simplified_msc3575/sync (MSC4186 sliding sync).

use ruma::api::client::sync::sync_events::v5;

use crate::api::ruma::Ruma;
use crate::error::Result;
use crate::service::Services;

pub async fn sync(s: Services, req: Ruma<v5::Request>) -> Result<v5::Response> {
    let session = req.session().clone();
    s.sliding_sync.sync(&session, req.body).await
}
