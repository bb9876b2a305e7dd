//! The deprecated `/_matrix/media/v3/*` read endpoints (spec v1.11). Download and thumbnail are
//! unauthenticated and frozen (404 for everything, see `MediaService::unauthenticated_media_frozen`);
//! config still answers; preview_url is refused like its v1 successor.

// These ruma types are deprecated precisely because the endpoints are; we serve them on purpose.
#![allow(deprecated)]

use ruma::api::client::media::{
    get_content, get_content_as_filename, get_content_thumbnail, get_media_config,
    get_media_preview,
};

use crate::api::ruma::Ruma;
use crate::error::Result;
use crate::service::Services;

pub async fn download(
    s: Services,
    _: Ruma<get_content::v3::Request>,
) -> Result<get_content::v3::Response> {
    Err(s.media.unauthenticated_media_frozen())
}

pub async fn download_as(
    s: Services,
    _: Ruma<get_content_as_filename::v3::Request>,
) -> Result<get_content_as_filename::v3::Response> {
    Err(s.media.unauthenticated_media_frozen())
}

pub async fn thumbnail(
    s: Services,
    _: Ruma<get_content_thumbnail::v3::Request>,
) -> Result<get_content_thumbnail::v3::Response> {
    Err(s.media.unauthenticated_media_frozen())
}

pub async fn config(
    s: Services,
    _: Ruma<get_media_config::v3::Request>,
) -> Result<get_media_config::v3::Response> {
    Ok(get_media_config::v3::Response::new(s.media.upload_size()))
}

pub async fn preview_url(
    s: Services,
    _: Ruma<get_media_preview::v3::Request>,
) -> Result<get_media_preview::v3::Response> {
    Err(s.media.url_previews_disabled())
}
