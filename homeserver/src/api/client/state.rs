//! Room state: read all, read one, send one.

use ruma::api::client::state::{get_state_event_for_key, get_state_events, send_state_event};

use crate::api::ruma::Ruma;
use crate::error::Result;
use crate::service::Services;
use crate::service::rooms::EventSpec;
use crate::service::rooms::format::{Viewer, to_raw};

pub async fn get_state(
    s: Services,
    req: Ruma<get_state_events::v3::Request>,
) -> Result<get_state_events::v3::Response> {
    let viewer = Viewer {
        user_id: req.user_id(),
        device_id: Some(req.device_id()),
    };
    let evs = s.rooms.visible_state(&req.room_id, viewer).await?;
    Ok(get_state_events::v3::Response::new(
        evs.iter().map(to_raw).collect(),
    ))
}

pub async fn get_state_event(
    s: Services,
    req: Ruma<get_state_event_for_key::v3::Request>,
) -> Result<get_state_event_for_key::v3::Response> {
    use get_state_event_for_key::v3::StateEventFormat;
    let event = s
        .rooms
        .state_event(
            &req.room_id,
            req.user_id(),
            &req.event_type.to_string(),
            &req.state_key,
        )
        .await?;
    // `?format=event` asks for the whole event; the default is its content.
    let content = match req.format {
        StateEventFormat::Event => event,
        _ => event["content"].clone(),
    };
    let raw = serde_json::value::to_raw_value(&content).map_err(crate::error::Error::internal)?;
    Ok(get_state_event_for_key::v3::Response::new(raw))
}

pub async fn send_state(
    s: Services,
    req: Ruma<send_state_event::v3::Request>,
) -> Result<send_state_event::v3::Response> {
    let content: serde_json::Value = serde_json::from_str(req.body.body.json().get())
        .map_err(|e| crate::error::Error::bad_json(format!("Invalid content: {e}")))?;
    let spec = EventSpec::state(req.event_type.clone(), req.state_key.clone(), content);
    let event_id = s
        .rooms
        .send_state(&req.room_id, req.user_id(), spec)
        .await?;
    Ok(send_state_event::v3::Response::new(event_id))
}
