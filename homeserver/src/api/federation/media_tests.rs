//! Inbound federation media: `multipart/mixed` answers, and the clinical media rules with the
//! requesting server in the place of the user.

use ruma::api::IncomingResponseExt;
use ruma::api::federation::authenticated_media::{FileOrLocation, get_content};
use ruma::events::TimelineEventType;
use ruma::{OwnedMxcUri, OwnedUserId};
use serde_json::json;

use super::test_peer::{PEER, Peer, Reply, peer_user, room_with_peer, start};
use crate::service::test_util::{room, send, user};
use crate::service::users::test_login;

fn png(w: u32, h: u32) -> Vec<u8> {
    let img = image::RgbImage::from_fn(w, h, |x, y| image::Rgb([x as u8, y as u8, 7]));
    let mut out = std::io::Cursor::new(Vec::new());
    image::DynamicImage::ImageRgb8(img)
        .write_to(&mut out, image::ImageFormat::Png)
        .unwrap();
    out.into_inner()
}

/// The file part of a multipart answer, parsed as a requesting server would.
fn file_part(r: &Reply) -> (Vec<u8>, Option<String>) {
    let mut b = http::Response::builder().status(r.status);
    for (k, v) in &r.headers {
        b = b.header(k, v);
    }
    let res = b.body(r.body.as_slice()).unwrap();
    let parsed = get_content::v1::Response::try_from_http_response(res).expect("multipart/mixed");
    match parsed.content {
        FileOrLocation::File(f) => (f.file, f.content_type),
        other => panic!("not a file: {other:?}"),
    }
}

fn id(uri: &OwnedMxcUri) -> String {
    uri.media_id().unwrap().to_owned()
}

async fn upload(p: &Peer, who: &OwnedUserId, bytes: &[u8], ct: &str) -> OwnedMxcUri {
    p.services
        .media
        .upload(who, bytes.to_vec(), Some(ct.into()), None)
        .await
        .unwrap()
}

fn download(media_id: &str) -> String {
    format!("/_matrix/federation/v1/media/download/{media_id}")
}

fn assert_404(r: &Reply) {
    assert_eq!(
        (r.status, r.json()["errcode"].as_str()),
        (404, Some("M_NOT_FOUND")),
        "{:?}",
        String::from_utf8_lossy(&r.body)
    );
}

#[tokio::test]
async fn media_bound_to_a_room_goes_only_to_servers_in_that_room() {
    let p = start(|_| {}).await;
    let alice = user(&p.services, "alice").await;
    let shared = room_with_peer(&p.services, &alice, "Ward 7").await;
    let private = room(&p.services, &alice, "Private", false).await;

    let letter = upload(&p, &alice, b"discharge letter", "text/plain").await;
    let note = upload(&p, &alice, b"private note", "text/plain").await;
    for (room, uri) in [(&shared, &letter), (&private, &note)] {
        let content = json!({ "msgtype": "m.file", "body": "f.txt", "url": uri });
        send(
            &p.services,
            room,
            &alice,
            TimelineEventType::RoomMessage,
            content,
        )
        .await;
    }

    // In the room: a multipart answer with the file.
    let r = p.call("GET", &download(&id(&letter)), None).await;
    assert_eq!(r.status, 200, "{:?}", String::from_utf8_lossy(&r.body));
    assert!(
        r.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("multipart/mixed; boundary=")
    );
    let (bytes, ct) = file_part(&r);
    assert_eq!(bytes, b"discharge letter");
    assert_eq!(ct.as_deref(), Some("text/plain"));

    // Bound to a room the peer has no member in: 404, audited with the rule and the server.
    let r = p.call("GET", &download(&id(&note)), None).await;
    assert_404(&r);
    let audit = p.services.audit.all().await.unwrap();
    let d = audit
        .iter()
        .find(|e| e.rule.as_deref() == Some("media_not_in_your_rooms"))
        .expect("audited");
    assert_eq!(d.actor, PEER);
    assert_eq!(
        d.target.as_deref(),
        Some(format!("mxc://localhost/{}", id(&note)).as_str())
    );

    // When bob leaves, the peer loses access.
    (p.services.rooms)
        .leave(&shared, &peer_user(), None)
        .await
        .unwrap();
    assert_404(&p.call("GET", &download(&id(&letter)), None).await);
}

#[tokio::test]
async fn unbound_media_stays_home_except_encrypted_attachments_for_room_mates() {
    let p = start(|_| {}).await;
    let (session, _) = test_login(&p.services.users, "alice", "correct horse").await;
    let alice = session.user_id.clone();

    let photo = upload(&p, &alice, b"not sent anywhere", "text/plain").await;
    let cipher = upload(
        &p,
        &alice,
        b"\x00\x01ciphertext",
        "application/octet-stream",
    )
    .await;
    // Not sent anywhere, and the peer shares no room with alice yet: neither leaves.
    assert_404(&p.call("GET", &download(&id(&photo)), None).await);
    assert_404(&p.call("GET", &download(&id(&cipher)), None).await);

    // Once the peer has a member in a room with alice, her (unbindable) ciphertext is served,
    // but an unbound plain file still is not.
    room_with_peer(&p.services, &alice, "Ward 7").await;
    let r = p.call("GET", &download(&id(&cipher)), None).await;
    assert_eq!(r.status, 200);
    assert_eq!(file_part(&r).0, b"\x00\x01ciphertext");
    assert_404(&p.call("GET", &download(&id(&photo)), None).await);

    // A profile avatar is for everyone the profile is.
    let avatar = upload(&p, &alice, &png(8, 8), "image/png").await;
    p.services
        .accounts
        .set_avatar_url(&session, &alice, Some(avatar.clone()))
        .await
        .unwrap();
    let r = p.call("GET", &download(&id(&avatar)), None).await;
    assert_eq!(r.status, 200, "{:?}", String::from_utf8_lossy(&r.body));
}

#[tokio::test]
async fn thumbnails_unknown_and_quarantined_media() {
    let p = start(|c| {
        c.clinical_media.scanner_command = ["sh", "-c", "grep -q EICAR && exit 1 || exit 0"]
            .map(String::from)
            .to_vec();
    })
    .await;
    let alice = user(&p.services, "alice").await;
    let shared = room_with_peer(&p.services, &alice, "Ward 7").await;
    let img = upload(&p, &alice, &png(64, 48), "image/png").await;
    let content = json!({ "msgtype": "m.image", "body": "wound.png", "url": img });
    send(
        &p.services,
        &shared,
        &alice,
        TimelineEventType::RoomMessage,
        content,
    )
    .await;

    let r = p
        .call(
            "GET",
            &format!(
                "/_matrix/federation/v1/media/thumbnail/{}?width=32&height=32&method=scale",
                id(&img)
            ),
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", String::from_utf8_lossy(&r.body));
    let (bytes, ct) = file_part(&r);
    assert_eq!(ct.as_deref(), Some("image/png"));
    let thumb = image::load_from_memory(&bytes).unwrap();
    assert!(thumb.width() <= 32 && thumb.height() <= 32);

    assert_404(&p.call("GET", &download("doesNotExist123"), None).await);

    // A quarantined file is never served, even bound into the peer's room.
    let eicar = b"X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*";
    let (uri, _) = p.services.media.create_pending(&alice).unwrap();
    let content = json!({ "msgtype": "m.file", "body": "x.txt", "url": uri });
    send(
        &p.services,
        &shared,
        &alice,
        TimelineEventType::RoomMessage,
        content,
    )
    .await;
    let server = ruma::ServerName::parse("localhost").unwrap();
    let e = p
        .services
        .media
        .upload_pending(
            &alice,
            &server,
            &id(&uri),
            eicar.to_vec(),
            Some("text/plain".into()),
            None,
        )
        .await
        .unwrap_err();
    assert!(e.to_string().contains("media_quarantined"), "{e}");
    assert_404(&p.call("GET", &download(&id(&uri)), None).await);
    let audit = p.services.audit.all().await.unwrap();
    assert!(
        audit
            .iter()
            .any(|e| e.rule.as_deref() == Some("media_quarantined")
                && e.actor == PEER
                && e.action == "policy.denial")
    );
}
