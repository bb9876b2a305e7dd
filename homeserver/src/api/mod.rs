//! HTTP layer: axum routes to one handler per endpoint; handlers call one service function.

pub mod admin;
pub mod client;
pub mod console;
pub mod federation;
pub mod oauth;
pub mod ops;
pub mod router;
pub mod ruma;

use axum::Router;

use crate::service::Services;

/// The client-server API router (state not yet applied).
pub fn client_router() -> Router<Services> {
    oauth::routes(console::routes(ops::routes(admin::routes(client::routes(
        Router::new(),
    )))))
    .fallback(router::unknown_endpoint)
    .method_not_allowed_fallback(router::method_not_allowed)
}

/// The server-server API router (state not yet applied), for the federation listener.
pub fn federation_router() -> Router<Services> {
    federation::routes(Router::new())
        .fallback(router::unknown_endpoint)
        .method_not_allowed_fallback(router::method_not_allowed)
}
