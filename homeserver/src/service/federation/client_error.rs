//! How a failed outbound federation request reaches the local client that caused it.

use http::StatusCode;
use ruma::api::error::ErrorKind;

use super::client::FederationError;
use crate::error::Error;

/// The client's error for a failed request to another server. A refusal by the federation
/// list is the policy's `M_FORBIDDEN` naming the rule (already audited by the gate); the
/// remote's own 403/404 pass through; anything else is 502, with the detail only in the log
/// (TLS and network errors describe our infrastructure, not the client's request).
pub fn to_client_error(e: FederationError) -> Error {
    match e {
        FederationError::Denied { denial, .. } => Error::policy(&denial),
        FederationError::Remote {
            server,
            status: 404,
            body,
        } => Error::not_found(format!(
            "{server} has no such resource{}",
            remote_reason(&body)
        )),
        FederationError::Remote {
            server,
            status: 403,
            body,
        } => Error::forbidden(format!(
            "{server} refused the request{}",
            remote_reason(&body)
        )),
        FederationError::TooLarge { server, limit } => Error::new(
            StatusCode::BAD_GATEWAY,
            ErrorKind::TooLarge,
            format!("The answer from {server} is larger than {limit} bytes"),
        ),
        // Names the server and the missing discovery step; nothing about our network.
        FederationError::Discovery(message) => {
            Error::new(StatusCode::BAD_GATEWAY, ErrorKind::Unknown, message)
        }
        other => {
            tracing::info!(target: "handover::federation", error = %other, "federation request failed");
            let server = match &other {
                FederationError::Transport { server, .. }
                | FederationError::Remote { server, .. }
                | FederationError::Response { server, .. } => server.as_str(),
                _ => "the other server",
            };
            Error::new(
                StatusCode::BAD_GATEWAY,
                ErrorKind::Unknown,
                format!("Could not get an answer from {server}"),
            )
        }
    }
}

/// `": <error>"` from a Matrix error body, so the client learns why (e.g. "not invited");
/// empty when the body carries no readable reason.
fn remote_reason(body: &str) -> String {
    serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v["error"].as_str().map(|e| format!(": {e}")))
        .unwrap_or_default()
}
