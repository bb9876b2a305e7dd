//! Client-server API handlers, one file per endpoint group.

mod account;
mod discovery;
mod media;
mod media_legacy;
mod session;

use axum::Router;

use super::router::{RouterExt, ruma_paths};
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
    .merge(media_routes())
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
