//! Space reclaim must not take writes down: sends keep committing while a large reclaim runs.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use super::db::Db;

/// Rows of ~4 KiB of random-looking bytes (so pages do not compress or deduplicate).
fn fill(db: &Db, table: &str, rows: usize) {
    let table = table.to_owned();
    db.write(move |ctx| {
        ctx.tx.execute_batch(&format!(
            "CREATE TABLE IF NOT EXISTS {table} (id INTEGER PRIMARY KEY, body BLOB)"
        ))?;
        let mut st = ctx.tx.prepare(&format!(
            "INSERT INTO {table} (body) VALUES (randomblob(4000))"
        ))?;
        for _ in 0..rows {
            st.execute([])?;
        }
        Ok(())
    })
    .unwrap();
}

#[test]
fn sends_keep_committing_during_a_reclaim() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.db");
    // A short lock wait: a design where the reclaim holds the write lock for longer than this
    // (VACUUM on its own connection) fails the group commits that wait behind it.
    let db = Db::open_with(&path, 2, Duration::from_millis(50)).unwrap();
    // ~40 MB kept and ~40 MB freed: work for a reclaim, a whole-file rewrite either way.
    fill(&db, "kept", 10_000);
    fill(&db, "freed", 10_000);
    db.write(|ctx| Ok(ctx.tx.execute_batch("DELETE FROM freed")?))
        .unwrap();
    let free: i64 = db
        .read(|c| Ok(c.query_row("PRAGMA freelist_count", [], |r| r.get(0))?))
        .unwrap();
    assert!(free > 5_000, "{free} free pages");

    let db = Arc::new(db);
    let (running, done) = (
        Arc::new(AtomicBool::new(true)),
        Arc::new(AtomicBool::new(false)),
    );
    let sender = {
        let (db, running, done) = (db.clone(), running.clone(), done.clone());
        std::thread::spawn(move || {
            let (mut ok, mut during, mut failed) = (0, 0, 0);
            while running.load(Ordering::SeqCst) {
                let res = db.write(|ctx| {
                    ctx.tx
                        .execute("INSERT INTO kept (body) VALUES (x'00')", [])?;
                    Ok(())
                });
                match res {
                    Ok(()) => {
                        ok += 1;
                        if !done.load(Ordering::SeqCst) {
                            during += 1;
                        }
                    }
                    Err(_) => failed += 1,
                }
                std::thread::sleep(Duration::from_millis(2));
            }
            (ok, during, failed)
        })
    };
    std::thread::sleep(Duration::from_millis(20));
    db.reclaim().unwrap();
    done.store(true, Ordering::SeqCst);
    std::thread::sleep(Duration::from_millis(20));
    running.store(false, Ordering::SeqCst);
    let (ok, during, failed) = sender.join().unwrap();
    assert_eq!(
        failed, 0,
        "sends failed during the reclaim ({ok} succeeded)"
    );
    assert!(during > 0, "no send overlapped the reclaim");

    // The space went back; the WAL holds at most what the sends wrote after the reclaim.
    let free: i64 = db
        .read(|c| Ok(c.query_row("PRAGMA freelist_count", [], |r| r.get(0))?))
        .unwrap();
    assert_eq!(free, 0);
    let wal = std::fs::metadata(dir.path().join("big.db-wal"))
        .map(|m| m.len())
        .unwrap_or(0);
    assert!(wal < 1_000_000, "{wal} bytes of WAL");
    let size = std::fs::metadata(&path).unwrap().len();
    assert!(size < 60_000_000, "{size} bytes");
}

#[test]
fn an_existing_database_is_switched_to_incremental_vacuum() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.db");
    {
        let c = rusqlite::Connection::open(&path).unwrap();
        c.execute_batch("CREATE TABLE t (x); INSERT INTO t VALUES (1);")
            .unwrap();
        let mode: i64 = c.query_row("PRAGMA auto_vacuum", [], |r| r.get(0)).unwrap();
        assert_eq!(mode, 0);
    }
    let db = Db::open(&path, 1).unwrap();
    let mode: i64 = db
        .read(|c| Ok(c.query_row("PRAGMA auto_vacuum", [], |r| r.get(0))?))
        .unwrap();
    assert_eq!(mode, 2, "incremental");
    let n: i64 = db
        .read(|c| Ok(c.query_row("SELECT COUNT(*) FROM t", [], |r| r.get(0))?))
        .unwrap();
    assert_eq!(n, 1);
}
