//! Room aliases and the room directory.

use ruma::api::client::alias::{create_alias, delete_alias, get_alias};
use ruma::api::client::directory::{
    get_public_rooms, get_public_rooms_filtered, get_room_visibility, set_room_visibility,
};
use ruma::api::client::room::{Visibility, aliases};

use crate::api::ruma::Ruma;
use crate::error::Result;
use crate::service::Services;
use crate::service::rooms::PublicRoomsFilter;

pub async fn create(
    s: Services,
    req: Ruma<create_alias::v3::Request>,
) -> Result<create_alias::v3::Response> {
    s.rooms
        .set_alias(&req.room_alias, &req.room_id, req.user_id())
        .await?;
    Ok(create_alias::v3::Response::new())
}

pub async fn get(
    s: Services,
    req: Ruma<get_alias::v3::Request>,
) -> Result<get_alias::v3::Response> {
    // Another server's alias is asked of that server over federation.
    let requester = req.session.as_ref().map(|s| &*s.user_id);
    let (room_id, servers) = s.query.resolve_alias(requester, &req.room_alias).await?;
    Ok(get_alias::v3::Response::new(room_id, servers))
}

pub async fn delete(
    s: Services,
    req: Ruma<delete_alias::v3::Request>,
) -> Result<delete_alias::v3::Response> {
    s.rooms
        .delete_alias(&req.room_alias, req.user_id(), req.session().is_admin)
        .await?;
    Ok(delete_alias::v3::Response::new())
}

pub async fn room_aliases(
    s: Services,
    req: Ruma<aliases::v3::Request>,
) -> Result<aliases::v3::Response> {
    let list = s.rooms.aliases(&req.room_id, req.user_id()).await?;
    Ok(aliases::v3::Response::new(
        list.into_iter().filter_map(|a| a.try_into().ok()).collect(),
    ))
}

pub async fn get_visibility(
    s: Services,
    req: Ruma<get_room_visibility::v3::Request>,
) -> Result<get_room_visibility::v3::Response> {
    let public = s.rooms.directory_visibility(&req.room_id).await?;
    Ok(get_room_visibility::v3::Response::new(if public {
        Visibility::Public
    } else {
        Visibility::Private
    }))
}

pub async fn set_visibility(
    s: Services,
    req: Ruma<set_room_visibility::v3::Request>,
) -> Result<set_room_visibility::v3::Response> {
    s.rooms
        .set_directory_visibility(
            &req.room_id,
            req.user_id(),
            req.visibility == Visibility::Public,
        )
        .await?;
    Ok(set_room_visibility::v3::Response::new())
}

/// Our directory, or with `server` another server's (for a signed-in user, named in the audit
/// trail; GET needs no token, but one sent identifies the user).
pub async fn public_rooms(
    s: Services,
    req: Ruma<get_public_rooms::v3::Request>,
) -> Result<get_public_rooms::v3::Response> {
    let page = s
        .query
        .public_rooms(
            req.session.as_ref().map(|s| &*s.user_id),
            req.server.as_deref(),
            req.limit,
            req.since.as_deref(),
            &PublicRoomsFilter::default(),
        )
        .await?;
    let mut res = get_public_rooms::v3::Response::new(page.chunk);
    res.total_room_count_estimate = page.total_room_count_estimate;
    res.next_batch = page.next_batch;
    res.prev_batch = page.prev_batch;
    Ok(res)
}

/// POST /publicRooms: as GET, with a search term and room types.
pub async fn public_rooms_filtered(
    s: Services,
    req: Ruma<get_public_rooms_filtered::v3::Request>,
) -> Result<get_public_rooms_filtered::v3::Response> {
    let filter = PublicRoomsFilter {
        search: req.filter.generic_search_term.clone(),
        room_types: req.filter.room_types.clone(),
    };
    let page = s
        .query
        .public_rooms(
            Some(req.user_id()),
            req.server.as_deref(),
            req.limit,
            req.since.as_deref(),
            &filter,
        )
        .await?;
    let mut res = get_public_rooms_filtered::v3::Response::new();
    res.chunk = page.chunk;
    res.total_room_count_estimate = page.total_room_count_estimate;
    res.next_batch = page.next_batch;
    res.prev_batch = page.prev_batch;
    Ok(res)
}
