//! Profile: the whole profile, display name, avatar URL and extended fields (spec v1.16). Reads
//! of another server's users are asked of that server over federation (`QueryService::profile`).

use ruma::OwnedMxcUri;
use ruma::api::client::profile::{
    delete_profile_field, get_avatar_url, get_display_name, get_profile, get_profile_field,
    set_avatar_url, set_display_name, set_profile_field,
};
use ruma::profile::{ProfileFieldName, ProfileFieldValue};
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
    for (k, v) in p.fields {
        res.set(k, v);
    }
    Ok(res)
}

/// `GET /profile/{userId}/{keyName}`: 404 when the user is unknown or has no such field.
pub async fn get_field(
    s: Services,
    req: Ruma<get_profile_field::v3::Request>,
) -> Result<get_profile_field::v3::Response> {
    let mut p = s.query.profile(requester(&req), &req.user_id).await?;
    let value = match &req.field {
        ProfileFieldName::DisplayName => p.displayname.map(Value::String),
        ProfileFieldName::AvatarUrl => p.avatar_url.map(Value::String),
        other => p.fields.remove(other.as_str()),
    };
    let value = value.ok_or_else(|| {
        Error::not_found(format!(
            "{} has no profile field {}",
            req.user_id, req.field
        ))
    })?;
    let value = ProfileFieldValue::new(req.field.as_str(), value)
        .map_err(|e| Error::internal(format!("stored profile field: {e}")))?;
    Ok(get_profile_field::v3::Response::new(value))
}

/// `PUT /profile/{userId}/{keyName}`: the display name and avatar as their own endpoints do.
pub async fn set_field(
    s: Services,
    req: Ruma<set_profile_field::v3::Request>,
) -> Result<set_profile_field::v3::Response> {
    match &req.value {
        ProfileFieldValue::DisplayName(name) => {
            (s.accounts)
                .set_displayname(req.session(), &req.user_id, Some(name.clone()))
                .await?
        }
        ProfileFieldValue::AvatarUrl(url) => {
            (s.accounts)
                .set_avatar_url(req.session(), &req.user_id, Some(url.clone()))
                .await?
        }
        other => {
            let key = other.field_name();
            (s.users)
                .set_profile_field(req.session(), &req.user_id, key.as_str(), &other.value())
                .await?
        }
    }
    Ok(set_profile_field::v3::Response::new())
}

/// `DELETE /profile/{userId}/{keyName}`: removing the display name or avatar clears it.
pub async fn delete_field(
    s: Services,
    req: Ruma<delete_profile_field::v3::Request>,
) -> Result<delete_profile_field::v3::Response> {
    match &req.field {
        ProfileFieldName::DisplayName => {
            (s.accounts)
                .set_displayname(req.session(), &req.user_id, None)
                .await?
        }
        ProfileFieldName::AvatarUrl => {
            (s.accounts)
                .set_avatar_url(req.session(), &req.user_id, None)
                .await?
        }
        other => {
            (s.users)
                .delete_profile_field(req.session(), &req.user_id, other.as_str())
                .await?
        }
    }
    Ok(delete_profile_field::v3::Response::new())
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
