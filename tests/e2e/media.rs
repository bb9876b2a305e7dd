//! Media: upload, authenticated download (client v1 media), thumbnails, config.

use handover_e2e::*;
use matrix_sdk::media::{MediaFormat, MediaRequestParameters, MediaThumbnailSettings};
use matrix_sdk::ruma::events::room::MediaSource;
use matrix_sdk::ruma::{OwnedMxcUri, uint};

/// A 200x100 RGB PNG with a gradient (so it is not trivially compressible).
fn test_png() -> Vec<u8> {
    let img = image::RgbImage::from_fn(200, 100, |x, y| {
        image::Rgb([x as u8, y as u8 * 2, (x ^ y) as u8])
    });
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png)
        .expect("encode png");
    out.into_inner()
}

fn mxc_parts(uri: &OwnedMxcUri) -> (String, String) {
    let s = uri.as_str().strip_prefix("mxc://").expect("mxc:// URI");
    let (server, id) = s.split_once('/').expect("mxc://server/id");
    assert!(!id.is_empty() && !id.contains('/'), "bad media id in {uri}");
    (server.to_owned(), id.to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_download_and_thumbnail() {
    with_timeout(180, async {
        let server = TestServer::start().await;
        let alice = server.register("alice").await;
        let bob = server.register("bob").await;
        let http = server.http();
        let alice_token = alice.access_token().unwrap();
        let bob_token = bob.access_token().unwrap();

        // Upload a PNG with matrix-sdk.
        let png = test_png();
        let up = alice.media().upload(&mime::IMAGE_PNG, png.clone(), None).await.expect("upload png");
        let (png_server, png_id) = mxc_parts(&up.content_uri);
        assert_eq!(png_server, "localhost");

        // Upload a text blob with raw HTTP (with a filename).
        let text = "hello media\n".repeat(100).into_bytes();
        let r = http
            .request(
                "POST",
                "/_matrix/media/v3/upload?filename=notes.txt",
                Some(&alice_token),
                Some(("text/plain", text.clone())),
            )
            .await;
        let text_uri = r.ok()["content_uri"].as_str().expect("content_uri").to_owned();
        let text_id = text_uri.rsplit('/').next().unwrap().to_owned();
        assert_ne!(text_id, png_id);

        // Clinical media rules: a file is served to the members of the room it was first sent
        // in (until then only to its uploader), so share both in a room with Bob.
        let bob_id = bob.user_id().expect("bob logged in").to_string();
        let r = http
            .post_json("/_matrix/client/v3/createRoom", Some(&alice_token), &json!({ "invite": [bob_id] }))
            .await;
        let room_id = r.ok()["room_id"].as_str().expect("room_id").to_owned();
        http.get(&format!("/_matrix/client/v1/media/download/localhost/{png_id}"), Some(&bob_token))
            .await
            .assert_error(404, &["M_NOT_FOUND"]);
        http.post_json(&format!("/_matrix/client/v3/join/{room_id}"), Some(&bob_token), &json!({})).await.ok();
        for (i, (msgtype, id)) in [("m.image", &png_id), ("m.file", &text_id)].into_iter().enumerate() {
            let content = json!({ "msgtype": msgtype, "body": "attachment", "url": format!("mxc://localhost/{id}") });
            http.put_json(
                &format!("/_matrix/client/v3/rooms/{room_id}/send/m.room.message/share{i}"),
                Some(&alice_token),
                &content,
            )
            .await
            .ok();
        }
        // Images are re-encoded on upload (metadata stripped): same pixels, not the same bytes.
        let pixels = |bytes: &[u8]| image::load_from_memory(bytes).expect("decodes").to_rgb8();

        // Download both via authenticated media (as the uploader and as another user).
        for token in [&alice_token, &bob_token] {
            let r = http
                .get(&format!("/_matrix/client/v1/media/download/localhost/{png_id}"), Some(token))
                .await;
            assert_eq!(r.status, 200, "download png: {}", r.text());
            assert_eq!(pixels(&r.body), pixels(&png), "downloaded PNG differs from the upload");
            assert!(
                r.content_type().is_some_and(|c| c.starts_with("image/png")),
                "content-type {:?}",
                r.content_type()
            );
            let r = http
                .get(&format!("/_matrix/client/v1/media/download/localhost/{text_id}"), Some(token))
                .await;
            assert_eq!(r.status, 200, "download text: {}", r.text());
            assert_eq!(r.body, text, "downloaded text differs from the upload");
            assert!(
                r.content_type().is_some_and(|c| c.starts_with("text/plain")),
                "content-type {:?}",
                r.content_type()
            );
        }
        // With a file name in the path.
        let r = http
            .get(&format!("/_matrix/client/v1/media/download/localhost/{text_id}/renamed.txt"), Some(&bob_token))
            .await;
        assert_eq!(r.status, 200, "download with filename: {}", r.text());
        assert_eq!(r.body, text);
        if let Some(cd) = r.headers.get("content-disposition") {
            assert!(cd.to_str().unwrap().contains("renamed.txt"), "content-disposition {cd:?}");
        }

        // Via matrix-sdk's media API (uses the authenticated endpoints if /versions has v1.11).
        let got = bob
            .media()
            .get_media_content(
                &MediaRequestParameters { source: MediaSource::Plain(up.content_uri.clone()), format: MediaFormat::File },
                false,
            )
            .await
            .expect("matrix-sdk download");
        assert_eq!(pixels(&got), pixels(&png));

        // Authenticated media requires a token.
        http.get(&format!("/_matrix/client/v1/media/download/localhost/{png_id}"), None)
            .await
            .assert_error(401, &["M_MISSING_TOKEN"]);
        // Unknown media -> 404 M_NOT_FOUND.
        http.get("/_matrix/client/v1/media/download/localhost/doesNotExist123", Some(&bob_token))
            .await
            .assert_error(404, &["M_NOT_FOUND"]);

        // Thumbnail (scale): fits in the requested box, keeps the 2:1 aspect ratio.
        let r = http
            .get(
                &format!("/_matrix/client/v1/media/thumbnail/localhost/{png_id}?width=64&height=64&method=scale"),
                Some(&bob_token),
            )
            .await;
        assert_eq!(r.status, 200, "thumbnail: {}", r.text());
        assert!(r.content_type().is_some_and(|c| c.starts_with("image/")), "thumbnail content-type {:?}", r.content_type());
        let thumb = image::load_from_memory(&r.body).expect("thumbnail is a decodable image");
        let (w, h) = (thumb.width(), thumb.height());
        assert!(w > 0 && h > 0 && w <= 64 && h <= 64, "scale thumbnail {w}x{h} does not fit in 64x64");
        assert!((w as f64 / h as f64 - 2.0).abs() < 0.2, "scale thumbnail {w}x{h} lost the 2:1 aspect ratio");

        // Thumbnail (crop).
        let r = http
            .get(
                &format!("/_matrix/client/v1/media/thumbnail/localhost/{png_id}?width=32&height=32&method=crop"),
                Some(&bob_token),
            )
            .await;
        assert_eq!(r.status, 200, "crop thumbnail: {}", r.text());
        let thumb = image::load_from_memory(&r.body).expect("crop thumbnail decodes");
        let (w, h) = (thumb.width(), thumb.height());
        assert!(w > 0 && h > 0 && w <= 32 && h <= 32, "crop thumbnail {w}x{h} does not fit in 32x32");
        assert_eq!(w, h, "crop thumbnail of a square box must be square, got {w}x{h}");

        // Through matrix-sdk.
        let bytes = bob
            .media()
            .get_media_content(
                &MediaRequestParameters {
                    source: MediaSource::Plain(up.content_uri.clone()),
                    format: MediaFormat::Thumbnail(MediaThumbnailSettings::new(uint!(50), uint!(50))),
                },
                false,
            )
            .await
            .expect("matrix-sdk thumbnail");
        let thumb = image::load_from_memory(&bytes).expect("sdk thumbnail decodes");
        assert!(thumb.width() <= 50 && thumb.height() <= 50, "sdk thumbnail {}x{}", thumb.width(), thumb.height());

        // Thumbnails need a token as well.
        http.get(&format!("/_matrix/client/v1/media/thumbnail/localhost/{png_id}?width=64&height=64"), None)
            .await
            .assert_error(401, &["M_MISSING_TOKEN"]);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn media_config_and_upload_limit() {
    with_timeout(120, async {
        let server = TestServer::start_with(ServerOptions {
            max_upload_bytes: 100_000,
            ..Default::default()
        })
        .await;
        let (_, token) = server.http().register("alice", PASSWORD).await;
        let http = server.http();

        let cfg = http
            .get("/_matrix/client/v1/media/config", Some(&token))
            .await
            .ok();
        assert_eq!(cfg["m.upload.size"], 100_000, "media config: {cfg}");

        // Exactly at the limit is fine, one byte more is 413 M_TOO_LARGE.
        let r = http
            .request(
                "POST",
                "/_matrix/media/v3/upload",
                Some(&token),
                Some(("application/octet-stream", vec![7u8; 100_000])),
            )
            .await;
        assert_eq!(
            r.status,
            200,
            "upload of exactly max_upload_bytes: {}",
            r.text()
        );
        http.request(
            "POST",
            "/_matrix/media/v3/upload",
            Some(&token),
            Some(("application/octet-stream", vec![7u8; 100_001])),
        )
        .await
        .assert_error(413, &["M_TOO_LARGE"]);

        // Uploading requires a token.
        http.request(
            "POST",
            "/_matrix/media/v3/upload",
            None,
            Some(("text/plain", b"x".to_vec())),
        )
        .await
        .assert_error(401, &["M_MISSING_TOKEN"]);
    })
    .await;
}
