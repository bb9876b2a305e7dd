//! Content repository: upload (`/_matrix/media/v3/upload`, `/_matrix/media/v1/create`) and the
//! authenticated v1.11 endpoints under `/_matrix/client/v1/media/`.

use axum::Json;
use axum::extract::State;
use axum::response::Response;
use http::HeaderValue;
use http::header::{CONTENT_SECURITY_POLICY, X_CONTENT_TYPE_OPTIONS};
use ruma::api::client::authenticated_media::{
    get_content, get_content_as_filename, get_content_thumbnail, get_media_config,
    get_media_preview,
};
use ruma::api::client::media::{create_content, create_content_async, create_mxc_uri};

use crate::api::ruma::Ruma;
use crate::error::Result;
use crate::service::Services;
use crate::service::media::Staged;
use crate::service::rate_limit::UserAction;

pub async fn upload(
    s: Services,
    mut req: Ruma<create_content::v3::Request>,
) -> Result<create_content::v3::Response> {
    (s.rate_limits).check_user(UserAction::Upload, req.user_id().as_str())?;
    let user = req.user_id().clone();
    // The body was streamed to a temp file (see `Ruma::upload`).
    let file: Staged = match req.take_upload() {
        Some(temp) => temp.into(),
        None => std::mem::take(&mut req.body.file).into(),
    };
    let body = req.body;
    let uri = s
        .media
        .upload(&user, file, body.content_type, body.filename)
        .await?;
    Ok(create_content::v3::Response::new(uri))
}

pub async fn create(
    s: Services,
    req: Ruma<create_mxc_uri::v1::Request>,
) -> Result<create_mxc_uri::v1::Response> {
    (s.rate_limits).check_user(UserAction::Upload, req.user_id().as_str())?;
    let (uri, expires_at) = s.media.create_pending(req.user_id())?;
    let mut res = create_mxc_uri::v1::Response::new(uri);
    res.unused_expires_at = Some(expires_at);
    Ok(res)
}

/// `PUT /upload/{serverName}/{mediaId}`; routed directly (see `upload_to_mxc_routes`).
pub async fn upload_to_mxc(
    State(s): State<Services>,
    mut req: Ruma<create_content_async::v3::Request>,
) -> Result<Json<serde_json::Value>> {
    let user = req.user_id().clone();
    // The body was streamed to a temp file (see `Ruma::upload`).
    let file: Staged = match req.take_upload() {
        Some(temp) => temp.into(),
        None => std::mem::take(&mut req.body.file).into(),
    };
    let body = req.body;
    s.media
        .upload_pending(
            &user,
            &body.server_name,
            &body.media_id,
            file,
            body.content_type,
            body.filename,
        )
        .await?;
    Ok(Json(serde_json::json!({})))
}

pub async fn download(
    s: Services,
    req: Ruma<get_content::v1::Request>,
) -> Result<get_content::v1::Response> {
    let c = s
        .media
        .download(
            req.user_id(),
            &req.server_name,
            &req.media_id,
            None,
            req.timeout_ms,
        )
        .await?;
    Ok(get_content::v1::Response::new(
        c.bytes,
        c.content_type,
        c.disposition,
    ))
}

pub async fn download_as(
    s: Services,
    req: Ruma<get_content_as_filename::v1::Request>,
) -> Result<get_content_as_filename::v1::Response> {
    let name = Some(req.filename.clone());
    let c = s
        .media
        .download(
            req.user_id(),
            &req.server_name,
            &req.media_id,
            name,
            req.timeout_ms,
        )
        .await?;
    Ok(get_content_as_filename::v1::Response::new(
        c.bytes,
        c.content_type,
        c.disposition,
    ))
}

pub async fn thumbnail(
    s: Services,
    req: Ruma<get_content_thumbnail::v1::Request>,
) -> Result<get_content_thumbnail::v1::Response> {
    let c = s
        .media
        .thumbnail(
            req.user_id(),
            &req.server_name,
            &req.media_id,
            (req.width, req.height),
            req.method.as_ref(),
            req.timeout_ms,
        )
        .await?;
    Ok(get_content_thumbnail::v1::Response::new(
        c.bytes,
        c.content_type,
        c.disposition,
    ))
}

pub async fn config(
    s: Services,
    _: Ruma<get_media_config::v1::Request>,
) -> Result<get_media_config::v1::Response> {
    Ok(get_media_config::v1::Response::new(s.media.upload_size()))
}

pub async fn preview_url(
    s: Services,
    _: Ruma<get_media_preview::v1::Request>,
) -> Result<get_media_preview::v1::Response> {
    Err(s.media.url_previews_disabled())
}

/// The spec's recommended policy for served content: a file opened directly in a browser runs
/// no script and loads nothing.
const CONTENT_SECURITY_POLICY_VALUE: &str = "sandbox; default-src 'none'; script-src 'none'; \
     plugin-types application/pdf; style-src 'unsafe-inline'; object-src 'self';";

/// Added to every media response (errors included; the headers are harmless on JSON).
pub async fn security_headers(mut res: Response) -> Response {
    let h = res.headers_mut();
    h.insert(
        CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY_VALUE),
    );
    // Lets web clients embed media from another origin (spec, since v1.4).
    h.insert(
        "cross-origin-resource-policy",
        HeaderValue::from_static("cross-origin"),
    );
    // Browsers must trust our Content-Type, never sniff an upload into HTML.
    h.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    res
}
