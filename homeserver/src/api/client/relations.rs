//! Relations (`/relations/{eventId}[/{relType}[/{eventType}]]`) and thread lists.

use ruma::UInt;
use ruma::api::Direction as ApiDirection;
use ruma::api::client::relations::{
    get_relating_events, get_relating_events_with_rel_type,
    get_relating_events_with_rel_type_and_event_type,
};
use ruma::api::client::threads::get_threads::{self, v1::IncludeThreads};

use super::message::{token, viewer};
use crate::api::ruma::Ruma;
use crate::error::{Error, Result};
use crate::service::Services;
use crate::service::rooms::RelationsParams;
use crate::service::rooms::format::to_raw;

/// The query parameters the three relations endpoints share.
fn params(
    from: Option<&str>,
    to: Option<&str>,
    dir: ApiDirection,
    limit: Option<UInt>,
    recurse: bool,
) -> Result<RelationsParams> {
    Ok(RelationsParams {
        from: token(from)?,
        to: token(to)?,
        forward: dir == ApiDirection::Forward,
        limit: limit.map(|l| u64::from(l).min(10_000) as usize),
        recurse,
        ..RelationsParams::default()
    })
}

macro_rules! relations_response {
    ($module:ident, $page:expr) => {{
        let page = $page;
        let mut res = $module::v1::Response::new(page.chunk.iter().map(to_raw).collect());
        res.next_batch = page.next_batch;
        res.prev_batch = page.prev_batch;
        res.recursion_depth = page.recursion_depth.map(UInt::from);
        res
    }};
}

pub async fn relations(
    s: Services,
    req: Ruma<get_relating_events::v1::Request>,
) -> Result<get_relating_events::v1::Response> {
    let p = params(
        req.from.as_deref(),
        req.to.as_deref(),
        req.dir,
        req.limit,
        req.recurse,
    )?;
    let page = s
        .rooms
        .relations(&req.room_id, &req.event_id, viewer(&req), p)
        .await?;
    Ok(relations_response!(get_relating_events, page))
}

pub async fn relations_with_type(
    s: Services,
    req: Ruma<get_relating_events_with_rel_type::v1::Request>,
) -> Result<get_relating_events_with_rel_type::v1::Response> {
    let p = RelationsParams {
        rel_type: Some(req.rel_type.to_string()),
        ..params(
            req.from.as_deref(),
            req.to.as_deref(),
            req.dir,
            req.limit,
            req.recurse,
        )?
    };
    let page = s
        .rooms
        .relations(&req.room_id, &req.event_id, viewer(&req), p)
        .await?;
    Ok(relations_response!(get_relating_events_with_rel_type, page))
}

pub async fn relations_with_type_and_event_type(
    s: Services,
    req: Ruma<get_relating_events_with_rel_type_and_event_type::v1::Request>,
) -> Result<get_relating_events_with_rel_type_and_event_type::v1::Response> {
    let p = RelationsParams {
        rel_type: Some(req.rel_type.to_string()),
        event_type: Some(req.event_type.to_string()),
        ..params(
            req.from.as_deref(),
            req.to.as_deref(),
            req.dir,
            req.limit,
            req.recurse,
        )?
    };
    let page = s
        .rooms
        .relations(&req.room_id, &req.event_id, viewer(&req), p)
        .await?;
    Ok(relations_response!(
        get_relating_events_with_rel_type_and_event_type,
        page
    ))
}

pub async fn threads(
    s: Services,
    req: Ruma<get_threads::v1::Request>,
) -> Result<get_threads::v1::Response> {
    let participated = match &req.include {
        IncludeThreads::All => false,
        IncludeThreads::Participated => true,
        other => {
            return Err(Error::invalid_param(format!(
                "Unknown include value '{}'",
                other.as_str()
            )));
        }
    };
    if req.limit.is_some_and(|l| l == UInt::MIN) {
        return Err(Error::invalid_param("limit must be greater than zero"));
    }
    let page = s
        .rooms
        .threads(
            &req.room_id,
            viewer(&req),
            participated,
            token(req.from.as_deref())?,
            req.limit.map(|l| u64::from(l).min(10_000) as usize),
        )
        .await?;
    let mut res = get_threads::v1::Response::new(page.chunk.iter().map(to_raw).collect());
    res.next_batch = page.next_batch;
    Ok(res)
}
