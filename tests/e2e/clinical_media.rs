//! Clinical media rules through the real binary (docs/GOVERNANCE.md, "Clinical media"): the
//! type allowlist, magic bytes, per-type caps, EXIF stripping, the malware scanner hook, room
//! binding (including files swapped in by an edit), no URL previews.

use handover_e2e::*;

const GPS_MARKER: &[u8] = b"HANDOVER-E2E-GPS-51.5072N";

fn png(w: u32, h: u32) -> Vec<u8> {
    let img = image::RgbImage::from_fn(w, h, |x, y| image::Rgb([x as u8, y as u8, 7]));
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

/// A JPEG carrying an EXIF (APP1) segment with a GPS-like marker.
fn jpeg_with_gps() -> Vec<u8> {
    let img = image::RgbImage::from_fn(48, 32, |x, y| image::Rgb([x as u8, y as u8, 90]));
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Jpeg).unwrap();
    let jpeg = out.into_inner();
    let mut payload = b"Exif\0\0II*\0\x08\0\0\0GPSInfo ".to_vec();
    payload.extend_from_slice(GPS_MARKER);
    let mut with = jpeg[..2].to_vec();
    with.extend_from_slice(&[0xFF, 0xE1]);
    with.extend_from_slice(&((payload.len() + 2) as u16).to_be_bytes());
    with.extend_from_slice(&payload);
    with.extend_from_slice(&jpeg[2..]);
    with
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

async fn upload(http: &Http, token: &str, content_type: &str, bytes: Vec<u8>) -> Resp {
    http.request(
        "POST",
        "/_matrix/media/v3/upload",
        Some(token),
        Some((content_type, bytes)),
    )
    .await
}

fn media_id(r: &Resp) -> String {
    let uri = r.ok()["content_uri"]
        .as_str()
        .expect("content_uri")
        .to_owned();
    uri.rsplit('/').next().unwrap().to_owned()
}

fn download(id: &str) -> String {
    format!("/_matrix/client/v1/media/download/localhost/{id}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_pass_the_allowlist_magic_bytes_caps_scanner_and_stripping() {
    with_timeout(120, async {
        let server = TestServer::start_with(ServerOptions {
            extra_toml:
                "[clinical_media]\nscanner_command = [\"sh\", \"-c\", \"! grep -q EICAR\"]\n\
                         [clinical_media.max_bytes_by_type]\n\"text/plain\" = 64\n"
                    .into(),
            ..ServerOptions::default()
        })
        .await;
        let http = server.http();
        let (_, token) = http.register("alice", PASSWORD).await;

        upload(
            &http,
            &token,
            "image/svg+xml",
            b"<svg onload=alert(1)/>".to_vec(),
        )
        .await
        .assert_rule(403, "M_FORBIDDEN", "media_type_not_allowed");
        upload(&http, &token, "image/png", b"MZ not really a png".to_vec())
            .await
            .assert_rule(403, "M_FORBIDDEN", "media_type_mismatch");
        upload(&http, &token, "text/plain", vec![b'a'; 65])
            .await
            .assert_rule(413, "M_TOO_LARGE", "media_too_large");
        upload(
            &http,
            &token,
            "text/plain",
            b"X5O EICAR-STANDARD-ANTIVIRUS-TEST-FILE".to_vec(),
        )
        .await
        .assert_rule(403, "M_FORBIDDEN", "media_quarantined");
        let clean = upload(&http, &token, "text/plain", b"handover notes".to_vec()).await;
        media_id(&clean);

        // EXIF (GPS, device) never reaches disk or other users: the image is re-encoded.
        let src = jpeg_with_gps();
        assert!(contains(&src, GPS_MARKER));
        let id = media_id(&upload(&http, &token, "image/jpeg", src).await);
        let got = http.get(&download(&id), Some(&token)).await;
        assert_eq!(got.status, 200);
        assert!(!contains(&got.body, GPS_MARKER), "EXIF survived the upload");
        assert!(!contains(&got.body, b"Exif"));
        assert_eq!(
            image::load_from_memory(&got.body)
                .expect("still an image")
                .width(),
            48
        );
        let on_disk = walk(&server.data_dir().join("media"))
            .into_iter()
            .any(|p| contains(&std::fs::read(p).unwrap_or_default(), GPS_MARKER));
        assert!(!on_disk, "the GPS marker is on disk");

        // No URL previews: the server fetches no web page on a user's behalf. (Other servers'
        // media belongs to federation and its tests.)
        http.get(
            "/_matrix/client/v1/media/preview_url?url=https%3A%2F%2Fexample.org",
            Some(&token),
        )
        .await
        .assert_rule(403, "M_FORBIDDEN", "url_previews_off");
    })
    .await;
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = vec![];
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_are_served_only_to_members_of_the_room_they_were_sent_in() {
    with_timeout(120, async {
        let server = TestServer::start().await;
        let http = server.http();
        let (_, a) = http.register("alice", PASSWORD).await;
        let (bob, b) = http.register("bob", PASSWORD).await;
        let (_, c) = http.register("carol", PASSWORD).await;
        let room = http.create_room(&a, &json!({ "preset": "public_chat", "invite": [bob] })).await;
        http.post_json(&format!("/_matrix/client/v3/join/{}", enc(&room)), Some(&b), &json!({}))
            .await
            .ok();
        let send = |txn: &'static str, content: serde_json::Value| {
            let (http, room, a) = (http.clone(), room.clone(), a.clone());
            async move {
                http.put_json(
                    &format!("/_matrix/client/v3/rooms/{}/send/m.room.message/{txn}", enc(&room)),
                    Some(&a),
                    &content,
                )
                .await
                .ok()["event_id"]
                    .as_str()
                    .unwrap()
                    .to_owned()
            }
        };

        let first = media_id(&upload(&http, &a, "image/png", png(16, 16)).await);
        // Before it is sent anywhere, only the uploader may fetch it.
        http.get(&download(&first), Some(&b)).await.assert_error(404, &["M_NOT_FOUND"]);
        let original = send("img", json!({ "msgtype": "m.image", "body": "wound day 1", "url": format!("mxc://localhost/{first}") })).await;
        assert_eq!(http.get(&download(&first), Some(&b)).await.status, 200);
        // Not a member of that room: the same 404 as for a file that does not exist.
        http.get(&download(&first), Some(&c)).await.assert_error(404, &["M_NOT_FOUND"]);

        // An edit that swaps the picture binds the new file to the room as well.
        let second = media_id(&upload(&http, &a, "image/png", png(20, 20)).await);
        http.get(&download(&second), Some(&b)).await.assert_error(404, &["M_NOT_FOUND"]);
        send("edit", json!({
            "msgtype": "m.text", "body": "* corrected photo",
            "m.new_content": { "msgtype": "m.image", "body": "wound day 1", "url": format!("mxc://localhost/{second}") },
            "m.relates_to": { "rel_type": "m.replace", "event_id": original },
        }))
        .await;
        assert_eq!(http.get(&download(&second), Some(&b)).await.status, 200);
        http.get(&download(&second), Some(&c)).await.assert_error(404, &["M_NOT_FOUND"]);
        let thumb = format!("/_matrix/client/v1/media/thumbnail/localhost/{second}?width=8&height=8");
        http.get(&thumb, Some(&c)).await.assert_error(404, &["M_NOT_FOUND"]);

        // Leaving the room ends access.
        http.post_json(&format!("/_matrix/client/v3/rooms/{}/leave", enc(&room)), Some(&b), &json!({}))
            .await
            .ok();
        http.get(&download(&first), Some(&b)).await.assert_error(404, &["M_NOT_FOUND"]);
        http.get(&download(&second), Some(&b)).await.assert_error(404, &["M_NOT_FOUND"]);
        assert_eq!(http.get(&download(&first), Some(&a)).await.status, 200);
    })
    .await;
}
