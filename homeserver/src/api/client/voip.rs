//! `GET /voip/turnServer`: coturn credentials (`service/voip.rs`), or `{}` when this server has
//! no TURN server, as clients (Element, matrix-js-sdk) expect and Synapse answers. ruma's
//! response has required fields, so this is a plain axum handler with the same extractor.

use axum::Json;
use axum::extract::State;
use ruma::api::client::voip::get_turn_server_info;
use serde_json::{Value, json};

use crate::api::ruma::Ruma;
use crate::error::Result;
use crate::service::Services;

pub async fn turn_server(
    State(s): State<Services>,
    req: Ruma<get_turn_server_info::v3::Request>,
) -> Result<Json<Value>> {
    Ok(Json(match s.voip.credentials(&req.session().user_id) {
        Some(c) => json!({
            "username": c.username,
            "password": c.password,
            "uris": c.uris,
            "ttl": c.ttl.as_secs(),
        }),
        None => json!({}),
    }))
}
