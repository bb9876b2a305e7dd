//! `GET /_matrix/federation/v1/hierarchy/{roomId}`: our rooms' space summaries for a listed
//! server (the extractor verified the origin against the federation list; the room's server ACL
//! and access rules are applied in `service/spaces`).

use ruma::api::federation::space::get_hierarchy;

use crate::api::ruma::Ruma;
use crate::error::{Error, Result};
use crate::service::Services;

pub async fn hierarchy(
    s: Services,
    req: Ruma<get_hierarchy::v1::Request>,
) -> Result<get_hierarchy::v1::Response> {
    let origin = req
        .origin
        .as_deref()
        .ok_or_else(|| Error::forbidden("Federation requests must be signed"))?;
    s.spaces
        .answer_hierarchy(origin, &req.room_id, req.suggested_only)
        .await
}
