//! Client-server API handlers, one file per endpoint group.

mod account;
mod account_data;
mod admin;
mod alias;
mod appservice;
mod backup;
mod dehydrated_device;
mod device;
mod discovery;
mod email_validation;
mod ephemeral;
mod filter;
mod keys;
mod media;
mod media_legacy;
mod membership;
mod message;
mod openid;
mod presence;
mod profile;
mod push;
mod relations;
mod report;
mod retention;
mod room;
mod search;
mod session;
mod sliding_sync;
mod space;
mod state;
mod sync;
mod to_device;
mod user_directory;
mod voip;

use axum::Router;
use ruma::api::client::uiaa::AuthData;

use super::router::{RouterExt, ruma_paths};
use super::ruma::Ruma;
use crate::error::{Error, Result};
use crate::service::Services;
use crate::service::users::Session;

pub fn routes(r: Router<Services>) -> Router<Services> {
    r.route(
        "/.well-known/matrix/client",
        axum::routing::get(discovery::well_known_client),
    )
    // Delegation for servers that find us through the client-facing host.
    .ruma(super::federation::discovery::well_known_server)
    .ruma(discovery::versions)
    .ruma(discovery::capabilities)
    .ruma(discovery::support)
    .route(retention::PATH, axum::routing::get(retention::get))
    .ruma(session::login_types)
    .ruma(session::login)
    .ruma(session::get_login_token)
    .ruma(session::refresh)
    .ruma(session::logout)
    .ruma(session::logout_all)
    .ruma(session::whoami)
    .ruma(account::register)
    .ruma(account::register_available)
    .ruma(account::registration_token_validity)
    .ruma(account::register_email_request_token)
    .route(
        crate::service::registration::SUBMIT_TOKEN_PATH,
        axum::routing::get(email_validation::confirm_page).post(email_validation::submit),
    )
    .ruma(room::create_room)
    .ruma(room::joined_rooms)
    .ruma(room::upgrade_room)
    .ruma(membership::join_by_id)
    .ruma(membership::join_by_id_or_alias)
    .ruma(membership::invite)
    .ruma(membership::knock)
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
    .ruma(message::timestamp_to_event)
    .ruma(search::search)
    .ruma(relations::relations)
    .ruma(relations::relations_with_type)
    .ruma(relations::relations_with_type_and_event_type)
    .ruma(relations::threads)
    .ruma(report::report_event)
    .ruma(report::report_room)
    .ruma(report::report_user)
    .ruma(alias::create)
    .ruma(alias::get)
    .ruma(alias::delete)
    .ruma(alias::room_aliases)
    .ruma(alias::get_visibility)
    .ruma(alias::set_visibility)
    .ruma(alias::public_rooms)
    .ruma(alias::public_rooms_filtered)
    .ruma(account::change_password)
    .ruma(account::deactivate)
    .ruma(account::get_3pids)
    .ruma(device::get_devices)
    .ruma(device::get_device)
    .ruma(device::update_device)
    .ruma(device::delete_device)
    .ruma(device::delete_devices)
    .ruma(admin::whois)
    .ruma(profile::get_profile)
    .ruma(profile::get_display_name)
    .ruma(profile::set_display_name)
    .ruma(profile::get_avatar_url)
    .ruma(profile::set_avatar_url)
    .ruma(profile::get_field)
    .ruma(profile::set_field)
    .ruma(profile::delete_field)
    // DELETE on the display name and avatar, whose own routes shadow `{field}` there.
    .ruma_literals(profile::delete_field, &["displayname", "avatar_url"])
    .ruma(user_directory::search_users)
    .ruma(account_data::get_global)
    .ruma(account_data::set_global)
    .ruma(account_data::get_room)
    .ruma(account_data::set_room)
    .ruma(account_data::get_tags)
    .ruma(account_data::create_tag)
    .ruma(account_data::delete_tag)
    .ruma(filter::create_filter)
    .ruma(filter::get_filter)
    .ruma(sync::sync)
    .ruma(sliding_sync::sync)
    .ruma(ephemeral::receipt)
    .ruma(ephemeral::read_markers)
    .ruma(ephemeral::typing)
    .ruma(presence::set)
    .ruma(presence::get)
    .ruma(push::get_all)
    .ruma(push::get_global)
    .ruma(push::get_rule)
    .ruma(push::set_rule)
    .ruma(push::delete_rule)
    .ruma(push::get_enabled)
    .ruma(push::set_enabled)
    .ruma(push::get_actions)
    .ruma(push::set_actions)
    .ruma(push::get_pushers)
    .ruma(push::set_pusher)
    .ruma(push::notifications)
    .ruma(keys::upload)
    .ruma(keys::query)
    .ruma(keys::claim)
    .ruma(keys::changes)
    .ruma(keys::upload_signing_keys)
    .ruma(keys::upload_signatures)
    .ruma(to_device::send)
    .ruma(dehydrated_device::put)
    .ruma(dehydrated_device::get)
    .ruma(dehydrated_device::delete)
    .ruma(dehydrated_device::events)
    .ruma(backup::create_version)
    .ruma(backup::latest_version)
    .ruma(backup::get_version)
    .ruma(backup::update_version)
    .ruma(backup::delete_version)
    .ruma(backup::put_keys)
    .ruma(backup::put_room_keys)
    .ruma(backup::put_session_key)
    .ruma(backup::get_keys)
    .ruma(backup::get_room_keys)
    .ruma(backup::get_session_key)
    .ruma(backup::delete_keys)
    .ruma(backup::delete_room_keys)
    .ruma(backup::delete_session_key)
    .ruma(space::hierarchy)
    .ruma(space::room_summary)
    .ruma(space::mutual_rooms)
    .ruma(openid::request_token)
    .ruma(appservice::ping)
    .ruma(appservice::protocols)
    .ruma(appservice::protocol)
    .ruma(appservice::locations_for_protocol)
    .ruma(appservice::locations_for_alias)
    .ruma(appservice::users_for_protocol)
    .ruma(appservice::users_for_user_id)
    .merge(media_routes())
    .merge(turn_server_routes())
}

/// The session on endpoints whose token is optional in ruma (password change, deactivation)
/// but which we only serve to a logged-in user.
fn required_session<T>(req: &Ruma<T>) -> Result<&Session> {
    req.session.as_ref().ok_or_else(|| {
        Error::new(
            http::StatusCode::UNAUTHORIZED,
            ruma::api::error::ErrorKind::MissingToken,
            "Missing access token",
        )
    })
}

/// A password UIA stage is a password guess: it shares login's per-IP and per-user limits, so a
/// stolen access token cannot be used to brute-force the account's password.
fn limit_password_attempts<T>(s: &Services, req: &Ruma<T>, auth: Option<&AuthData>) -> Result<()> {
    match (auth, &req.session) {
        (Some(AuthData::Password(_)), Some(session)) => s
            .rate_limits
            .check_login(req.client_ip, session.user_id.as_str()),
        _ => Ok(()),
    }
}

/// The content repository, with the security headers the spec asks for on served media.
fn media_routes() -> Router<Services> {
    Router::new()
        .ruma(media::upload)
        .ruma(media::create)
        .ruma(media::download)
        .ruma(media::download_as)
        .ruma(media::thumbnail)
        .ruma(media::config)
        .ruma(media::preview_url)
        .ruma(media_legacy::download)
        .ruma(media_legacy::download_as)
        .ruma(media_legacy::thumbnail)
        .ruma(media_legacy::config)
        .ruma(media_legacy::preview_url)
        .merge(upload_to_mxc_routes())
        .layer(axum::middleware::map_response(media::security_headers))
}

/// ruma 0.17 offers no constructor for `create_content_async`'s empty response, so this one
/// endpoint is a plain axum handler (same `Ruma` extractor, same errors) answering `{}`.
fn upload_to_mxc_routes() -> Router<Services> {
    use ruma::api::client::media::create_content_async;
    ruma_paths::<create_content_async::v3::Request>()
        .into_iter()
        .fold(Router::new(), |r, path| {
            r.route(path, axum::routing::put(media::upload_to_mxc))
        })
}

/// `GET /voip/turnServer` answers `{}` without TURN, which ruma's typed response cannot express.
fn turn_server_routes() -> Router<Services> {
    use ruma::api::client::voip::get_turn_server_info;
    ruma_paths::<get_turn_server_info::v3::Request>()
        .into_iter()
        .fold(Router::new(), |r, path| {
            r.route(path, axum::routing::get(voip::turn_server))
        })
}
