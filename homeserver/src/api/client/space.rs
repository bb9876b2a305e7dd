//! Spaces and room discovery: `GET /rooms/{roomId}/hierarchy`, `/room_summary` (walk and access
//! rules in `service/spaces`) and `/mutual_rooms`.

use ruma::api::client::membership::get_mutual_rooms;
use ruma::api::client::room::get_summary;
use ruma::api::client::space::get_hierarchy;

use crate::api::ruma::Ruma;
use crate::error::Result;
use crate::service::Services;
use crate::service::spaces::HierarchyParams;

pub async fn hierarchy(
    s: Services,
    req: Ruma<get_hierarchy::v1::Request>,
) -> Result<get_hierarchy::v1::Response> {
    let params = HierarchyParams {
        from: req.from.clone(),
        limit: req.limit.map(u64::from),
        max_depth: req.max_depth.map(u64::from),
        suggested_only: req.suggested_only,
    };
    let page = s
        .spaces
        .hierarchy(&req.session().user_id, &req.room_id, &params)
        .await?;
    let mut res = get_hierarchy::v1::Response::new();
    res.rooms = page.rooms;
    res.next_batch = page.next_batch;
    Ok(res)
}

/// `GET /room_summary/{roomIdOrAlias}`: 404 alike for unknown and private rooms.
pub async fn room_summary(
    s: Services,
    req: Ruma<get_summary::v1::Request>,
) -> Result<get_summary::v1::Response> {
    let requester = req.session.as_ref().map(|s| &*s.user_id);
    let (summary, membership) = s
        .spaces
        .room_summary(requester, &req.room_id_or_alias, &req.via)
        .await?;
    let mut res = get_summary::v1::Response::new(summary);
    res.membership = membership;
    Ok(res)
}

/// `GET /mutual_rooms?user_id=`: rooms both users are joined to.
pub async fn mutual_rooms(
    s: Services,
    req: Ruma<get_mutual_rooms::v1::Request>,
) -> Result<get_mutual_rooms::v1::Response> {
    let m = s
        .rooms
        .mutual_rooms(&req.session().user_id, &req.user_id, req.from.as_deref())
        .await?;
    let count = ruma::UInt::new_saturating(m.count as u64);
    let mut res = get_mutual_rooms::v1::Response::new(count, m.joined);
    res.next_batch = m.next_batch;
    Ok(res)
}
