//! Client-server API handlers, one file per endpoint group.

mod account;
mod discovery;
mod session;

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
}
