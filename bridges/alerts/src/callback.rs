//! Status callbacks, durable: on each change of an alert (posted, read, acknowledged,
//! escalated, handed over) its status JSON is queued in the bridge's SQLite (`callbacks`) in
//! the order of the changes, and a worker POSTs it to the source's `callback_url`, signed like
//! the inbound webhook (`X-Handover-Timestamp` of the attempt, `X-Handover-Signature`) with the
//! source's secret. A refused or failed POST is retried with exponential backoff
//! (`[callbacks]`), the next change of that source waiting behind it (in order per source),
//! until it is accepted (2xx) or older than `give_up_after_secs` (dropped, audited
//! `callback.abandoned`). The queue is a table: a restart resumes it. The status endpoint stays
//! authoritative.

use std::sync::Arc;
use std::time::Duration;

use handover_bridge_core::Clock;
use handover_bridge_core::signature::{SIGNATURE_HEADER, TIMESTAMP_HEADER, sign};
use handover_bridge_core::store::{AuditEntry, Db, insert_audit};
use rusqlite::params;
use serde_json::Value;
use tokio::sync::Notify;

use crate::config::Config;
use crate::state::into_sqlite;

/// One queued callback.
#[derive(Debug, Clone)]
struct Queued {
    id: i64,
    source: String,
    alert_id: String,
    body: String,
    attempts: i64,
    next_at: i64,
    created_at: i64,
}

pub struct Callbacks {
    cfg: Arc<Config>,
    http: reqwest::Client,
    db: Db,
    clock: Arc<dyn Clock>,
    wake: Notify,
}

impl Callbacks {
    pub fn new(cfg: Arc<Config>, db: Db, clock: Arc<dyn Clock>) -> Self {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(cfg.callbacks.timeout_secs.max(1)))
            .build()
            .expect("HTTP client");
        Self {
            cfg,
            http,
            db,
            clock,
            wake: Notify::new(),
        }
    }

    /// Queues the status of `alert_id` for its source's callback (if it has one).
    pub async fn enqueue(&self, source: &str, alert_id: &str, status: Value) -> anyhow::Result<()> {
        if self
            .cfg
            .source(source)
            .and_then(|s| s.callback_url.as_ref())
            .is_none()
        {
            return Ok(());
        }
        let (source, alert_id, now) = (source.to_owned(), alert_id.to_owned(), self.clock.now_ms());
        self.db
            .call(move |c| {
                c.execute(
                    "INSERT INTO callbacks (source, alert_id, body, attempts, next_at, created_at)
                     VALUES (?1, ?2, ?3, 0, ?4, ?4)",
                    params![source, alert_id, status.to_string(), now],
                )
            })
            .await?;
        self.wake.notify_one();
        Ok(())
    }

    /// Callbacks still queued (tests).
    #[cfg(test)]
    pub async fn pending(&self) -> anyhow::Result<i64> {
        let n = self
            .db
            .call(|c| c.query_row("SELECT COUNT(*) FROM callbacks", [], |r| r.get(0)))
            .await?;
        Ok(n)
    }

    /// Delivers forever: whenever one is due, or queued.
    pub async fn run(self: Arc<Self>) {
        loop {
            let wait = match self.deliver_due().await {
                Ok(next) => next.map_or(Duration::from_secs(5), |at| {
                    Duration::from_millis((at - self.clock.now_ms()).clamp(10, 5000) as u64)
                }),
                Err(e) => {
                    tracing::warn!(error = %e, "callback queue unreadable; retrying");
                    Duration::from_secs(1)
                }
            };
            tokio::select! {
                () = self.wake.notified() => {}
                () = tokio::time::sleep(wait) => {}
            }
        }
    }

    /// Tries the oldest queued callback of each source that is due; returns when the next
    /// one falls due.
    pub async fn deliver_due(&self) -> anyhow::Result<Option<i64>> {
        let heads = self
            .db
            .call(|c| {
                let mut st = c.prepare(
                    "SELECT id, source, alert_id, body, attempts, next_at, created_at FROM callbacks q
                     WHERE id = (SELECT MIN(id) FROM callbacks WHERE source = q.source)",
                )?;
                st.query_map([], |r| {
                    Ok(Queued {
                        id: r.get(0)?,
                        source: r.get(1)?,
                        alert_id: r.get(2)?,
                        body: r.get(3)?,
                        attempts: r.get(4)?,
                        next_at: r.get(5)?,
                        created_at: r.get(6)?,
                    })
                })?
                .collect::<rusqlite::Result<Vec<_>>>()
            })
            .await?;
        let mut next: Option<i64> = None;
        for q in heads {
            let now = self.clock.now_ms();
            if q.next_at > now {
                next = Some(next.map_or(q.next_at, |n| n.min(q.next_at)));
                continue;
            }
            let outcome = self.post(&q).await;
            let at = self.settle(q, outcome).await?;
            if let Some(at) = at {
                next = Some(next.map_or(at, |n| n.min(at)));
            } else {
                next = Some(self.clock.now_ms());
            }
        }
        Ok(next)
    }

    /// One attempt: `Ok` when the receiver accepted (2xx).
    async fn post(&self, q: &Queued) -> Result<(), String> {
        let Some(url) = self
            .cfg
            .source(&q.source)
            .and_then(|s| s.callback_url.clone())
        else {
            return Err("callback_url no longer configured".into());
        };
        let secret = match self.cfg.secret_of(&q.source) {
            Some(Ok(s)) => s,
            _ => return Err("source secret unavailable".into()),
        };
        let ts = self.clock.now_ms() / 1000;
        let sent = self
            .http
            .post(&url)
            .header("content-type", "application/json")
            .header(TIMESTAMP_HEADER, ts.to_string())
            .header(SIGNATURE_HEADER, sign(&secret, ts, q.body.as_bytes()))
            .body(q.body.clone())
            .send()
            .await;
        match sent {
            Ok(r) if r.status().is_success() => Ok(()),
            Ok(r) => Err(format!("HTTP {}", r.status().as_u16())),
            // Without the URL: it may carry credentials.
            Err(e) => Err(if e.is_timeout() {
                "timed out".into()
            } else {
                "connection failed".into()
            }),
        }
    }

    /// Records an attempt: delivered (row removed), retried later (returns when), or given
    /// up (row removed, audited).
    async fn settle(&self, q: Queued, outcome: Result<(), String>) -> anyhow::Result<Option<i64>> {
        let now = self.clock.now_ms();
        let cfg = &self.cfg.callbacks;
        let attempts = q.attempts + 1;
        let give_up = now - q.created_at >= (cfg.give_up_after_secs as i64) * 1000;
        let backoff = (cfg.first_backoff_ms as i64)
            .saturating_mul(1i64 << (attempts - 1).clamp(0, 30))
            .min(cfg.max_backoff_secs as i64 * 1000)
            .max(1);
        let next_at = now + backoff;
        match &outcome {
            Ok(()) => {}
            Err(e) => tracing::warn!(
                source = q.source,
                alert_id = q.alert_id,
                attempts,
                error = e.as_str(),
                give_up,
                "status callback not accepted"
            ),
        }
        let done = outcome.is_ok() || give_up;
        self.db
            .call(move |c| {
                let tx = c.transaction()?;
                if done {
                    tx.execute("DELETE FROM callbacks WHERE id = ?1", [q.id])?;
                    if let Err(e) = &outcome {
                        insert_audit(
                            &tx,
                            &AuditEntry::new("callback.abandoned", "error")
                                .target(format!("{}/{}", q.source, q.alert_id))
                                .detail("attempts", attempts)
                                .detail("error", e.clone()),
                        )?;
                    }
                } else {
                    tx.execute(
                        "UPDATE callbacks SET attempts = ?2, next_at = ?3, last_error = ?4 WHERE id = ?1",
                        params![q.id, attempts, next_at, outcome.as_ref().err()],
                    )?;
                }
                tx.commit()
            })
            .await
            .map_err(into_sqlite)?;
        Ok((!done).then_some(next_at))
    }
}
