//! The admin API over HTTP: Synapse's `/_synapse/admin/...` (so synapse-admin and existing
//! scripts work unchanged) and the spec's `/_matrix/client/v1/admin/...`. Ruma has no types for
//! Synapse's routes, so requests and responses here are our own serde structs; handlers stay
//! thin (one `AdminService` call each), and the admin check happens in that service.

mod extract;
mod media;
mod room_jobs;
mod rooms;
mod spec;
mod tokens;
mod users;

use axum::Router;
use axum::routing::{delete, get, post, put};

use super::router::RouterExt;
use crate::service::Services;

pub use self::extract::{AdminSession, Body, Params};

pub fn routes(r: Router<Services>) -> Router<Services> {
    r.route(
        "/_synapse/admin/v1/server_version",
        get(users::server_version),
    )
    .route("/_synapse/admin/v2/users", get(users::list))
    .route(
        "/_synapse/admin/v2/users/{user_id}",
        get(users::get).put(users::put),
    )
    .route(
        "/_synapse/admin/v1/users/{user_id}/admin",
        get(users::get_admin).put(users::put_admin),
    )
    .route(
        "/_synapse/admin/v1/deactivate/{user_id}",
        post(users::deactivate),
    )
    .route(
        "/_synapse/admin/v1/reset_password/{user_id}",
        post(users::reset_password),
    )
    .route("/_synapse/admin/v1/whois/{user_id}", get(users::whois))
    .route(
        "/_synapse/admin/v2/users/{user_id}/devices",
        get(users::devices),
    )
    .route(
        "/_synapse/admin/v2/users/{user_id}/devices/{device_id}",
        get(users::device).delete(users::delete_device),
    )
    .route(
        "/_synapse/admin/v2/users/{user_id}/delete_devices",
        post(users::delete_devices),
    )
    .route(
        "/_synapse/admin/v1/users/{user_id}/joined_rooms",
        get(users::joined_rooms),
    )
    .route(
        "/_synapse/admin/v1/suspend/{user_id}",
        put(users::synapse_suspend),
    )
    .route("/_synapse/admin/v1/rooms", get(rooms::list))
    .route(
        "/_synapse/admin/v1/rooms/{room_id}",
        get(rooms::get).delete(room_jobs::delete_v1),
    )
    .route(
        "/_synapse/admin/v1/rooms/{room_id}/delete",
        post(room_jobs::delete_v1),
    )
    .route(
        "/_synapse/admin/v1/rooms/{room_id}/messages",
        get(room_jobs::messages),
    )
    .route(
        "/_synapse/admin/v1/rooms/{room_id}/block",
        get(room_jobs::get_block).put(room_jobs::put_block),
    )
    .route(
        "/_synapse/admin/v2/rooms/{room_id}",
        delete(room_jobs::delete_v2),
    )
    .route(
        "/_synapse/admin/v2/rooms/{room_id}/delete_status",
        get(room_jobs::delete_status_by_room),
    )
    .route(
        "/_synapse/admin/v2/rooms/delete_status/{delete_id}",
        get(room_jobs::delete_status),
    )
    .route(
        "/_synapse/admin/v1/purge_history/{room_id}",
        post(room_jobs::purge_history),
    )
    .route(
        "/_synapse/admin/v1/purge_history/{room_id}/{event_id}",
        post(room_jobs::purge_history_to),
    )
    .route(
        "/_synapse/admin/v1/purge_history_status/{purge_id}",
        get(room_jobs::purge_status),
    )
    .route(
        "/_synapse/admin/v1/rooms/{room_id}/members",
        get(rooms::members),
    )
    .route(
        "/_synapse/admin/v1/rooms/{room_id}/state",
        get(rooms::state),
    )
    .route("/_synapse/admin/v1/event_reports", get(rooms::reports))
    .route(
        "/_synapse/admin/v1/event_reports/{report_id}",
        get(rooms::report).delete(rooms::delete_report),
    )
    .route(
        "/_synapse/admin/v1/users/{user_id}/media",
        get(media::user_media).delete(media::delete_user_media),
    )
    .route(
        "/_synapse/admin/v1/user/{user_id}/media/quarantine",
        post(media::quarantine_user),
    )
    .route(
        "/_synapse/admin/v1/room/{room_id}/media",
        get(media::room_media),
    )
    .route(
        "/_synapse/admin/v1/room/{room_id}/media/quarantine",
        post(media::quarantine_room),
    )
    .route(
        "/_synapse/admin/v1/quarantine_media/{room_id}",
        post(media::quarantine_room),
    )
    .route(
        "/_synapse/admin/v1/media/quarantine/{server}/{media_id}",
        post(media::quarantine),
    )
    .route(
        "/_synapse/admin/v1/media/unquarantine/{server}/{media_id}",
        post(media::unquarantine),
    )
    .route(
        "/_synapse/admin/v1/media/protect/{media_id}",
        post(media::protect),
    )
    .route(
        "/_synapse/admin/v1/media/unprotect/{media_id}",
        post(media::unprotect),
    )
    .route("/_synapse/admin/v1/media/delete", post(media::delete_old))
    .route(
        "/_synapse/admin/v1/media/{server}/delete",
        post(media::delete_old_on),
    )
    .route(
        "/_synapse/admin/v1/media/{server}/{media_id}",
        delete(media::delete),
    )
    .route("/_synapse/admin/v1/registration_tokens", get(tokens::list))
    .route(
        "/_synapse/admin/v1/registration_tokens/new",
        post(tokens::create),
    )
    .route(
        "/_synapse/admin/v1/registration_tokens/{token}",
        get(tokens::get).put(tokens::update).delete(tokens::delete),
    )
    .route(
        "/_synapse/admin/v1/statistics/users/media",
        get(media::statistics),
    )
    .route(
        "/_synapse/admin/v1/users/{user_id}/pushers",
        get(users::pushers),
    )
    .ruma(spec::is_locked)
    .ruma(spec::lock)
    .ruma(spec::is_suspended)
    .ruma(spec::suspend)
}
