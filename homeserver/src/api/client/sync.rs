//! GET /sync (v3).

use std::time::Duration;

use ruma::api::client::filter::FilterDefinition;
use ruma::api::client::sync::sync_events::{self, v3::Filter};

use crate::api::ruma::Ruma;
use crate::error::{Error, Result};
use crate::service::Services;
use crate::service::filter::parse_token;
use crate::service::sync::SyncRequest;

pub async fn sync(
    s: Services,
    req: Ruma<sync_events::v3::Request>,
) -> Result<sync_events::v3::Response> {
    let since = req
        .since
        .as_deref()
        .map(|t| {
            parse_token(t).ok_or_else(|| Error::invalid_param(format!("Invalid since token '{t}'")))
        })
        .transpose()?;
    let filter = match &req.filter {
        None => FilterDefinition::default(),
        Some(Filter::FilterDefinition(f)) => f.clone(),
        Some(Filter::FilterId(id)) => s
            .filters
            .get_filter(req.user_id(), id)
            .await?
            .ok_or_else(|| Error::not_found(format!("Unknown filter '{id}'")))?,
        Some(_) => return Err(Error::invalid_param("Unsupported filter")),
    };
    let request = SyncRequest {
        since,
        full_state: req.full_state,
        timeout: req.timeout.unwrap_or(Duration::ZERO),
        filter,
        use_state_after: req.use_state_after,
        set_presence: req.set_presence.clone(),
    };
    s.sync.sync(req.session(), request).await
}
