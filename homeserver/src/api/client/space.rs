//! Spaces: `GET /rooms/{roomId}/hierarchy` (walk and access rules in `service/spaces`).

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
