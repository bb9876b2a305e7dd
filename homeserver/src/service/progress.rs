//! Progress of a long job, reported by the service doing it (retention purge, SAR export) to
//! whoever shows it: the CLI's bar (`ops::progress`), or nobody. A leaf helper like `blocking`.

/// Told how far a job has got: `done` of `total` units (rooms, events, files).
pub trait JobProgress: Send {
    fn update(&mut self, done: u64, total: u64);
}

/// No one is watching (the server's own timer, the HTTP API).
pub struct NoProgress;

impl JobProgress for NoProgress {
    fn update(&mut self, _done: u64, _total: u64) {}
}
