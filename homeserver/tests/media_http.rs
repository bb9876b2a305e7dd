//! The media endpoints over real HTTP: routing, authentication, status codes and the headers the
//! spec asks for on served content. (Service behaviour is tested beside the service.)

mod common;

use common::{Server, start_with};
use serde_json::Value;

async fn start(max_upload_bytes: u64) -> Server {
    start_with(|config| {
        config.media.max_upload_bytes = max_upload_bytes;
        // A deployment that widened the allowlist: served HTML must still never render inline.
        config.clinical_media.allowed_types.push("text/html".into());
    })
    .await
}

fn media_id(content_uri: &Value) -> String {
    let uri = content_uri.as_str().unwrap();
    let (server, id) = uri.strip_prefix("mxc://").unwrap().split_once('/').unwrap();
    assert_eq!(server, "localhost");
    id.to_owned()
}

fn png() -> Vec<u8> {
    let img = image::RgbImage::from_fn(120, 60, |x, y| image::Rgb([x as u8, y as u8, 9]));
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

#[tokio::test]
async fn upload_download_and_served_headers() {
    let srv = start(1 << 20).await;
    // Types outside the allowlist: 403 naming the rule (docs/GOVERNANCE.md).
    let r = srv
        .call(
            "POST",
            "/_matrix/media/v3/upload",
            true,
            Some(("image/svg+xml", b"<svg/>")),
        )
        .await;
    r.assert_error(403, "M_FORBIDDEN");
    assert!(
        r.json()["error"]
            .as_str()
            .unwrap()
            .contains("media_type_not_allowed")
    );

    let html = b"<script>alert(1)</script>";
    let r = srv
        .call(
            "POST",
            "/_matrix/media/v3/upload?filename=page.html",
            true,
            Some(("text/html", html)),
        )
        .await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let id = media_id(&r.json()["content_uri"]);

    let r = srv
        .call(
            "GET",
            &format!("/_matrix/client/v1/media/download/localhost/{id}"),
            true,
            None,
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body, html);
    assert_eq!(r.header("content-type"), "text/html");
    // HTML is never rendered inline.
    assert_eq!(
        r.header("content-disposition"),
        "attachment; filename=page.html"
    );
    assert!(
        r.header("content-security-policy")
            .starts_with("sandbox; default-src 'none'")
    );
    assert_eq!(r.header("cross-origin-resource-policy"), "cross-origin");
    assert_eq!(r.header("x-content-type-options"), "nosniff");

    let r = srv
        .call(
            "GET",
            &format!("/_matrix/client/v1/media/download/localhost/{id}/x.txt"),
            true,
            None,
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("content-disposition"),
        "attachment; filename=x.txt"
    );

    srv.call(
        "GET",
        &format!("/_matrix/client/v1/media/download/localhost/{id}"),
        false,
        None,
    )
    .await
    .assert_error(401, "M_MISSING_TOKEN");
    // Another server's media is asked of it over federation; a name without a port cannot be
    // discovered yet, so nothing is contacted (tests/federation_queries_http/ fetches some).
    srv.call(
        "GET",
        "/_matrix/client/v1/media/download/remote.org/abc",
        true,
        None,
    )
    .await
    .assert_error(502, "M_UNKNOWN");
}

#[tokio::test]
async fn thumbnails_over_http() {
    let srv = start(1 << 20).await;
    let r = srv
        .call(
            "POST",
            "/_matrix/media/v3/upload",
            true,
            Some(("image/png", &png())),
        )
        .await;
    let id = media_id(&r.json()["content_uri"]);
    let path =
        format!("/_matrix/client/v1/media/thumbnail/localhost/{id}?width=32&height=32&method=crop");
    let r = srv.call("GET", &path, true, None).await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.header("content-type"), "image/png");
    assert_eq!(
        r.header("content-disposition"),
        "inline; filename=thumbnail.png"
    );
    let img = image::load_from_memory(&r.body).unwrap();
    assert_eq!((img.width(), img.height()), (32, 32));

    let bad = format!(
        "/_matrix/client/v1/media/thumbnail/localhost/{id}?width=32&height=32&method=stretch"
    );
    srv.call("GET", &bad, true, None)
        .await
        .assert_error(400, "M_INVALID_PARAM");
}

#[tokio::test]
async fn legacy_endpoints_are_frozen_config_still_answers() {
    let srv = start(12_345).await;
    let r = srv
        .call(
            "POST",
            "/_matrix/media/v3/upload",
            true,
            Some(("image/png", &png())),
        )
        .await;
    let id = media_id(&r.json()["content_uri"]);
    for path in [
        format!("/_matrix/media/v3/download/localhost/{id}"),
        format!("/_matrix/media/v3/download/localhost/{id}/name.png"),
        format!("/_matrix/media/v3/thumbnail/localhost/{id}?width=32&height=32"),
        format!("/_matrix/media/r0/download/localhost/{id}"),
    ] {
        srv.call("GET", &path, false, None)
            .await
            .assert_error(404, "M_NOT_FOUND");
    }
    for path in [
        "/_matrix/client/v1/media/config",
        "/_matrix/media/v3/config",
    ] {
        let r = srv.call("GET", path, true, None).await;
        assert_eq!(r.status, 200, "{path}");
        assert_eq!(r.json()["m.upload.size"], 12_345, "{path}");
    }
    for path in [
        "/_matrix/client/v1/media/preview_url?url=https%3A%2F%2Fexample.org",
        "/_matrix/media/v3/preview_url?url=https%3A%2F%2Fexample.org",
    ] {
        let r = srv.call("GET", path, true, None).await;
        r.assert_error(403, "M_FORBIDDEN");
        let msg = r.json()["error"].as_str().unwrap_or_default().to_owned();
        assert!(msg.contains("`url_previews_off`"), "{msg}");
    }
}

#[tokio::test]
async fn upload_limits_and_async_upload() {
    let srv = start(100).await;
    let r = srv
        .call(
            "POST",
            "/_matrix/media/v3/upload",
            true,
            Some(("text/plain", &[b'a'; 100])),
        )
        .await;
    assert_eq!(r.status, 200);
    srv.call(
        "POST",
        "/_matrix/media/v3/upload",
        true,
        Some(("text/plain", &[b'a'; 101])),
    )
    .await
    .assert_error(413, "M_TOO_LARGE");

    let r = srv
        .call(
            "POST",
            "/_matrix/media/v1/create",
            true,
            Some(("application/json", b"{}")),
        )
        .await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert!(r.json()["unused_expires_at"].as_u64().is_some());
    let id = media_id(&r.json()["content_uri"]);
    let put = format!("/_matrix/media/v3/upload/localhost/{id}?filename=n.txt");
    let r = srv
        .call("PUT", &put, true, Some(("text/plain", b"async")))
        .await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json(), serde_json::json!({}));
    let r = srv
        .call(
            "GET",
            &format!("/_matrix/client/v1/media/download/localhost/{id}"),
            true,
            None,
        )
        .await;
    assert_eq!(r.body, b"async");
    assert_eq!(r.header("content-disposition"), "inline; filename=n.txt");
    srv.call("PUT", &put, true, Some(("text/plain", b"again")))
        .await
        .assert_error(409, "M_CANNOT_OVERWRITE_MEDIA");
    srv.call(
        "PUT",
        "/_matrix/media/v3/upload/localhost/neverCreated",
        true,
        Some(("text/plain", b"x")),
    )
    .await
    .assert_error(404, "M_NOT_FOUND");
}
