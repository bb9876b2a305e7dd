//! Room event reads for other servers: /event, /state, /state_ids, /event_auth, /backfill,
//! /get_missing_events, /timestamp_to_event. Every one requires X-Matrix (ruma's auth scheme
//! `ServerSignatures`), so `req.origin` is the verified, listed origin; the rules are in
//! `service::peer::room_read`.

use ruma::api::Direction as ApiDirection;
use ruma::api::federation::authorization::get_event_authorization;
use ruma::api::federation::backfill::get_backfill;
use ruma::api::federation::event::{
    get_event, get_event_by_timestamp, get_missing_events, get_room_state, get_room_state_ids,
};
use ruma::{MilliSecondsSinceUnixEpoch, OwnedServerName, UInt};

use crate::api::ruma::Ruma;
use crate::error::{Error, Result};
use crate::service::Services;
use crate::store::rooms::Direction;

/// The verified origin (the extractor refuses these endpoints without one).
fn origin<T>(req: &Ruma<T>) -> Result<OwnedServerName> {
    req.origin.clone().ok_or_else(|| {
        Error::new(
            http::StatusCode::UNAUTHORIZED,
            ruma::api::error::ErrorKind::Unauthorized,
            "This endpoint needs an X-Matrix signature",
        )
    })
}

fn now() -> MilliSecondsSinceUnixEpoch {
    MilliSecondsSinceUnixEpoch::now()
}

pub async fn event(
    s: Services,
    req: Ruma<get_event::v1::Request>,
) -> Result<get_event::v1::Response> {
    let pdu = s.room_read.event(&origin(&req)?, &req.event_id).await?;
    Ok(get_event::v1::Response::new(
        s.rooms.server_name().to_owned(),
        now(),
        pdu,
    ))
}

pub async fn state(
    s: Services,
    req: Ruma<get_room_state::v1::Request>,
) -> Result<get_room_state::v1::Response> {
    let (pdus, auth_chain) = s
        .room_read
        .state(&origin(&req)?, &req.room_id, &req.event_id)
        .await?;
    Ok(get_room_state::v1::Response::new(auth_chain, pdus))
}

pub async fn state_ids(
    s: Services,
    req: Ruma<get_room_state_ids::v1::Request>,
) -> Result<get_room_state_ids::v1::Response> {
    let (pdu_ids, auth_chain_ids) = s
        .room_read
        .state_ids(&origin(&req)?, &req.room_id, &req.event_id)
        .await?;
    Ok(get_room_state_ids::v1::Response::new(
        auth_chain_ids,
        pdu_ids,
    ))
}

pub async fn event_auth(
    s: Services,
    req: Ruma<get_event_authorization::v1::Request>,
) -> Result<get_event_authorization::v1::Response> {
    let chain = s
        .room_read
        .event_auth(&origin(&req)?, &req.room_id, &req.event_id)
        .await?;
    Ok(get_event_authorization::v1::Response::new(chain))
}

pub async fn backfill(
    s: Services,
    req: Ruma<get_backfill::v1::Request>,
) -> Result<get_backfill::v1::Response> {
    let origin = origin(&req)?;
    let Ruma { body, .. } = req;
    let pdus = s
        .room_read
        .backfill(&origin, &body.room_id, body.v, body.limit.into())
        .await?;
    Ok(get_backfill::v1::Response::new(
        s.rooms.server_name().to_owned(),
        now(),
        pdus,
    ))
}

pub async fn missing_events(
    s: Services,
    req: Ruma<get_missing_events::v1::Request>,
) -> Result<get_missing_events::v1::Response> {
    let origin = origin(&req)?;
    let Ruma { body, .. } = req;
    let events = s
        .room_read
        .missing_events(
            &origin,
            &body.room_id,
            body.earliest_events,
            body.latest_events,
            body.limit.into(),
            body.min_depth.into(),
        )
        .await?;
    Ok(get_missing_events::v1::Response::new(events))
}

pub async fn timestamp_to_event(
    s: Services,
    req: Ruma<get_event_by_timestamp::v1::Request>,
) -> Result<get_event_by_timestamp::v1::Response> {
    let dir = match req.dir {
        ApiDirection::Forward => Direction::Forward,
        ApiDirection::Backward => Direction::Backward,
    };
    let ts = i64::from(req.ts.get());
    let (event_id, found_ts) = s
        .room_read
        .timestamp_to_event(&origin(&req)?, &req.room_id, ts, dir)
        .await?;
    let found_ts = UInt::try_from(found_ts.max(0)).unwrap_or_default();
    Ok(get_event_by_timestamp::v1::Response::new(
        event_id,
        MilliSecondsSinceUnixEpoch(found_ts),
    ))
}
