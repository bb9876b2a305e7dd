//! Harness for Handover's end-to-end tests.
//!
//! [`TestServer`] starts the real `handover` binary (`$HANDOVER_BIN`, else
//! `$CARGO_TARGET_DIR/debug/handover` or `<repo>/target/debug/handover`) on a fresh data
//! directory, waits for its `HANDOVER_LISTENING client=...` line and can stop/restart it on
//! the same data. Helpers build matrix-sdk clients ([`TestServer::register`], [`TestServer::login`]),
//! drive `/sync` until a condition holds ([`sync_until`]) and make raw HTTP calls
//! ([`Http`]) for the bad-input tests.

use std::future::Future;
use std::time::Duration;

use matrix_sdk::Client;
use matrix_sdk::config::SyncSettings;
use matrix_sdk::ruma::{OwnedRoomId, RoomId};
use matrix_sdk::sync::SyncResponse;
use serde_json::Value;

pub use serde_json::json;

pub mod account;
pub mod alerts;
pub mod epr;
pub mod federation;
pub mod fhir_test_server;
mod http;
pub mod mautrix;
pub mod oidc;
mod server;
pub mod synapse;

pub use http::*;
pub use server::*;

/// Default password used by the helpers.
pub const PASSWORD: &str = "correct horse battery staple";

/// How long the server may take to print its listening line (`HANDOVER_E2E_STARTUP_SECS`,
/// default 30).
fn startup_timeout() -> Duration {
    let secs = std::env::var("HANDOVER_E2E_STARTUP_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(30);
    Duration::from_secs(secs)
}

// ---------------------------------------------------------------------------------------------
// Timeouts
// ---------------------------------------------------------------------------------------------

/// Runs a test body with an overall deadline, so a hung server fails the test instead of
/// hanging CI. On timeout it panics *while the body is still alive*, so a [`TestServer`]
/// inside it is dropped during unwinding and prints its logs.
pub async fn with_timeout<F: Future<Output = ()>>(secs: u64, body: F) {
    let mut body = Box::pin(body);
    tokio::select! {
        () = &mut body => {}
        () = tokio::time::sleep(Duration::from_secs(secs)) => {
            panic!("test timed out after {secs}s (server hung or a condition never became true)")
        }
    }
}

/// Awaits `fut` for at most `secs` seconds, panicking with `what` otherwise.
pub async fn within<T>(secs: u64, what: &str, fut: impl Future<Output = T>) -> T {
    match tokio::time::timeout(Duration::from_secs(secs), fut).await {
        Ok(v) => v,
        Err(_) => panic!("timed out after {secs}s: {what}"),
    }
}

// ---------------------------------------------------------------------------------------------
// Sync helpers
// ---------------------------------------------------------------------------------------------

/// Syncs `client` repeatedly (short long-poll, reusing the previous token) until `check`
/// returns `Some`, or panics after `secs` seconds with `what`.
pub async fn sync_until<T>(
    client: &Client,
    secs: u64,
    what: &str,
    mut check: impl FnMut(&SyncResponse) -> Option<T>,
) -> T {
    within(secs, &format!("waiting for sync: {what}"), async {
        loop {
            let resp = client
                .sync_once(SyncSettings::default().timeout(Duration::from_millis(500)))
                .await
                .unwrap_or_else(|e| panic!("sync failed while waiting for {what}: {e:?}"));
            if let Some(v) = check(&resp) {
                return v;
            }
        }
    })
    .await
}

/// Parses a raw event to JSON.
pub fn raw_json<T>(raw: &matrix_sdk::ruma::serde::Raw<T>) -> Value {
    serde_json::from_str(raw.json().get()).expect("event JSON")
}

/// Timeline events (as JSON) of a joined room in a sync response.
pub fn timeline(resp: &SyncResponse, room_id: &RoomId) -> Vec<Value> {
    resp.rooms
        .joined
        .get(room_id)
        .map(|r| {
            r.timeline
                .events
                .iter()
                .map(|e| raw_json(e.raw()))
                .collect()
        })
        .unwrap_or_default()
}

/// Ephemeral events (as JSON) of a joined room in a sync response.
pub fn ephemeral(resp: &SyncResponse, room_id: &RoomId) -> Vec<Value> {
    resp.rooms
        .joined
        .get(room_id)
        .map(|r| r.ephemeral.iter().map(raw_json).collect())
        .unwrap_or_default()
}

/// Rooms this sync response reports as invites.
pub fn invited_rooms(resp: &SyncResponse) -> Vec<OwnedRoomId> {
    resp.rooms.invited.keys().cloned().collect()
}

/// `content.body` of an `m.room.message` event, if it is one.
pub fn message_body(ev: &Value) -> Option<&str> {
    if ev["type"] != "m.room.message" {
        return None;
    }
    ev["content"]["body"].as_str()
}
