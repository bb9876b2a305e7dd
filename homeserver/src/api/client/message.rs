//! Room events: send, redact, get one, /messages, /context, timestamp lookup.

use ruma::api::Direction as ApiDirection;
use ruma::api::client::context::get_context;
use ruma::api::client::message::{get_message_events, send_message_event};
use ruma::api::client::redact::redact_event;
use ruma::api::client::room::{get_event_by_timestamp, get_room_event};

use crate::api::ruma::Ruma;
use crate::error::{Error, Result};
use crate::service::Services;
use crate::service::filter::parse_token;
use crate::service::rate_limit::UserAction;
use crate::service::rooms::EventSpec;
use crate::service::rooms::format::{Viewer, to_raw};
use crate::store::rooms::Direction;

pub(super) fn viewer<T>(req: &Ruma<T>) -> Viewer<'_> {
    Viewer {
        user_id: req.user_id(),
        device_id: Some(req.device_id()),
    }
}

pub(super) fn token(t: Option<&str>) -> Result<Option<i64>> {
    t.map(|t| {
        parse_token(t)
            .ok_or_else(|| Error::invalid_param(format!("Invalid pagination token '{t}'")))
    })
    .transpose()
}

pub async fn send(
    s: Services,
    req: Ruma<send_message_event::v3::Request>,
) -> Result<send_message_event::v3::Response> {
    (s.rate_limits).check_user(UserAction::Message, req.user_id().as_str())?;
    let content: serde_json::Value = serde_json::from_str(req.body.body.json().get())
        .map_err(|e| Error::bad_json(format!("Invalid content: {e}")))?;
    if !content.is_object() {
        return Err(Error::bad_json("Event content must be a JSON object"));
    }
    let spec = EventSpec::new(req.event_type.to_string().into(), content, None);
    let event_id = s
        .rooms
        .send_message(
            &req.room_id,
            req.user_id(),
            spec,
            (req.device_id(), req.txn_id.as_str()),
        )
        .await?;
    Ok(send_message_event::v3::Response::new(event_id))
}

pub async fn redact(
    s: Services,
    req: Ruma<redact_event::v3::Request>,
) -> Result<redact_event::v3::Response> {
    let id = s
        .rooms
        .redact(
            &req.room_id,
            req.user_id(),
            &req.event_id,
            req.reason.clone(),
            (req.device_id(), req.txn_id.as_str()),
        )
        .await?;
    Ok(redact_event::v3::Response::new(id))
}

pub async fn get_event(
    s: Services,
    req: Ruma<get_room_event::v3::Request>,
) -> Result<get_room_event::v3::Response> {
    let ev = s
        .rooms
        .get_event(&req.room_id, &req.event_id, viewer(&req))
        .await?;
    Ok(get_room_event::v3::Response::new(to_raw(&ev)))
}

pub async fn messages(
    s: Services,
    req: Ruma<get_message_events::v3::Request>,
) -> Result<get_message_events::v3::Response> {
    let dir = match req.dir {
        ApiDirection::Backward => Direction::Backward,
        ApiDirection::Forward => Direction::Forward,
    };
    let limit = u64::from(req.limit).min(1000) as usize;
    let m = s
        .rooms
        .messages(
            &req.room_id,
            viewer(&req),
            token(req.from.as_deref())?,
            token(req.to.as_deref())?,
            dir,
            limit,
            &req.filter,
        )
        .await?;
    let mut res = get_message_events::v3::Response::new();
    res.start = m.start;
    res.end = m.end;
    res.chunk = m.chunk.iter().map(to_raw).collect();
    res.state = m.state.iter().map(to_raw).collect();
    Ok(res)
}

pub async fn context(
    s: Services,
    req: Ruma<get_context::v3::Request>,
) -> Result<get_context::v3::Response> {
    let limit = u64::from(req.limit).min(100) as usize;
    let (event, before, after) = s
        .rooms
        .context(
            &req.room_id,
            &req.event_id,
            viewer(&req),
            limit,
            &req.filter,
        )
        .await?;
    let mut res = get_context::v3::Response::new();
    res.event = Some(to_raw(&event));
    res.events_before = before.chunk.iter().map(to_raw).collect();
    res.events_after = after.chunk.iter().map(to_raw).collect();
    res.start = Some(before.start);
    res.end = Some(after.start);
    res.state = before.state.iter().map(to_raw).collect();
    Ok(res)
}

pub async fn timestamp_to_event(
    s: Services,
    req: Ruma<get_event_by_timestamp::v1::Request>,
) -> Result<get_event_by_timestamp::v1::Response> {
    let dir = match req.dir {
        ApiDirection::Backward => Direction::Backward,
        ApiDirection::Forward => Direction::Forward,
    };
    let ts = i64::try_from(u64::from(req.ts.0)).unwrap_or(i64::MAX);
    let (event_id, at) = s
        .rooms
        .event_by_timestamp(&req.room_id, req.user_id(), ts, dir)
        .await?;
    let at = ruma::UInt::try_from(at.max(0) as u64).unwrap_or(ruma::UInt::MAX);
    Ok(get_event_by_timestamp::v1::Response::new(
        event_id,
        ruma::MilliSecondsSinceUnixEpoch(at),
    ))
}
