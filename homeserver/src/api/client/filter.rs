//! /sync filters.

use ruma::api::client::filter::{create_filter, get_filter};

use crate::api::ruma::Ruma;
use crate::error::Result;
use crate::service::Services;

pub async fn create_filter(
    s: Services,
    req: Ruma<create_filter::v3::Request>,
) -> Result<create_filter::v3::Response> {
    let id = s
        .filters
        .create(req.user_id(), &req.body.user_id, &req.filter)
        .await?;
    Ok(create_filter::v3::Response::new(id))
}

pub async fn get_filter(
    s: Services,
    req: Ruma<get_filter::v3::Request>,
) -> Result<get_filter::v3::Response> {
    let filter = s
        .filters
        .get(req.user_id(), &req.body.user_id, &req.filter_id)
        .await?;
    Ok(get_filter::v3::Response::new(filter))
}
