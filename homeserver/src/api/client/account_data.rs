//! Account data (global and per room) and room tags.

use ruma::api::client::config::{
    get_global_account_data, get_room_account_data, set_global_account_data, set_room_account_data,
};
use ruma::api::client::tag::{create_tag, delete_tag, get_tags};

use crate::api::ruma::Ruma;
use crate::error::Result;
use crate::service::Services;

pub async fn get_global(
    s: Services,
    req: Ruma<get_global_account_data::v3::Request>,
) -> Result<get_global_account_data::v3::Response> {
    let data = s
        .account_data
        .get_global(
            req.user_id(),
            &req.body.user_id,
            &req.event_type.to_string(),
        )
        .await?;
    Ok(get_global_account_data::v3::Response::new(data))
}

pub async fn set_global(
    s: Services,
    req: Ruma<set_global_account_data::v3::Request>,
) -> Result<set_global_account_data::v3::Response> {
    s.account_data
        .set_global(
            req.user_id(),
            &req.body.user_id,
            &req.event_type.to_string(),
            req.data.json(),
        )
        .await?;
    Ok(set_global_account_data::v3::Response::new())
}

pub async fn get_room(
    s: Services,
    req: Ruma<get_room_account_data::v3::Request>,
) -> Result<get_room_account_data::v3::Response> {
    let data = s
        .account_data
        .get_room(
            req.user_id(),
            &req.body.user_id,
            &req.room_id,
            &req.event_type.to_string(),
        )
        .await?;
    Ok(get_room_account_data::v3::Response::new(data))
}

pub async fn set_room(
    s: Services,
    req: Ruma<set_room_account_data::v3::Request>,
) -> Result<set_room_account_data::v3::Response> {
    s.account_data
        .set_room(
            req.user_id(),
            &req.body.user_id,
            &req.room_id,
            &req.event_type.to_string(),
            req.data.json(),
        )
        .await?;
    Ok(set_room_account_data::v3::Response::new())
}

pub async fn get_tags(
    s: Services,
    req: Ruma<get_tags::v3::Request>,
) -> Result<get_tags::v3::Response> {
    let tags = s
        .account_data
        .get_tags(req.user_id(), &req.body.user_id, &req.room_id)
        .await?;
    Ok(get_tags::v3::Response::new(tags))
}

pub async fn create_tag(
    s: Services,
    req: Ruma<create_tag::v3::Request>,
) -> Result<create_tag::v3::Response> {
    s.account_data
        .set_tag(
            req.user_id(),
            &req.body.user_id,
            &req.room_id,
            &req.tag,
            &req.tag_info,
        )
        .await?;
    Ok(create_tag::v3::Response::new())
}

pub async fn delete_tag(
    s: Services,
    req: Ruma<delete_tag::v3::Request>,
) -> Result<delete_tag::v3::Response> {
    s.account_data
        .delete_tag(req.user_id(), &req.body.user_id, &req.room_id, &req.tag)
        .await?;
    Ok(delete_tag::v3::Response::new())
}
