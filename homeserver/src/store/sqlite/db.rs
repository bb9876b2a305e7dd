//! The SQLite engine: one writer thread with group commit, a pool of read-only connections.
//!
//! Why a writer thread: SQLite allows one writer at a time. Serialising writes through one thread
//! lets us batch every job that is waiting into a single transaction (one fsync for many sends),
//! allocate stream positions in commit order, and acknowledge a write only after its COMMIT, so an
//! acknowledged write is durable (WAL + synchronous=FULL).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, Transaction};

use super::migrations;
use crate::store::{StoreError, StoreResult};

/// What a write job sees: the open transaction and the stream-position allocator.
pub struct WriteCtx<'a> {
    pub tx: &'a Transaction<'a>,
    next_pos: &'a mut i64,
}

impl WriteCtx<'_> {
    /// Allocates the next position in the global stream (events, receipts, account data…).
    pub fn next_pos(&mut self) -> i64 {
        *self.next_pos += 1;
        *self.next_pos
    }
}

/// How a group commit ended, for every job in it.
#[derive(Debug, Clone, Copy)]
enum Commit {
    Done,
    /// Rolled back; the storage was full or read-only (clear to the client), or something else.
    Failed(Option<fn() -> StoreError>),
}

type Reply = Box<dyn FnOnce(Commit) + Send>;
type Job = Box<dyn FnOnce(&mut WriteCtx<'_>) -> Reply + Send>;

/// Why a failed commit failed, in terms a caller can report.
fn commit_failure(e: &rusqlite::Error) -> Commit {
    Commit::Failed(match e.sqlite_error_code() {
        Some(rusqlite::ErrorCode::DiskFull) => Some(|| StoreError::Full),
        Some(rusqlite::ErrorCode::ReadOnly) => Some(|| StoreError::ReadOnly),
        _ => None,
    })
}

/// What the writer thread runs: a job in the next group commit, or a step of space reclaim
/// run on the writer's own connection between group commits (outside any transaction).
enum Msg {
    Tx(Job),
    Raw(RawJob),
}

type RawJob = Box<dyn FnOnce(&Connection) + Send>;

/// Free pages returned to the filesystem per reclaim step: small enough that a send waiting
/// behind a step waits milliseconds, not the length of a whole reclaim.
const RECLAIM_STEP_PAGES: i64 = 256;
/// A WAL checkpoint run by the writer waits this long at most for readers (then retried).
const CHECKPOINT_WAIT: Duration = Duration::from_millis(100);
const CHECKPOINT_TRIES: u32 = 20;

pub struct Db {
    path: PathBuf,
    writer: Mutex<mpsc::Sender<Msg>>,
    readers: Mutex<Vec<Connection>>,
    max_readers: usize,
    /// Highest stream position whose transaction has committed; readers never look past it.
    committed: Arc<AtomicI64>,
    busy_timeout: Duration,
}

fn open(path: &Path, flags: OpenFlags, busy_timeout: Duration) -> StoreResult<Connection> {
    let conn = Connection::open_with_flags(path, flags)?;
    conn.busy_timeout(busy_timeout)?;
    conn.execute_batch(
        "PRAGMA foreign_keys = ON;
         PRAGMA secure_delete = ON;
         PRAGMA cache_size = -16000;
         PRAGMA temp_store = MEMORY;",
    )?;
    Ok(conn)
}

impl Db {
    pub fn open(path: &Path, max_readers: usize) -> StoreResult<Arc<Self>> {
        Self::open_with(path, max_readers, Duration::from_secs(10))
    }

    /// As [`Db::open`], with the time a connection waits for another's lock.
    pub fn open_with(
        path: &Path,
        max_readers: usize,
        busy_timeout: Duration,
    ) -> StoreResult<Arc<Self>> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| StoreError::Io(e.to_string()))?;
        }
        let mut conn = open(path, OpenFlags::default(), busy_timeout)?;
        incremental_auto_vacuum(&conn)?;
        conn.execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;")?;
        migrations::run(&mut conn)?;
        let start = migrations::max_stream_pos(&conn)?;
        let committed = Arc::new(AtomicI64::new(start));
        let (tx, rx) = mpsc::channel::<Msg>();
        let committed2 = committed.clone();
        std::thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || writer_loop(conn, rx, start, committed2))
            .map_err(|e| StoreError::Io(e.to_string()))?;
        Ok(Arc::new(Self {
            path: path.to_owned(),
            writer: Mutex::new(tx),
            readers: Mutex::new(Vec::new()),
            max_readers,
            committed,
            busy_timeout,
        }))
    }

    /// The highest committed stream position.
    pub fn current_pos(&self) -> i64 {
        self.committed.load(Ordering::Acquire)
    }

    /// Runs `f` inside the next group-commit transaction and returns once it is durable.
    /// An error from `f` rolls back only `f`'s own changes (a savepoint), not its batch-mates'.
    /// Blocking: call from a blocking context (the service layer uses `spawn_blocking`).
    pub fn write<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut WriteCtx<'_>) -> StoreResult<T> + Send + 'static,
    ) -> StoreResult<T> {
        let (rtx, rrx) = mpsc::sync_channel::<StoreResult<T>>(1);
        let job: Job = Box::new(move |ctx| {
            let res = f(ctx);
            if res.is_err() {
                // Undo only this job's writes; its batch-mates still commit.
                let _ = ctx.tx.execute_batch("ROLLBACK TO job");
            }
            Box::new(move |commit: Commit| {
                let res = match commit {
                    Commit::Done => res,
                    Commit::Failed(Some(why)) => Err(why()),
                    Commit::Failed(None) => Err(StoreError::CommitFailed),
                };
                let _ = rtx.send(res);
            })
        });
        self.writer
            .lock()
            .expect("writer channel lock")
            .send(Msg::Tx(job))
            .map_err(|_| StoreError::Closed)?;
        rrx.recv().map_err(|_| StoreError::Closed)?
    }

    /// Runs `f` on the writer's connection between group commits, outside any transaction.
    fn raw<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> StoreResult<T> + Send + 'static,
    ) -> StoreResult<T> {
        let (rtx, rrx) = mpsc::sync_channel::<StoreResult<T>>(1);
        let job = Box::new(move |conn: &Connection| {
            let _ = rtx.send(f(conn));
        });
        self.writer
            .lock()
            .expect("writer channel lock")
            .send(Msg::Raw(job))
            .map_err(|_| StoreError::Closed)?;
        rrx.recv().map_err(|_| StoreError::Closed)?
    }

    /// Erases freed content from the files and gives the space back. Freed cells and pages are
    /// already zeroed (`secure_delete`); this returns the free pages to the filesystem with
    /// `incremental_vacuum`, then checkpoints the WAL into the database and truncates it, so no
    /// old page image survives in either file.
    ///
    /// Why not VACUUM: it rewrites the whole database on a second connection while holding the
    /// write lock, so on a big database every group commit waiting behind it timed out and
    /// failed. Here every step runs on the writer thread itself, between group commits: a
    /// send waits for at most one step of `RECLAIM_STEP_PAGES` pages. Blocking.
    pub fn reclaim(&self) -> StoreResult<()> {
        loop {
            let left = self.raw(|conn| {
                // Pragmas take no bound parameters.
                let mut st =
                    conn.prepare(&format!("PRAGMA incremental_vacuum({RECLAIM_STEP_PAGES})"))?;
                // Step to the end, whatever the statement returns along the way.
                let mut rows = st.query([])?;
                while rows.next()?.is_some() {}
                let left: i64 = conn.query_row("PRAGMA freelist_count", [], |r| r.get(0))?;
                Ok(left)
            })?;
            if left == 0 {
                break;
            }
        }
        // A checkpoint waits for readers of older snapshots; on the writer thread it may only
        // wait briefly, so it is retried (sends go on in between) rather than waited out.
        let busy = self.busy_timeout;
        for attempt in 0..CHECKPOINT_TRIES {
            let blocked = self.raw(move |conn| {
                conn.busy_timeout(CHECKPOINT_WAIT)?;
                let res = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| {
                    r.get::<_, i64>(0)
                });
                conn.busy_timeout(busy)?;
                Ok(res? != 0)
            })?;
            if !blocked {
                return Ok(());
            }
            std::thread::sleep(CHECKPOINT_WAIT * (attempt + 1));
        }
        tracing::warn!("WAL checkpoint blocked by readers; the WAL is truncated next time");
        Ok(())
    }

    /// Runs `f` on a read-only connection (a consistent snapshot for its duration).
    pub fn read<T>(&self, f: impl FnOnce(&Connection) -> StoreResult<T>) -> StoreResult<T> {
        let conn = self.readers.lock().expect("reader pool lock").pop();
        let conn = match conn {
            Some(c) => c,
            None => open(
                &self.path,
                OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
                self.busy_timeout,
            )?,
        };
        let res = (|| {
            conn.execute_batch("BEGIN")?;
            let r = f(&conn);
            conn.execute_batch("COMMIT")?;
            r
        })();
        let mut pool = self.readers.lock().expect("reader pool lock");
        if pool.len() < self.max_readers && conn.is_autocommit() {
            pool.push(conn);
        }
        res
    }
}

/// Free pages go back to the filesystem only when asked (`Db::reclaim`), never at commit time.
/// A database created before this was set has to be rebuilt once to switch: done here, at open,
/// before the writer thread starts (so nothing waits on it but start-up).
fn incremental_auto_vacuum(conn: &Connection) -> StoreResult<()> {
    const INCREMENTAL: i64 = 2;
    conn.execute_batch("PRAGMA auto_vacuum = INCREMENTAL;")?;
    let mode: i64 = conn.query_row("PRAGMA auto_vacuum", [], |r| r.get(0))?;
    if mode != INCREMENTAL {
        tracing::info!("switching the database to incremental vacuum (one-time rebuild)");
        conn.execute_batch("VACUUM;")?;
    }
    Ok(())
}

fn writer_loop(
    mut conn: Connection,
    rx: mpsc::Receiver<Msg>,
    start: i64,
    committed: Arc<AtomicI64>,
) {
    let mut next_pos = start;
    let mut raw: Option<RawJob> = None;
    while let Some(first) = raw.take().map(Msg::Raw).or_else(|| rx.recv().ok()) {
        let first = match first {
            Msg::Tx(j) => j,
            Msg::Raw(f) => {
                f(&conn);
                continue;
            }
        };
        // Take everything already waiting: that is the group commit. A reclaim step waiting
        // among them runs right after it.
        let mut jobs = vec![first];
        while jobs.len() < 256 {
            match rx.try_recv() {
                Ok(Msg::Tx(j)) => jobs.push(j),
                Ok(Msg::Raw(f)) => {
                    raw = Some(f);
                    break;
                }
                Err(_) => break,
            }
        }
        crate::metrics::db_batch(jobs.len());
        let before = next_pos;
        let mut replies = Vec::with_capacity(jobs.len());
        let outcome = (|| -> rusqlite::Result<()> {
            let tx = conn.transaction()?;
            for job in jobs.drain(..) {
                tx.execute_batch("SAVEPOINT job")?;
                let mut failed = false;
                let reply = {
                    let mut ctx = WriteCtx {
                        tx: &tx,
                        next_pos: &mut next_pos,
                    };
                    let reply =
                        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job(&mut ctx)));
                    match reply {
                        Ok(r) => r,
                        Err(_) => {
                            failed = true;
                            Box::new(|_| {}) as Reply
                        }
                    }
                };
                if failed {
                    tx.execute_batch("ROLLBACK TO job")?;
                }
                tx.execute_batch("RELEASE job")?;
                replies.push(reply);
            }
            if next_pos != before {
                tx.execute(
                    "UPDATE stream_position SET pos = ?1 WHERE id = 0",
                    [next_pos],
                )?;
            }
            tx.commit()
        })();
        let commit = match outcome {
            Ok(()) => {
                committed.store(next_pos, Ordering::Release);
                Commit::Done
            }
            Err(e) => {
                tracing::error!(error = %e, "group commit failed; batch rolled back");
                next_pos = before;
                let _ = conn.execute_batch("ROLLBACK");
                commit_failure(&e)
            }
        };
        for r in replies {
            r(commit);
        }
    }
}
