//! `GET/POST /_matrix/federation/v1/publicRooms`: our room directory for a listed server, only
//! when `federation.serve_public_rooms` is on (else 403 naming the rule, audited).

use ruma::api::federation::directory::{get_public_rooms, get_public_rooms_filtered};

use crate::api::ruma::Ruma;
use crate::error::{Error, Result};
use crate::service::Services;
use crate::service::rooms::PublicRoomsFilter;

/// The verified origin (always present: these endpoints require X-Matrix).
fn origin<T>(req: &Ruma<T>) -> Result<&ruma::ServerName> {
    req.origin
        .as_deref()
        .ok_or_else(|| Error::forbidden("Federation requests must be signed"))
}

pub async fn get(
    s: Services,
    req: Ruma<get_public_rooms::v1::Request>,
) -> Result<get_public_rooms::v1::Response> {
    let page = s
        .query
        .answer_public_rooms(
            origin(&req)?,
            req.limit,
            req.since.as_deref(),
            &PublicRoomsFilter::default(),
        )
        .await?;
    let mut res = get_public_rooms::v1::Response::new();
    res.chunk = page.chunk;
    res.next_batch = page.next_batch;
    res.prev_batch = page.prev_batch;
    res.total_room_count_estimate = page.total_room_count_estimate;
    Ok(res)
}

pub async fn filtered(
    s: Services,
    req: Ruma<get_public_rooms_filtered::v1::Request>,
) -> Result<get_public_rooms_filtered::v1::Response> {
    let filter = PublicRoomsFilter {
        search: req.filter.generic_search_term.clone(),
        room_types: req.filter.room_types.clone(),
    };
    let page = s
        .query
        .answer_public_rooms(origin(&req)?, req.limit, req.since.as_deref(), &filter)
        .await?;
    let mut res = get_public_rooms_filtered::v1::Response::new();
    res.chunk = page.chunk;
    res.next_batch = page.next_batch;
    res.prev_batch = page.prev_batch;
    res.total_room_count_estimate = page.total_room_count_estimate;
    Ok(res)
}
