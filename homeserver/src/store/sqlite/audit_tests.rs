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
        audit.record(e.detail("ip", format!("10.0.0.{i}"))).await;
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
        t.await.unwrap();
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
        audit.record(e).await;
    }
    let page = audit.page_between(100, 300, 0).await.unwrap();
    assert_eq!(page.iter().map(|r| r.ts).collect::<Vec<_>>(), [100, 200]);
    assert_eq!(audit.page_between(100, 300, 1).await.unwrap().len(), 1);
}
