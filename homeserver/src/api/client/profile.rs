//! Profile: the whole profile, display name and avatar URL. Reads of another server's users
//! are asked of that server over federation (`QueryService::profile`).

use ruma::OwnedMxcUri;
use ruma::api::client::profile::{
    get_avatar_url, get_display_name, get_profile, set_avatar_url, set_display_name,
};
use serde_json::Value;

use crate::api::ruma::Ruma;
use crate::error::{Error, Result};
use crate::service::Services;

/// Who is asking, if signed in (these endpoints need no token; another server's users are
/// looked up only for signed-in users).
fn requester<T>(req: &Ruma<T>) -> Option<&ruma::UserId> {
    req.session.as_ref().map(|s| &*s.user_id)
}

pub async fn get_profile(
    s: Services,
    req: Ruma<get_profile::v3::Request>,
) -> Result<get_profile::v3::Response> {
    let p = s.query.profile(requester(&req), &req.user_id).await?;
    let mut res = get_profile::v3::Response::new();
    if let Some(name) = p.displayname {
        res.set("displayname".to_owned(), Value::String(name));
    }
    if let Some(url) = p.avatar_url {
        res.set("avatar_url".to_owned(), Value::String(url));
    }
    Ok(res)
}

/// 404 when the user is unknown or has no display name (spec).
pub async fn get_display_name(
    s: Services,
    req: Ruma<get_display_name::v3::Request>,
) -> Result<get_display_name::v3::Response> {
    let p = s.query.profile(requester(&req), &req.user_id).await?;
    match p.displayname {
        Some(name) => Ok(get_display_name::v3::Response::new(Some(name))),
        None => Err(Error::not_found("This user has no display name")),
    }
}

pub async fn set_display_name(
    s: Services,
    req: Ruma<set_display_name::v3::Request>,
) -> Result<set_display_name::v3::Response> {
    s.accounts
        .set_displayname(req.session(), &req.user_id, req.body.displayname.clone())
        .await?;
    Ok(set_display_name::v3::Response::new())
}

/// 404 when the user is unknown or has no avatar (spec).
pub async fn get_avatar_url(
    s: Services,
    req: Ruma<get_avatar_url::v3::Request>,
) -> Result<get_avatar_url::v3::Response> {
    let p = s.query.profile(requester(&req), &req.user_id).await?;
    match p.avatar_url {
        Some(url) => Ok(get_avatar_url::v3::Response::new(Some(OwnedMxcUri::from(
            url,
        )))),
        None => Err(Error::not_found("This user has no avatar")),
    }
}

pub async fn set_avatar_url(
    s: Services,
    req: Ruma<set_avatar_url::v3::Request>,
) -> Result<set_avatar_url::v3::Response> {
    s.accounts
        .set_avatar_url(req.session(), &req.user_id, req.body.avatar_url.clone())
        .await?;
    Ok(set_avatar_url::v3::Response::new())
}
