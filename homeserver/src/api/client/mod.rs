//! Client-server API handlers, one file per endpoint group.

mod account;
mod alias;
mod discovery;
mod membership;
mod message;
mod room;
mod session;
mod state;

use axum::Router;

use super::router::RouterExt;
use crate::service::Services;

pub fn routes(r: Router<Services>) -> Router<Services> {
    r.route(
        "/.well-known/matrix/client",
        axum::routing::get(discovery::well_known_client),
    )
    .ruma(discovery::versions)
    .ruma(discovery::capabilities)
    .ruma(session::login_types)
    .ruma(session::login)
    .ruma(session::logout)
    .ruma(session::logout_all)
    .ruma(session::whoami)
    .ruma(account::register)
    .ruma(account::register_available)
    .ruma(room::create_room)
    .ruma(room::joined_rooms)
    .ruma(membership::join_by_id)
    .ruma(membership::join_by_id_or_alias)
    .ruma(membership::invite)
    .ruma(membership::leave)
    .ruma(membership::forget)
    .ruma(membership::kick)
    .ruma(membership::ban)
    .ruma(membership::unban)
    .ruma(membership::members)
    .ruma(membership::joined_members)
    .ruma(state::get_state)
    .ruma(state::get_state_event)
    .ruma(state::send_state)
    .ruma(message::send)
    .ruma(message::redact)
    .ruma(message::get_event)
    .ruma(message::messages)
    .ruma(message::context)
    .ruma(alias::create)
    .ruma(alias::get)
    .ruma(alias::delete)
    .ruma(alias::room_aliases)
    .ruma(alias::get_visibility)
    .ruma(alias::set_visibility)
    .ruma(alias::public_rooms)
}
