//! Service tests on a real SQLite store and a temp media directory.

use std::io::Cursor;
use std::path::Path;

use image::{DynamicImage, ImageFormat};
use ruma::api::error::ErrorKind;
use ruma::{OwnedUserId, ServerName, uint};

use super::*;
use crate::store::sqlite::SqliteStore;

pub(super) struct Fixture {
    pub dir: tempfile::TempDir,
    pub store: Arc<SqliteStore>,
    pub services: crate::service::Services,
    pub media: Arc<MediaService>,
    pub alice: OwnedUserId,
}

fn fixture(max_upload_bytes: u64) -> Fixture {
    fixture_with(|c| c.media.max_upload_bytes = max_upload_bytes)
}

/// Every service (clinical media rules from `config.clinical_media`) on a fresh store.
pub(super) fn fixture_with(edit: impl FnOnce(&mut Config)) -> Fixture {
    let (store, dir) = crate::store::sqlite::test_store();
    let mut config = Config {
        data_dir: dir.path().to_owned(),
        ..Config::default()
    };
    edit(&mut config);
    let policy = Arc::new(handover_policy::AllowAll);
    let services = crate::service::Services::build(config, store.clone(), policy).unwrap();
    Fixture {
        dir,
        store: Arc::new(store),
        media: services.media.clone(),
        services,
        alice: "@alice:localhost".try_into().unwrap(),
    }
}

pub(super) fn local() -> &'static ServerName {
    ruma::server_name!("localhost")
}

pub(super) fn media_id(uri: &OwnedMxcUri) -> String {
    uri.media_id().unwrap().to_owned()
}

pub(super) fn png(w: u32, h: u32) -> Vec<u8> {
    let img = image::RgbImage::from_fn(w, h, |x, y| image::Rgb([x as u8, y as u8, (x ^ y) as u8]));
    let mut out = Cursor::new(Vec::new());
    DynamicImage::ImageRgb8(img)
        .write_to(&mut out, ImageFormat::Png)
        .unwrap();
    out.into_inner()
}

fn decoded_size(bytes: &[u8]) -> (u32, u32) {
    let img = image::load_from_memory(bytes).unwrap();
    (img.width(), img.height())
}

/// Every regular file under `dir` (recursively).
pub(super) fn files_under(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = vec![];
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(files_under(&p));
        } else {
            out.push(p);
        }
    }
    out
}

fn media_rows(store: &SqliteStore) -> i64 {
    store
        .db
        .read(|c| Ok(c.query_row("SELECT COUNT(*) FROM media", [], |r| r.get(0))?))
        .unwrap()
}

pub(super) const WAIT: Duration = Duration::from_millis(50);

#[tokio::test]
async fn upload_then_download_round_trips() {
    let f = fixture(1 << 20);
    let body = b"clinic letter \x00\xff".to_vec();
    let uri = f
        .media
        .upload(
            &f.alice,
            body.clone(),
            Some("text/plain".into()),
            Some("letter.txt".into()),
        )
        .await
        .unwrap();
    assert_eq!(uri.server_name().unwrap().as_str(), "localhost");
    let id = media_id(&uri);
    assert!(id.len() >= 24 && is_valid_media_id(&id), "{id}");

    let c = f
        .media
        .download(&f.alice, local(), &id, None, WAIT)
        .await
        .unwrap();
    assert_eq!(c.bytes, body);
    assert_eq!(c.content_type, "text/plain");
    assert_eq!(c.disposition.to_string(), "inline; filename=letter.txt");
    // The path's file name overrides the uploaded one.
    let c = f
        .media
        .download(&f.alice, local(), &id, Some("other.txt".into()), WAIT)
        .await
        .unwrap();
    assert_eq!(c.disposition.filename.as_deref(), Some("other.txt"));

    let rec = f.store.get_media(&id).unwrap().unwrap();
    assert_eq!(rec.uploader, f.alice);
    assert_eq!(rec.size, body.len() as u64);
    assert_eq!(rec.sha256, sha256_hex(&body));
    assert_eq!(rec.sha256.len(), 64);
    let on_disk = f
        .dir
        .path()
        .join("media")
        .join(&id[0..2])
        .join(&id[2..4])
        .join(&id);
    assert_eq!(std::fs::read(on_disk).unwrap(), body);
}

#[tokio::test]
async fn no_content_type_is_octet_stream_attachment() {
    let f = fixture(1 << 20);
    let uri = f
        .media
        .upload(
            &f.alice,
            b"<html>".to_vec(),
            Some(String::new()),
            Some(String::new()),
        )
        .await
        .unwrap();
    let c = f
        .media
        .download(&f.alice, local(), &media_id(&uri), None, WAIT)
        .await
        .unwrap();
    assert_eq!(c.content_type, "application/octet-stream");
    assert_eq!(c.disposition.to_string(), "attachment");
}

#[tokio::test]
async fn too_large_upload_stores_nothing() {
    let f = fixture(10);
    f.media
        .upload(&f.alice, vec![1; 10], None, None)
        .await
        .unwrap();
    let before = files_under(&f.dir.path().join("media"));
    let e = f
        .media
        .upload(&f.alice, vec![1; 11], None, None)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), Some(&ErrorKind::TooLarge));
    assert!(matches!(e, Error::Matrix { status, .. } if status == StatusCode::PAYLOAD_TOO_LARGE));
    assert_eq!(files_under(&f.dir.path().join("media")), before);
    assert_eq!(media_rows(&f.store), 1);
}

#[tokio::test]
async fn unknown_and_malformed_ids_are_not_found() {
    let f = fixture(1 << 20);
    f.media
        .upload(&f.alice, b"x".to_vec(), None, None)
        .await
        .unwrap();
    for id in ["doesNotExist123", "../../t.db"] {
        let e = f
            .media
            .download(&f.alice, local(), id, None, WAIT)
            .await
            .unwrap_err();
        assert_eq!(e.kind(), Some(&ErrorKind::NotFound), "{id}");
    }
    // Another server's media is asked of it over federation: remote_tests.rs.
    assert_eq!(
        f.media.unauthenticated_media_frozen().kind(),
        Some(&ErrorKind::NotFound)
    );
}

#[tokio::test]
async fn thumbnails_scale_and_crop_to_real_dimensions() {
    let f = fixture(1 << 20);
    let uri = f
        .media
        .upload(&f.alice, png(300, 200), Some("image/png".into()), None)
        .await
        .unwrap();
    let id = media_id(&uri);
    let scale = ruma::media::Method::Scale;
    let t = f
        .media
        .thumbnail(
            &f.alice,
            local(),
            &id,
            (uint!(100), uint!(100)),
            Some(&scale),
            WAIT,
        )
        .await
        .unwrap();
    assert_eq!(t.content_type, "image/png");
    assert_eq!(t.disposition.to_string(), "inline; filename=thumbnail.png");
    assert_eq!(decoded_size(&t.bytes), (100, 67));

    let crop = ruma::media::Method::Crop;
    let t = f
        .media
        .thumbnail(
            &f.alice,
            local(),
            &id,
            (uint!(100), uint!(100)),
            Some(&crop),
            WAIT,
        )
        .await
        .unwrap();
    assert_eq!(decoded_size(&t.bytes), (100, 100));

    // Never upscaled; capped at max_thumbnail_size (800) keeping the box's aspect.
    let t = f
        .media
        .thumbnail(
            &f.alice,
            local(),
            &id,
            (uint!(1000), uint!(1000)),
            None,
            WAIT,
        )
        .await
        .unwrap();
    assert_eq!(decoded_size(&t.bytes), (300, 200));
    assert!(
        f.store
            .get_thumbnail(&id, 800, 800, "scale")
            .unwrap()
            .is_some()
    );
}

#[tokio::test]
async fn second_thumbnail_request_is_served_from_cache() {
    let f = fixture(1 << 20);
    let uri = f
        .media
        .upload(&f.alice, png(300, 200), None, None)
        .await
        .unwrap();
    let id = media_id(&uri);
    let crop = ruma::media::Method::Crop;
    let first = f
        .media
        .thumbnail(
            &f.alice,
            local(),
            &id,
            (uint!(32), uint!(32)),
            Some(&crop),
            WAIT,
        )
        .await
        .unwrap();
    let row = f.store.get_thumbnail(&id, 32, 32, "crop").unwrap().unwrap();
    assert_eq!(row.size, first.bytes.len() as u64);
    assert_eq!(row.content_type, "image/png");
    let path = f.media.files.thumbnail_path(&id, "32x32-crop");
    assert_eq!(std::fs::read(&path).unwrap(), first.bytes);

    // Replace the cached file: the next answer must be that file, not a fresh rendering.
    let marker = png(5, 5);
    std::fs::write(&path, &marker).unwrap();
    let second = f
        .media
        .thumbnail(
            &f.alice,
            local(),
            &id,
            (uint!(32), uint!(32)),
            Some(&crop),
            WAIT,
        )
        .await
        .unwrap();
    assert_eq!(second.bytes, marker);

    // A row whose file went missing is regenerated rather than failing.
    std::fs::remove_file(&path).unwrap();
    let third = f
        .media
        .thumbnail(
            &f.alice,
            local(),
            &id,
            (uint!(32), uint!(32)),
            Some(&crop),
            WAIT,
        )
        .await
        .unwrap();
    assert_eq!(decoded_size(&third.bytes), (32, 32));
}

#[tokio::test]
async fn thumbnail_errors_follow_the_spec() {
    let f = fixture(1 << 20);
    let text = f
        .media
        .upload(
            &f.alice,
            b"not an image".to_vec(),
            Some("text/plain".into()),
            None,
        )
        .await
        .unwrap();
    let e = f
        .media
        .thumbnail(
            &f.alice,
            local(),
            &media_id(&text),
            (uint!(32), uint!(32)),
            None,
            WAIT,
        )
        .await
        .unwrap_err();
    assert_eq!(e.kind(), Some(&ErrorKind::Unknown));
    assert!(matches!(e, Error::Matrix { status, .. } if status == StatusCode::BAD_REQUEST));

    // A small file declaring a huge image: 413 at upload (metadata stripping decodes it with
    // the thumbnailer's limits), nothing decoded or stored.
    let bomb = png(resize::MAX_SOURCE_DIMENSION + 1, 1);
    let e = f
        .media
        .upload(&f.alice, bomb, None, None)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), Some(&ErrorKind::TooLarge));
    assert_eq!(media_rows(&f.store), 1);

    let e = f
        .media
        .thumbnail(
            &f.alice,
            local(),
            &media_id(&text),
            (uint!(0), uint!(32)),
            None,
            WAIT,
        )
        .await
        .unwrap_err();
    assert_eq!(e.kind(), Some(&ErrorKind::InvalidParam));
}

#[tokio::test]
async fn async_upload_create_then_put() {
    let f = Arc::new(fixture(1 << 20));
    let bob: OwnedUserId = "@bob:localhost".try_into().unwrap();
    let (uri, expires) = f.media.create_pending(&f.alice).unwrap();
    assert!(u64::from(expires.0) as i64 > now_ms());
    let id = media_id(&uri);

    // Not there yet: waits, then 504 M_NOT_YET_UPLOADED.
    let e = f
        .media
        .download(&f.alice, local(), &id, None, WAIT)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), Some(&ErrorKind::NotYetUploaded));

    // Only the creator may upload.
    let e = f
        .media
        .upload_pending(&bob, local(), &id, b"x".to_vec(), None, None)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), Some(&ErrorKind::Forbidden));

    // A download already waiting gets the content as soon as it arrives.
    let waiter = {
        let (f, id) = (f.clone(), id.clone());
        tokio::spawn(async move {
            f.media
                .download(&f.alice, local(), &id, None, Duration::from_secs(10))
                .await
        })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    f.media
        .upload_pending(
            &f.alice,
            local(),
            &id,
            b"later".to_vec(),
            Some("text/plain".into()),
            None,
        )
        .await
        .unwrap();
    assert_eq!(waiter.await.unwrap().unwrap().bytes, b"later");

    let e = f
        .media
        .upload_pending(&f.alice, local(), &id, b"again".to_vec(), None, None)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), Some(&ErrorKind::CannotOverwriteMedia));
    let e = f
        .media
        .upload_pending(&f.alice, local(), "neverCreated", b"x".to_vec(), None, None)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), Some(&ErrorKind::NotFound));
}
