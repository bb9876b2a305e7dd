//! `GET /_matrix/federation/v1/media/download/{mediaId}` and `/thumbnail/{mediaId}`: our media
//! for a listed server, as `multipart/mixed` (a JSON metadata part, then the file). Whether the
//! server may have the file is the media service's decision (clinical media rules).

use ruma::api::federation::authenticated_media::{
    Content, ContentMetadata, FileOrLocation, get_content, get_content_thumbnail,
};

use crate::api::ruma::Ruma;
use crate::error::{Error, Result};
use crate::service::Services;

/// The verified origin (always present: these endpoints require X-Matrix).
fn origin<T>(req: &Ruma<T>) -> Result<&ruma::ServerName> {
    req.origin
        .as_deref()
        .ok_or_else(|| Error::forbidden("Federation requests must be signed"))
}

fn file(c: crate::service::media::Content) -> FileOrLocation {
    FileOrLocation::File(Content::new(c.bytes, c.content_type, c.disposition))
}

pub async fn download(
    s: Services,
    req: Ruma<get_content::v1::Request>,
) -> Result<get_content::v1::Response> {
    let c = s
        .media
        .download_for_server(origin(&req)?, &req.media_id, req.timeout_ms)
        .await?;
    Ok(get_content::v1::Response::new(
        ContentMetadata::new(),
        file(c),
    ))
}

pub async fn thumbnail(
    s: Services,
    req: Ruma<get_content_thumbnail::v1::Request>,
) -> Result<get_content_thumbnail::v1::Response> {
    let c = s
        .media
        .thumbnail_for_server(
            origin(&req)?,
            &req.media_id,
            (req.width, req.height),
            req.method.as_ref(),
            req.timeout_ms,
        )
        .await?;
    Ok(get_content_thumbnail::v1::Response::new(
        ContentMetadata::new(),
        file(c),
    ))
}
