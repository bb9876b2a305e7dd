//! `GET /_matrix/federation/v1/query/profile` and `/query/directory`: what a listed server may
//! learn about our users and aliases. The extractor has verified the origin.

use ruma::api::federation::query::{get_profile_information, get_room_information};
use serde_json::Value;

use crate::api::ruma::Ruma;
use crate::error::Result;
use crate::service::Services;

pub async fn profile(
    s: Services,
    req: Ruma<get_profile_information::v1::Request>,
) -> Result<get_profile_information::v1::Response> {
    let p = s
        .query
        .answer_profile(&req.user_id, req.field.as_ref())
        .await?;
    let mut res = get_profile_information::v1::Response::new();
    // Unset fields are left out (spec: omitted or null).
    if let Some(name) = p.displayname {
        res.set("displayname".to_owned(), Value::String(name));
    }
    if let Some(url) = p.avatar_url {
        res.set("avatar_url".to_owned(), Value::String(url));
    }
    for (k, v) in p.fields {
        res.set(k, v);
    }
    Ok(res)
}

pub async fn directory(
    s: Services,
    req: Ruma<get_room_information::v1::Request>,
) -> Result<get_room_information::v1::Response> {
    let (room_id, servers) = s.query.answer_directory(&req.room_alias).await?;
    Ok(get_room_information::v1::Response::new(room_id, servers))
}
