//! `POST /search`: full-text search of room events (rules in `service/search`).

use ruma::api::client::search::search_events;

use super::message::viewer;
use crate::api::ruma::Ruma;
use crate::error::Result;
use crate::service::Services;

pub async fn search(
    s: Services,
    req: Ruma<search_events::v3::Request>,
) -> Result<search_events::v3::Response> {
    let mut categories = search_events::v3::ResultCategories::new();
    if let Some(c) = &req.search_categories.room_events {
        categories.room_events = s
            .search
            .room_events(viewer(&req), c, req.next_batch.as_deref())
            .await?;
    }
    Ok(search_events::v3::Response::new(categories))
}
