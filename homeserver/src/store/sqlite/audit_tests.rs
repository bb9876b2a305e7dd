//! Tampering with the stored trail, as someone with the database file could: each edit is named
//! by `verify` at exactly the row touched.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use handover_compliance::Outcome;
use rusqlite::Connection;

use crate::service::audit::{AuditService, entry};
use crate::store::sqlite::{SqliteStore, test_store};

async fn service_with_entries(n: usize) -> (AuditService, PathBuf, tempfile::TempDir) {
    let (store, dir) = test_store();
    let audit = AuditService::new(Arc::new(store));
    for i in 0..n {
        let e = entry("@alice:localhost", "login", Outcome::Success);
        audit
            .record(e.detail("ip", format!("10.0.0.{i}")))
            .await
            .unwrap();
    }
    let path = dir.path().join("test.db");
    (audit, path, dir)
}

/// A standalone copy of the live database with `sql` applied (the append-only triggers dropped
/// first, as an attacker would), verified through a fresh service.
async fn verify_tampered(src: &Path, name: &str, sql: &str) -> Result<u64, (i64, String)> {
    let copy = src.with_file_name(name);
    let conn = Connection::open(src).unwrap();
    conn.execute("VACUUM INTO ?1", [copy.to_str().unwrap()])
        .unwrap();
    let conn = Connection::open(&copy).unwrap();
    conn.execute_batch("DROP TRIGGER audit_log_no_update; DROP TRIGGER audit_log_no_delete;")
        .unwrap();
    conn.execute_batch(sql).unwrap();
    drop(conn);
    let audit = AuditService::new(Arc::new(SqliteStore::open(&copy, 1).unwrap()));
    match audit.verify().await.unwrap() {
        Ok(s) => Ok(s.entries),
        Err(b) => Err((b.seq, b.reason)),
    }
}

#[tokio::test]
async fn intact_trail_verifies() {
    let (audit, path, _d) = service_with_entries(6).await;
    let status = audit.verify().await.unwrap().unwrap();
    assert_eq!(status.entries, 6);
    assert_eq!(verify_tampered(&path, "same.db", "").await, Ok(6));
    let all = audit.all().await.unwrap();
    assert_eq!(
        all.iter().map(|r| r.seq).collect::<Vec<_>>(),
        [1, 2, 3, 4, 5, 6]
    );
    assert_eq!(all[1].prev_hash, all[0].hash);
}

#[tokio::test]
async fn edited_row_is_named() {
    let (_a, path, _d) = service_with_entries(6).await;
    let sql = r#"UPDATE audit_log SET details = '{"ip":"6.6.6.6"}' WHERE seq = 4"#;
    let (seq, reason) = verify_tampered(&path, "edit.db", sql).await.unwrap_err();
    assert_eq!(seq, 4, "{reason}");
    assert!(reason.contains("edited"), "{reason}");
    let sql = "UPDATE audit_log SET outcome = 'won' WHERE seq = 2";
    assert_eq!(verify_tampered(&path, "o.db", sql).await.unwrap_err().0, 2);
}

#[tokio::test]
async fn deleted_row_is_named() {
    let (_a, path, _d) = service_with_entries(6).await;
    let sql = "DELETE FROM audit_log WHERE seq = 3";
    let (seq, reason) = verify_tampered(&path, "del.db", sql).await.unwrap_err();
    assert_eq!(seq, 3, "{reason}");
    assert!(reason.contains("missing"), "{reason}");
}

#[tokio::test]
async fn swapped_rows_are_named() {
    let (_a, path, _d) = service_with_entries(6).await;
    let sql = "UPDATE audit_log SET seq = -1 WHERE seq = 2;
               UPDATE audit_log SET seq = 2 WHERE seq = 5;
               UPDATE audit_log SET seq = 5 WHERE seq = -1;";
    let (seq, reason) = verify_tampered(&path, "swap.db", sql).await.unwrap_err();
    assert_eq!(seq, 2, "{reason}");
}

#[tokio::test]
async fn the_database_refuses_updates_and_deletes() {
    let (_a, path, _d) = service_with_entries(2).await;
    let conn = Connection::open(&path).unwrap();
    let err = conn
        .execute("UPDATE audit_log SET actor = 'x' WHERE seq = 1", [])
        .unwrap_err();
    assert!(err.to_string().contains("append-only"), "{err}");
    assert!(conn.execute("DELETE FROM audit_log", []).is_err());
}

#[tokio::test]
async fn concurrent_appends_never_fork() {
    let (store, _d) = test_store();
    let audit = Arc::new(AuditService::new(Arc::new(store)));
    let tasks: Vec<_> = (0..40)
        .map(|i| {
            let a = audit.clone();
            tokio::spawn(async move {
                a.record(entry(&format!("@u{i}:x"), "login", Outcome::Failure))
                    .await
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    assert_eq!(audit.verify().await.unwrap().unwrap().entries, 40);
}

#[tokio::test]
async fn export_range_is_half_open() {
    let (store, _d) = test_store();
    let audit = AuditService::new(Arc::new(store));
    for ts in [100, 200, 300] {
        let mut e = entry("@a:x", "login", Outcome::Success);
        e.ts = ts;
        audit.record(e).await.unwrap();
    }
    let page = audit.page_between(100, 300, 0).await.unwrap();
    assert_eq!(page.iter().map(|r| r.ts).collect::<Vec<_>>(), [100, 200]);
    assert_eq!(audit.page_between(100, 300, 1).await.unwrap().len(), 1);
}

/// A signing service (checkpoint every `every` entries, optional external file) with `n` entries.
async fn signed_service(
    dir: &Path,
    every: u64,
    file: Option<PathBuf>,
    n: usize,
) -> (AuditService, PathBuf) {
    let path = dir.join("signed.db");
    let store = SqliteStore::open(&path, 1).unwrap();
    let keys = crate::service::audit_checkpoint::load_or_generate(dir).unwrap();
    let cfg = crate::config::AuditConfig {
        checkpoint_every: every,
        checkpoint_file: file,
        ..Default::default()
    };
    let audit = AuditService::signing(Arc::new(store), keys, &cfg).unwrap();
    for i in 0..n {
        let e = entry(&format!("@u{i}:x"), "login", Outcome::Success);
        audit.record(e).await.unwrap();
    }
    (audit, path)
}

/// Edits entry `seq` and rehashes every entry after it, as an insider with the database could:
/// the keyless chain verifies again.
fn rewrite_and_rehash(path: &Path, seq: i64) {
    use handover_compliance::seal;
    let conn = Connection::open(path).unwrap();
    conn.execute_batch("DROP TRIGGER audit_log_no_update;")
        .unwrap();
    let store = SqliteStore::open(path, 1).unwrap();
    let all = crate::store::audit::AuditStore::read_after(&store, 0, 1000).unwrap();
    let mut prev = all[(seq - 2) as usize].hash.clone();
    for r in all.iter().filter(|r| r.seq >= seq) {
        let mut e = handover_compliance::NewEntry::new(r.ts, &r.actor, &r.action, r.outcome);
        if r.seq == seq {
            e.actor = "@mallory:x".into();
        }
        let new = seal(e, r.seq, &prev);
        conn.execute(
            "UPDATE audit_log SET actor = ?1, prev_hash = ?2, hash = ?3 WHERE seq = ?4",
            rusqlite::params![new.actor, new.prev_hash, new.hash, new.seq],
        )
        .unwrap();
        prev = new.hash;
    }
}

#[tokio::test]
async fn a_rehashed_chain_fails_at_the_signed_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let (audit, path) = signed_service(dir.path(), 4, None, 10).await;
    let ok = audit.verify().await.unwrap().unwrap();
    assert_eq!(
        (ok.checkpoints, ok.last_checkpoint_seq, ok.unsigned_tail),
        (2, 8, 2)
    );
    rewrite_and_rehash(&path, 3);
    let b = audit.verify().await.unwrap().unwrap_err();
    assert!(b.checkpoint, "{b}");
    assert_eq!(b.seq, 4, "{b}");
    assert!(b.to_string().contains("audit checkpoint at seq 4"), "{b}");
}

#[tokio::test]
async fn the_external_file_catches_deleted_checkpoints_and_a_truncated_tail() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("cp.jsonl");
    let (audit, path) = signed_service(dir.path(), 3, Some(file.clone()), 7).await;
    assert_eq!(std::fs::read_to_string(&file).unwrap().lines().count(), 2);
    let conn = Connection::open(&path).unwrap();
    conn.execute_batch(
        "DROP TRIGGER audit_checkpoints_no_delete; DELETE FROM audit_checkpoints;
         DROP TRIGGER audit_log_no_delete; DELETE FROM audit_log WHERE seq > 4;",
    )
    .unwrap();
    let b = audit.verify().await.unwrap().unwrap_err();
    assert_eq!(b.seq, 6, "{b}");
    assert!(b.reason.contains("removed"), "{b}");
}

#[tokio::test]
async fn a_checkpoint_from_another_key_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (_audit, path) = signed_service(dir.path(), 2, None, 2).await;
    let other = tempfile::tempdir().unwrap();
    let key = crate::service::audit_checkpoint::load_or_generate(other.path()).unwrap();
    let mut public = crate::service::audit_checkpoint::AuditPublicKey::of(&key);
    let store = Arc::new(SqliteStore::open(&path, 1).unwrap());
    let cfg = crate::config::AuditConfig::default();
    let audit = AuditService::verifying(store.clone(), Some(public.clone()), &cfg);
    assert!(audit.verify().await.unwrap().unwrap_err().checkpoint);
    // Same key id, other key: the signature itself fails.
    let mine = crate::service::audit_checkpoint::stored_public_key(dir.path())
        .unwrap()
        .unwrap();
    public.key_id = mine.key_id.clone();
    let audit = AuditService::verifying(store.clone(), Some(public), &cfg);
    let b = audit.verify().await.unwrap().unwrap_err();
    assert!(b.reason.contains("does not verify"), "{b}");
    let audit = AuditService::verifying(store, Some(mine), &cfg);
    assert_eq!(audit.verify().await.unwrap().unwrap().checkpoints, 1);
}

#[tokio::test]
async fn a_failed_checkpoint_write_fails_the_recorded_action() {
    let dir = tempfile::tempdir().unwrap();
    // A directory where the file should be: every append fails.
    let file = dir.path().join("not-a-file");
    std::fs::create_dir(&file).unwrap();
    let (audit, _path) = signed_service(dir.path(), 2, Some(file), 1).await;
    let e = entry("@a:x", "login", Outcome::Success);
    assert!(audit.record(e).await.is_err());
}
