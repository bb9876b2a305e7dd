//! The clinical media rules end to end through the services: allowlist, magic bytes, per-type
//! caps, EXIF stripping, room binding and quarantine (docs/GOVERNANCE.md, "Clinical media").

use ruma::api::error::ErrorKind;
use ruma::events::TimelineEventType;
use ruma::{OwnedUserId, uint};
use serde_json::json;

use super::strip::tests::{contains, jpeg_with_gps};
use super::tests::{Fixture, WAIT, fixture_with, local, media_id, png};
use super::*;
use crate::service::test_util::{join, room, send, user};

const GPS: &[u8] = b"HANDOVER-GPS-MARKER";

fn message(e: &Error) -> String {
    match e {
        Error::Matrix { message, .. } => message.clone(),
        Error::Uiaa(_) => String::new(),
    }
}

fn status(e: &Error) -> StatusCode {
    match e {
        Error::Matrix { status, .. } => *status,
        Error::Uiaa(_) => StatusCode::UNAUTHORIZED,
    }
}

/// `(action, rule)` of every audit entry.
async fn audit(f: &Fixture) -> Vec<(String, Option<String>)> {
    let all = f.services.audit.all().await.unwrap();
    all.into_iter().map(|r| (r.action, r.rule)).collect()
}

async fn denied_with(f: &Fixture, rule: &str) -> bool {
    audit(f)
        .await
        .iter()
        .any(|(a, r)| a == "policy.denial" && r.as_deref() == Some(rule))
}

#[tokio::test]
async fn type_outside_the_allowlist_is_refused_and_audited() {
    let f = fixture_with(|_| {});
    let e = (f.media)
        .upload(
            &f.alice,
            b"<svg/>".to_vec(),
            Some("image/svg+xml".into()),
            None,
        )
        .await
        .unwrap_err();
    assert_eq!(e.kind(), Some(&ErrorKind::Forbidden));
    assert!(
        message(&e).contains("media_type_not_allowed"),
        "{}",
        message(&e)
    );
    assert!(denied_with(&f, "media_type_not_allowed").await);
    assert!(f.store.get_media("x").unwrap().is_none());
    // Parameters and case do not matter; the allowlist is configurable.
    (f.media)
        .upload(
            &f.alice,
            b"ok".to_vec(),
            Some("Text/Plain; charset=utf-8".into()),
            None,
        )
        .await
        .unwrap();
}

#[tokio::test]
async fn declared_type_must_match_the_bytes() {
    let f = fixture_with(|_| {});
    for (declared, bytes) in [
        ("image/png", b"just some text".to_vec()),
        ("image/jpeg", png(4, 4)),
        ("application/pdf", b"MZ\x90\x00 not a pdf".to_vec()),
        ("text/plain", png(4, 4)),
    ] {
        let e = (f.media)
            .upload(&f.alice, bytes, Some(declared.into()), None)
            .await
            .unwrap_err();
        assert_eq!(e.kind(), Some(&ErrorKind::Forbidden), "{declared}");
        assert!(message(&e).contains("media_type_mismatch"), "{declared}");
    }
    // A PNG signature over garbage is not a PNG either (it cannot be decoded and stripped).
    let mut corrupt = png(10, 10);
    corrupt.truncate(40);
    let e = (f.media)
        .upload(&f.alice, corrupt, Some("image/png".into()), None)
        .await
        .unwrap_err();
    assert!(message(&e).contains("media_type_mismatch"));
    (f.media)
        .upload(
            &f.alice,
            b"%PDF-1.7\n...".to_vec(),
            Some("application/pdf".into()),
            None,
        )
        .await
        .unwrap();
}

#[tokio::test]
async fn per_type_size_limit_is_413_naming_the_rule() {
    let f = fixture_with(|c| {
        c.clinical_media
            .max_bytes_by_type
            .insert("image/png".into(), 200);
    });
    let big = png(64, 64);
    assert!(big.len() > 200);
    let e = (f.media)
        .upload(&f.alice, big, Some("image/png".into()), None)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), Some(&ErrorKind::TooLarge));
    assert_eq!(status(&e), StatusCode::PAYLOAD_TOO_LARGE);
    assert!(message(&e).contains("media_too_large"));
    assert!(denied_with(&f, "media_too_large").await);
    // Other types are not capped by the PNG limit.
    (f.media)
        .upload(&f.alice, vec![7; 300], None, None)
        .await
        .unwrap();
}

#[tokio::test]
async fn exif_gps_is_stripped_before_storage_and_serving() {
    let f = fixture_with(|_| {});
    let src = jpeg_with_gps(40, 30);
    assert!(contains(&src, GPS));
    for declared in [Some("image/jpeg"), None] {
        let uri = (f.media)
            .upload(&f.alice, src.clone(), declared.map(Into::into), None)
            .await
            .unwrap();
        let id = media_id(&uri);
        let c = (f.media)
            .download(&f.alice, local(), &id, None, WAIT)
            .await
            .unwrap();
        assert!(!contains(&c.bytes, GPS) && !contains(&c.bytes, b"Exif"));
        let img = image::load_from_memory(&c.bytes).unwrap();
        assert_eq!((img.width(), img.height()), (40, 30));
        let on_disk = std::fs::read(f.media.files.original_path(&id)).unwrap();
        assert!(!contains(&on_disk, GPS));
        let rec = f.store.get_media(&id).unwrap().unwrap();
        assert_eq!(rec.size, c.bytes.len() as u64);
        let t = (f.media)
            .thumbnail(&f.alice, local(), &id, (uint!(16), uint!(16)), None, WAIT)
            .await
            .unwrap();
        assert!(!contains(&t.bytes, GPS));
    }
    // No file anywhere under the media directory kept the marker.
    for p in super::tests::files_under(&f.dir.path().join("media")) {
        assert!(
            !contains(&std::fs::read(&p).unwrap(), GPS),
            "{}",
            p.display()
        );
    }
}

#[tokio::test]
async fn encrypted_attachments_are_stored_as_sent() {
    let f = fixture_with(|_| {});
    let ciphertext: Vec<u8> = (0..=255u8).rev().cycle().take(1000).collect();
    let uri = (f.media)
        .upload(&f.alice, ciphertext.clone(), Some(OCTET.into()), None)
        .await
        .unwrap();
    let c = (f.media)
        .download(&f.alice, local(), &media_id(&uri), None, WAIT)
        .await
        .unwrap();
    assert_eq!(c.bytes, ciphertext);
}

const OCTET: &str = "application/octet-stream";

/// Alice and Bob share a room; Carol is in another room of her own.
async fn people(f: &Fixture) -> [(OwnedUserId, ruma::OwnedRoomId); 3] {
    let s = &f.services;
    let (alice, bob, carol) = (
        user(s, "alice").await,
        user(s, "bob").await,
        user(s, "carol").await,
    );
    let ward = room(s, &alice, "ward", false).await;
    join(s, &ward, &alice, &bob).await;
    let other = room(s, &carol, "other", false).await;
    [(alice, ward.clone()), (bob, ward), (carol, other)]
}

async fn fetch(f: &Fixture, who: &UserId, id: &str) -> Result<Content> {
    f.media.download(who, local(), id, None, WAIT).await
}

#[tokio::test]
async fn bound_media_is_served_to_room_members_only() {
    let f = fixture_with(|_| {});
    let [(alice, ward), (bob, _), (carol, other)] = people(&f).await;
    let uri = (f.media)
        .upload(&alice, png(20, 10), Some("image/png".into()), None)
        .await
        .unwrap();
    let id = media_id(&uri);
    // Unbound: only the uploader (not yet sent anywhere).
    fetch(&f, &alice, &id).await.unwrap();
    assert_eq!(
        fetch(&f, &bob, &id).await.unwrap_err().kind(),
        Some(&ErrorKind::NotFound)
    );

    // Carol links Alice's file in her own room: that binds nothing.
    let image = |uri: &OwnedMxcUri| json!({ "msgtype": "m.image", "body": "x.png", "url": uri });
    send(
        &f.services,
        &other,
        &carol,
        TimelineEventType::RoomMessage,
        image(&uri),
    )
    .await;
    assert!(f.store.media_access(&id).unwrap().bound_room.is_none());

    send(
        &f.services,
        &ward,
        &alice,
        TimelineEventType::RoomMessage,
        image(&uri),
    )
    .await;
    assert_eq!(
        f.store.media_access(&id).unwrap().bound_room.as_deref(),
        Some(ward.as_str())
    );
    fetch(&f, &bob, &id).await.unwrap();
    let e = fetch(&f, &carol, &id).await.unwrap_err();
    // Same answer as for media that does not exist; the rule is in the audit trail.
    assert_eq!(e.kind(), Some(&ErrorKind::NotFound));
    assert_eq!(message(&e), "Media not found");
    assert!(denied_with(&f, "media_not_in_your_rooms").await);
    let e = (f.media)
        .thumbnail(&carol, local(), &id, (uint!(8), uint!(8)), None, WAIT)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), Some(&ErrorKind::NotFound));

    // First binding wins: sending it into another room later changes nothing.
    let second = room(&f.services, &alice, "second", false).await;
    send(
        &f.services,
        &second,
        &alice,
        TimelineEventType::RoomMessage,
        image(&uri),
    )
    .await;
    assert_eq!(
        f.store.media_access(&id).unwrap().bound_room.as_deref(),
        Some(ward.as_str())
    );

    // Leaving the room ends access.
    f.services.rooms.leave(&ward, &bob, None).await.unwrap();
    assert_eq!(
        fetch(&f, &bob, &id).await.unwrap_err().kind(),
        Some(&ErrorKind::NotFound)
    );
}

#[tokio::test]
async fn unbound_encrypted_attachments_reach_room_mates_only() {
    let f = fixture_with(|_| {});
    let [(alice, ward), (bob, _), (carol, _)] = people(&f).await;
    let uri = (f.media)
        .upload(&alice, vec![0x42; 64], Some(OCTET.into()), None)
        .await
        .unwrap();
    let id = media_id(&uri);
    // The m.room.encrypted event hides the URL, so it never binds; room-mates still fetch it.
    let enc = json!({ "algorithm": "m.megolm.v1.aes-sha2", "ciphertext": "AwgA", "sender_key": "k",
                      "session_id": "s", "device_id": "D" });
    send(
        &f.services,
        &ward,
        &alice,
        TimelineEventType::RoomEncrypted,
        enc,
    )
    .await;
    fetch(&f, &bob, &id).await.unwrap();
    assert_eq!(
        fetch(&f, &carol, &id).await.unwrap_err().kind(),
        Some(&ErrorKind::NotFound)
    );
}

#[tokio::test]
async fn scanner_findings_are_quarantined_never_served_and_audited() {
    let f = fixture_with(|c| {
        c.clinical_media.scanner_command = ["sh", "-c", "grep -q EICAR && exit 1 || exit 0"]
            .map(String::from)
            .to_vec();
    });
    let clean = (f.media)
        .upload(
            &f.alice,
            b"discharge summary".to_vec(),
            Some("text/plain".into()),
            None,
        )
        .await
        .unwrap();
    fetch(&f, &f.alice, &media_id(&clean)).await.unwrap();

    let eicar = b"X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*".to_vec();
    let e = (f.media)
        .upload(&f.alice, eicar.clone(), Some("text/plain".into()), None)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), Some(&ErrorKind::Forbidden));
    assert!(message(&e).contains("media_quarantined"));

    // Kept for the IG lead (file and row, flagged) ...
    let id: String = f
        .store
        .db
        .read(|c| Ok(c.query_row("SELECT media_id FROM media_quarantine", [], |r| r.get(0))?))
        .unwrap();
    assert!(f.store.media_access(&id).unwrap().quarantined);
    assert_eq!(
        std::fs::read(f.media.files.original_path(&id)).unwrap(),
        eicar
    );
    // ... never served, not even to the uploader, nor as a thumbnail ...
    assert_eq!(
        fetch(&f, &f.alice, &id).await.unwrap_err().kind(),
        Some(&ErrorKind::NotFound)
    );
    let e = (f.media)
        .thumbnail(&f.alice, local(), &id, (uint!(8), uint!(8)), None, WAIT)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), Some(&ErrorKind::NotFound));
    // ... and audited.
    let entries = audit(&f).await;
    assert!(entries.contains(&("media.quarantine".into(), Some("media_quarantined".into()))));
    assert!(denied_with(&f, "media_quarantined").await);
}

#[tokio::test]
async fn profile_avatars_are_readable_by_everyone_signed_in() {
    let f = fixture_with(|_| {});
    let [(alice, _), (_, _), (carol, _)] = people(&f).await;
    let uri = (f.media)
        .upload(&alice, png(8, 8), Some("image/png".into()), None)
        .await
        .unwrap();
    let id = media_id(&uri);
    assert!(fetch(&f, &carol, &id).await.is_err());
    let binder = MediaBinder::new(local().to_owned(), f.store.clone());
    binder.bind_profile(&alice, &uri).await;
    fetch(&f, &carol, &id).await.unwrap();
}

#[tokio::test]
async fn stripping_is_refused_with_429_when_every_decode_slot_is_busy() {
    let f = fixture_with(|_| {});
    // Every slot held, as by thumbnails or other uploads being decoded.
    let held = f
        .media
        .thumbnailing
        .acquire_many(THUMBNAIL_CONCURRENCY as u32)
        .await
        .unwrap();
    let e = (f.media)
        .upload(
            &f.alice,
            jpeg_with_gps(40, 30),
            Some("image/jpeg".into()),
            None,
        )
        .await
        .unwrap_err();
    assert_eq!(status(&e), StatusCode::TOO_MANY_REQUESTS);
    assert!(matches!(e.kind(), Some(ErrorKind::LimitExceeded(d)) if d.retry_after.is_some()));
    drop(held);
    (f.media)
        .upload(
            &f.alice,
            jpeg_with_gps(40, 30),
            Some("image/jpeg".into()),
            None,
        )
        .await
        .unwrap();
}
