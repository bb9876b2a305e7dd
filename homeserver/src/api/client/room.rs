//! createRoom and joined_rooms.

use ruma::api::client::membership::joined_rooms;
use ruma::api::client::room::{Visibility, create_room, upgrade_room};
use ruma::room::RoomType;

use crate::api::ruma::Ruma;
use crate::error::{Error, Result};
use crate::service::Services;
use crate::service::rate_limit::UserAction;
use crate::service::rooms::CreateRoomParams;
use crate::service::rooms::create::Preset;

fn object(
    raw: Option<&impl serde::Serialize>,
    what: &str,
) -> Result<Option<serde_json::Map<String, serde_json::Value>>> {
    match raw
        .map(serde_json::to_value)
        .transpose()
        .map_err(|e| Error::bad_json(format!("{what}: {e}")))?
    {
        None => Ok(None),
        Some(serde_json::Value::Object(m)) => Ok(Some(m)),
        Some(_) => Err(Error::bad_json(format!("{what} must be an object"))),
    }
}

pub async fn create_room(
    s: Services,
    req: Ruma<create_room::v3::Request>,
) -> Result<create_room::v3::Response> {
    use create_room::v3::RoomPreset;
    (s.rate_limits).check_user(UserAction::RoomCreation, req.user_id().as_str())?;
    let preset = match &req.preset {
        None => None,
        Some(RoomPreset::PrivateChat) => Some(Preset::PrivateChat),
        Some(RoomPreset::TrustedPrivateChat) => Some(Preset::TrustedPrivateChat),
        Some(RoomPreset::PublicChat) => Some(Preset::PublicChat),
        Some(other) => {
            return Err(Error::invalid_param(format!(
                "Unknown preset {}",
                other.as_str()
            )));
        }
    };
    if !req.invite_3pid.is_empty() {
        return Err(Error::invalid_param(
            "invite_3pid is not supported: this server invites by Matrix user id only (it uses \
             no identity server); put the user's id in `invite`",
        ));
    }
    let mut initial_state = Vec::new();
    for raw in &req.initial_state {
        let v: serde_json::Value = raw
            .deserialize_as()
            .map_err(|e| Error::bad_json(format!("initial_state: {e}")))?;
        let kind = v["type"]
            .as_str()
            .ok_or_else(|| Error::bad_json("initial_state event without type"))?;
        let key = v["state_key"].as_str().unwrap_or("");
        initial_state.push((kind.to_owned(), key.to_owned(), v["content"].clone()));
    }
    let creation_content = object(req.creation_content.as_ref(), "creation_content")?;
    if let Some(c) = &creation_content
        && let Some(t) = c.get("type")
    {
        serde_json::from_value::<RoomType>(t.clone())
            .map_err(|e| Error::bad_json(format!("creation_content.type: {e}")))?;
    }
    let params = CreateRoomParams {
        version: req.room_version.clone(),
        preset,
        is_public: req.visibility == Visibility::Public,
        name: req.name.clone(),
        topic: req.topic.clone(),
        alias_localpart: req.room_alias_name.clone(),
        invite: req.invite.clone(),
        is_direct: req.is_direct,
        initial_state,
        creation_content,
        power_level_override: object(
            req.power_level_content_override.as_ref(),
            "power_level_content_override",
        )?,
    };
    let room_id = s.rooms.create_room(req.user_id(), params).await?;
    Ok(create_room::v3::Response::new(room_id))
}

pub async fn joined_rooms(
    s: Services,
    req: Ruma<joined_rooms::v3::Request>,
) -> Result<joined_rooms::v3::Response> {
    Ok(joined_rooms::v3::Response::new(
        s.rooms.joined_rooms(req.user_id()).await?,
    ))
}

pub async fn upgrade_room(
    s: Services,
    req: Ruma<upgrade_room::v3::Request>,
) -> Result<upgrade_room::v3::Response> {
    (s.rate_limits).check_user(UserAction::RoomCreation, req.user_id().as_str())?;
    let new_room = (s.rooms)
        .upgrade_room(
            &req.room_id,
            req.user_id(),
            &req.new_version,
            req.additional_creators.clone(),
        )
        .await?;
    Ok(upgrade_room::v3::Response::new(new_room))
}
