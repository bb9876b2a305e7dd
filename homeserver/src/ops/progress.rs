//! Progress of a long admin job on standard error: a bar redrawn in place on a terminal,
//! a line every quarter otherwise (logs, cron mail). No crate: this is all it needs to do.
//! Used by backup, restore, purge and the SAR export (the services report through
//! `service::progress::JobProgress`).

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

pub struct Progress {
    label: String,
    tty: bool,
    last_draw: Option<Instant>,
    last_quarter: u64,
}

impl Progress {
    pub fn new(label: &str) -> Self {
        Self {
            label: label.to_owned(),
            tty: std::io::stderr().is_terminal(),
            last_draw: None,
            last_quarter: 0,
        }
    }

    /// `done` of `total` units (pages, bytes).
    pub fn update(&mut self, done: u64, total: u64) {
        let pct = (done * 100).checked_div(total).unwrap_or(100);
        let mut err = std::io::stderr().lock();
        if self.tty {
            let due = self
                .last_draw
                .is_none_or(|t| t.elapsed() >= Duration::from_millis(100));
            if due || done >= total {
                let filled = (pct / 5) as usize;
                let _ = write!(
                    err,
                    "\r{:<10} [{}{}] {pct:>3}%",
                    self.label,
                    "#".repeat(filled),
                    "-".repeat(20 - filled)
                );
                let _ = err.flush();
                self.last_draw = Some(Instant::now());
            }
        } else {
            let quarter = pct / 25;
            if quarter > self.last_quarter {
                let _ = writeln!(err, "{}: {}%", self.label, quarter * 25);
                self.last_quarter = quarter;
            }
        }
    }

    /// Ends the bar's line.
    pub fn finish(&mut self) {
        if self.tty && self.last_draw.is_some() {
            let _ = writeln!(std::io::stderr());
        }
    }
}

/// The services report long jobs' progress through this (purge, SAR export).
impl crate::service::progress::JobProgress for Progress {
    fn update(&mut self, done: u64, total: u64) {
        Progress::update(self, done, total);
    }
}
