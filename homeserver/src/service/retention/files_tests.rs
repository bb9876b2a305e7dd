//! Media files whose unlink fails are not forgotten: the id stays recorded as pending and every
//! purge retries it until the file is gone.

use super::tests::{DAY, Fx, thirty_days};

fn pending(f: &Fx) -> i64 {
    f.store
        .db
        .read(|c| {
            Ok(
                c.query_row("SELECT COUNT(*) FROM media_pending_deletion", [], |r| {
                    r.get(0)
                })?,
            )
        })
        .unwrap()
}

#[tokio::test]
async fn a_failed_unlink_is_retried_by_the_next_purge() {
    let f = Fx::new(thirty_days()).await;
    let media = f.image_message("MARKER-unlink").await;
    let original = f
        .media_files(&media)
        .into_iter()
        .find(|p| !p.to_string_lossy().contains("thumbnails"))
        .unwrap();
    // A directory in the file's place: unlink fails (as a read-only or failing disk would).
    std::fs::remove_file(&original).unwrap();
    std::fs::create_dir(&original).unwrap();
    std::fs::write(original.join("stuck"), b"x").unwrap();

    f.advance(31 * DAY);
    let r = f.retention.purge("test", false).await.unwrap();
    assert_eq!(r.media_unlink_failing, 1, "{r:?}");
    assert!(original.exists());
    assert_eq!(pending(&f), 1);
    // The row is gone all the same: the file is no longer served.
    assert!(
        f.s.media
            .references(&media)
            .await
            .unwrap()
            .uploader
            .is_none()
    );

    // The disk recovers (a left-over copy of the file is back in place): the next run unlinks it.
    std::fs::remove_dir_all(&original).unwrap();
    std::fs::write(&original, b"MARKER-left-over-bytes").unwrap();
    let r = f.retention.purge("test", false).await.unwrap();
    assert_eq!(
        (r.media_unlink_retried, r.media_unlink_failing),
        (1, 0),
        "{r:?}"
    );
    assert!(!original.exists());
    assert!(f.media_files(&media).is_empty());
    assert_eq!(pending(&f), 0);
    let audit = f.actions().await;
    assert!(audit.iter().any(|a| a == "retention.purge"));
}
