//! The online backup of the database (`handover admin backup`), with SQLite's backup API, from
//! a separate process while the server runs.
//!
//! The source connection holds one read transaction for the whole copy, so every step copies
//! pages of the same snapshot: WAL readers never block the server's writer, and the server's
//! commits meanwhile neither show up half-way nor restart the copy (SQLite restarts a backup
//! when the source changes between steps only if the steps read different snapshots).

use std::path::Path;
use std::time::Duration;

use rusqlite::backup::{Backup, StepResult};
use rusqlite::{Connection, OpenFlags};

use crate::store::{StoreError, StoreResult};

/// Pages copied per step: progress is reported between steps.
const PAGES_PER_STEP: i32 = 1024;

/// Copies the database at `src` into a new file `dst`, calling `progress(done, total)` in
/// pages after each step; then checks the copy (`quick_check`). Blocking.
pub fn online_backup(src: &Path, dst: &Path, progress: impl FnMut(u64, u64)) -> StoreResult<()> {
    backup_in_steps(src, dst, PAGES_PER_STEP, progress)
}

fn backup_in_steps(
    src: &Path,
    dst: &Path,
    pages_per_step: i32,
    mut progress: impl FnMut(u64, u64),
) -> StoreResult<()> {
    if !src.exists() {
        return Err(StoreError::Io(format!("no database at {}", src.display())));
    }
    let source = Connection::open_with_flags(
        src,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    source.busy_timeout(Duration::from_secs(30))?;
    // Pin one snapshot for the whole copy (see the module comment).
    source.execute_batch("BEGIN")?;
    source.query_row("SELECT count(*) FROM sqlite_schema", [], |r| {
        r.get::<_, i64>(0)
    })?;
    let mut dest = Connection::open_with_flags(
        dst,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE,
    )?;
    {
        let backup = Backup::new(&source, &mut dest)?;
        loop {
            let step = backup.step(pages_per_step)?;
            let p = backup.progress();
            let total = p.pagecount.max(0) as u64;
            progress(total.saturating_sub(p.remaining.max(0) as u64), total);
            match step {
                StepResult::Done => break,
                StepResult::More => {}
                // Another connection holds a lock the copy needs: wait briefly and go on.
                _ => std::thread::sleep(Duration::from_millis(50)),
            }
        }
    }
    source.execute_batch("COMMIT")?;
    // The copy is a WAL database like the original; leave it as one self-contained file.
    dest.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")?;
    let check: String = dest.query_row("PRAGMA quick_check", [], |r| r.get(0))?;
    if check != "ok" {
        return Err(StoreError::Corrupt(format!("backup copy: {check}")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_is_consistent_while_the_source_is_written() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("src.db");
        let writer = Connection::open(&src).unwrap();
        writer
            .execute_batch(
                "PRAGMA journal_mode = WAL; CREATE TABLE t (id INTEGER PRIMARY KEY, v BLOB);",
            )
            .unwrap();
        for i in 0..2000 {
            writer
                .execute("INSERT INTO t (id, v) VALUES (?1, zeroblob(512))", [i])
                .unwrap();
        }
        let dst = dir.path().join("copy.db");
        let mut steps = 0;
        let mut last = (0, 0);
        backup_in_steps(&src, &dst, 16, |done, total| {
            steps += 1;
            last = (done, total);
            // The server keeps writing between steps: the copy must not restart or mix.
            writer
                .execute("INSERT INTO t (v) VALUES (zeroblob(512))", [])
                .unwrap();
        })
        .unwrap();
        assert!(steps > 1, "several steps");
        assert_eq!(last.0, last.1);
        let copy = Connection::open(&dst).unwrap();
        let n: i64 = copy
            .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 2000, "exactly the snapshot taken at the start");
    }
}
