//! `GET /_matrix/federation/v1/version` and `GET /.well-known/matrix/server`.

use ruma::api::federation::discovery::{discover_homeserver, get_server_version};

use crate::api::ruma::Ruma;
use crate::error::{Error, Result};
use crate::service::Services;

pub async fn version(
    _s: Services,
    req: Ruma<get_server_version::v1::Request>,
) -> Result<get_server_version::v1::Response> {
    if let Some(origin) = &req.origin {
        tracing::debug!(target: "handover::federation", %origin, "authenticated version request");
    }
    let mut server = get_server_version::v1::Server::new();
    server.name = Some("Handover".to_owned());
    server.version = Some(env!("CARGO_PKG_VERSION").to_owned());
    let mut res = get_server_version::v1::Response::new();
    res.server = Some(server);
    Ok(res)
}

/// Delegation (`federation.public_server`); 404 when not configured.
pub async fn well_known_server(
    s: Services,
    _req: Ruma<discover_homeserver::Request>,
) -> Result<discover_homeserver::Response> {
    match s.federation.well_known_server() {
        Some(server) => Ok(discover_homeserver::Response::new(server.to_owned())),
        None => Err(Error::not_found(
            "No server delegation is configured (federation.public_server)",
        )),
    }
}
