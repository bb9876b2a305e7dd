//! Membership endpoints: join, invite, leave, forget, kick, ban, unban, members.

use ruma::api::client::membership::{
    ban_user, forget_room, get_member_events, invite_user, join_room_by_id,
    join_room_by_id_or_alias, joined_members, kick_user, leave_room, unban_user,
};

use ruma::api::client::knock::knock_room;

use crate::api::ruma::Ruma;
use crate::error::{Error, Result};
use crate::service::Services;
use crate::service::filter::parse_token;
use crate::service::rate_limit::UserAction;
use crate::service::rooms::format::{Viewer, to_raw};

fn viewer<T>(req: &Ruma<T>) -> Viewer<'_> {
    Viewer {
        user_id: req.user_id(),
        device_id: Some(req.device_id()),
    }
}

pub async fn join_by_id(
    s: Services,
    req: Ruma<join_room_by_id::v3::Request>,
) -> Result<join_room_by_id::v3::Response> {
    (s.rate_limits).check_user(UserAction::Join, req.user_id().as_str())?;
    s.rooms
        .join(&req.room_id, req.user_id(), req.reason.clone())
        .await?;
    Ok(join_room_by_id::v3::Response::new(req.room_id.clone()))
}

pub async fn join_by_id_or_alias(
    s: Services,
    req: Ruma<join_room_by_id_or_alias::v3::Request>,
) -> Result<join_room_by_id_or_alias::v3::Response> {
    (s.rate_limits).check_user(UserAction::Join, req.user_id().as_str())?;
    // An alias on another server is resolved through that server, which also names the servers
    // in the room to join through.
    let (room_id, mut via) = match <&ruma::RoomId>::try_from(&*req.room_id_or_alias) {
        Ok(r) => (r.to_owned(), vec![]),
        Err(alias) => s.query.resolve_alias(Some(req.user_id()), alias).await?,
    };
    via.splice(0..0, req.via.iter().cloned());
    s.rooms
        .join_via(&room_id, req.user_id(), req.reason.clone(), &via)
        .await?;
    Ok(join_room_by_id_or_alias::v3::Response::new(room_id))
}

pub async fn knock(
    s: Services,
    req: Ruma<knock_room::v3::Request>,
) -> Result<knock_room::v3::Response> {
    (s.rate_limits).check_user(UserAction::Join, req.user_id().as_str())?;
    let (room_id, mut via) = match <&ruma::RoomId>::try_from(&*req.room_id_or_alias) {
        Ok(r) => (r.to_owned(), vec![]),
        Err(alias) => s.query.resolve_alias(Some(req.user_id()), alias).await?,
    };
    via.splice(0..0, req.via.iter().cloned());
    s.rooms
        .knock(&room_id, req.user_id(), req.reason.clone(), &via)
        .await?;
    Ok(knock_room::v3::Response::new(room_id))
}

pub async fn invite(
    s: Services,
    req: Ruma<invite_user::v3::Request>,
) -> Result<invite_user::v3::Response> {
    let invite_user::v3::InvitationRecipient::UserId(target) = &req.recipient else {
        return Err(Error::forbidden("Third-party invites are not supported"));
    };
    (s.rate_limits).check_user(UserAction::Invite, req.user_id().as_str())?;
    s.rooms
        .invite(
            &req.room_id,
            req.user_id(),
            &target.user_id,
            target.reason.clone(),
            false,
        )
        .await?;
    Ok(invite_user::v3::Response::new())
}

pub async fn leave(
    s: Services,
    req: Ruma<leave_room::v3::Request>,
) -> Result<leave_room::v3::Response> {
    s.rooms
        .leave(&req.room_id, req.user_id(), req.reason.clone())
        .await?;
    Ok(leave_room::v3::Response::new())
}

pub async fn forget(
    s: Services,
    req: Ruma<forget_room::v3::Request>,
) -> Result<forget_room::v3::Response> {
    s.rooms.forget(&req.room_id, req.user_id()).await?;
    Ok(forget_room::v3::Response::new())
}

pub async fn kick(
    s: Services,
    req: Ruma<kick_user::v3::Request>,
) -> Result<kick_user::v3::Response> {
    s.rooms
        .kick(
            &req.room_id,
            req.user_id(),
            &req.body.user_id,
            req.reason.clone(),
        )
        .await?;
    Ok(kick_user::v3::Response::new())
}

pub async fn ban(s: Services, req: Ruma<ban_user::v3::Request>) -> Result<ban_user::v3::Response> {
    s.rooms
        .ban(
            &req.room_id,
            req.user_id(),
            &req.body.user_id,
            req.reason.clone(),
        )
        .await?;
    Ok(ban_user::v3::Response::new())
}

pub async fn unban(
    s: Services,
    req: Ruma<unban_user::v3::Request>,
) -> Result<unban_user::v3::Response> {
    s.rooms
        .unban(
            &req.room_id,
            req.user_id(),
            &req.body.user_id,
            req.reason.clone(),
        )
        .await?;
    Ok(unban_user::v3::Response::new())
}

pub async fn members(
    s: Services,
    req: Ruma<get_member_events::v3::Request>,
) -> Result<get_member_events::v3::Response> {
    let at = req
        .at
        .as_deref()
        .map(|t| parse_token(t).ok_or_else(|| Error::invalid_param("Invalid `at` token")))
        .transpose()?;
    let m = req.membership.as_ref().map(|m| m.as_str().to_owned());
    let nm = req.not_membership.as_ref().map(|m| m.as_str().to_owned());
    let evs = s
        .rooms
        .member_events(&req.room_id, viewer(&req), at, m.as_deref(), nm.as_deref())
        .await?;
    Ok(get_member_events::v3::Response::new(
        evs.iter().map(to_raw).collect(),
    ))
}

pub async fn joined_members(
    s: Services,
    req: Ruma<joined_members::v3::Request>,
) -> Result<joined_members::v3::Response> {
    let summary = s.rooms.joined_members(&req.room_id, req.user_id()).await?;
    let mut joined = std::collections::BTreeMap::new();
    for (user, content) in summary.joined {
        let Ok(user) = ruma::OwnedUserId::try_from(user) else {
            continue;
        };
        let mut m = joined_members::v3::RoomMember::new();
        m.display_name = content["displayname"].as_str().map(str::to_owned);
        m.avatar_url = content["avatar_url"].as_str().map(Into::into);
        joined.insert(user, m);
    }
    Ok(joined_members::v3::Response::new(joined))
}
