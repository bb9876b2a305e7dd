//! Room traffic from other servers: transactions, joins, leaves and invites. Each handler
//! takes the X-Matrix-verified origin and calls one service function.

use ruma::api::federation::membership::{
    create_invite, create_join_event, create_leave_event, prepare_join_event, prepare_leave_event,
};
use ruma::api::federation::transactions::send_transaction_message;
use ruma::{OwnedServerName, RoomVersionId};

use crate::api::ruma::Ruma;
use crate::error::{Error, Result};
use crate::service::Services;
use crate::service::rooms::federation::Membership;

fn origin<T>(req: &Ruma<T>) -> Result<OwnedServerName> {
    req.origin
        .clone()
        .ok_or_else(|| Error::forbidden("X-Matrix authentication required"))
}

pub async fn send_transaction(
    s: Services,
    req: Ruma<send_transaction_message::v1::Request>,
) -> Result<send_transaction_message::v1::Response> {
    let origin = origin(&req)?;
    s.rate_limits.check_federation_send(origin.as_str())?;
    if req.body.origin != origin {
        return Err(Error::forbidden(
            "the transaction's origin is not the signing server",
        ));
    }
    let req = req.body;
    let pdus = s
        .transactions
        .receive(&origin, &req.transaction_id, &req.pdus, req.edus)
        .await?;
    Ok(send_transaction_message::v1::Response::new(pdus))
}

pub async fn make_join(
    s: Services,
    req: Ruma<prepare_join_event::v1::Request>,
) -> Result<prepare_join_event::v1::Response> {
    let origin = origin(&req)?;
    let (version, event) = s
        .rooms
        .make_membership(
            &origin,
            &req.room_id,
            &req.user_id,
            Membership::Join,
            &req.ver,
        )
        .await?;
    let mut res = prepare_join_event::v1::Response::new(event);
    res.room_version = Some(version);
    Ok(res)
}

pub async fn send_join(
    s: Services,
    req: Ruma<create_join_event::v2::Request>,
) -> Result<create_join_event::v2::Response> {
    let origin = origin(&req)?;
    let state = s
        .rooms
        .send_join(&origin, &req.room_id, &req.event_id, &req.pdu)
        .await?;
    Ok(create_join_event::v2::Response::new(state))
}

pub async fn make_leave(
    s: Services,
    req: Ruma<prepare_leave_event::v1::Request>,
) -> Result<prepare_leave_event::v1::Response> {
    let origin = origin(&req)?;
    let all: Vec<RoomVersionId> = crate::service::rooms::SUPPORTED_ROOM_VERSIONS.to_vec();
    let (version, event) = s
        .rooms
        .make_membership(&origin, &req.room_id, &req.user_id, Membership::Leave, &all)
        .await?;
    Ok(prepare_leave_event::v1::Response::new(Some(version), event))
}

pub async fn send_leave(
    s: Services,
    req: Ruma<create_leave_event::v2::Request>,
) -> Result<create_leave_event::v2::Response> {
    let origin = origin(&req)?;
    s.rooms
        .send_leave(&origin, &req.room_id, &req.event_id, &req.pdu)
        .await?;
    Ok(create_leave_event::v2::Response::new())
}

pub async fn invite(
    s: Services,
    req: Ruma<create_invite::v2::Request>,
) -> Result<create_invite::v2::Response> {
    let origin = origin(&req)?;
    let event = s
        .rooms
        .receive_invite(
            &origin,
            &req.room_id,
            &req.event_id,
            &req.room_version,
            &req.event,
            &req.invite_room_state,
        )
        .await?;
    Ok(create_invite::v2::Response::new(event))
}
