//! Prometheus metrics (`[metrics] listen`, docs/OPERATIONS.md "Metrics").
//!
//! The `metrics` facade's macros write to one process-wide recorder; it is installed only when
//! `[metrics] listen` is set, so with metrics off every call site costs one atomic load and
//! nothing is kept. The recorder only renders text: axum serves it on its own listener, so
//! the exporter needs no HTTP server of its own. Counters are bumped where things already
//! happen (the request log middleware, the writer's group commit, event appends, policy
//! denials, the purge job); gauges that describe current state (sync waiters, federation
//! queue depth) are read from the services at scrape time, so no hot path maintains them.

use std::collections::HashSet;
use std::sync::Mutex;

use metrics::{counter, gauge, histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

pub const HTTP_REQUESTS: &str = "handover_http_requests_total";
pub const HTTP_DURATION: &str = "handover_http_request_duration_seconds";
pub const SYNC_WAITERS: &str = "handover_sync_waiters";
pub const EVENTS_COMMITTED: &str = "handover_events_committed_total";
pub const FEDERATION_QUEUE: &str = "handover_federation_queue_depth";
pub const PURGE_RUNS: &str = "handover_purge_runs_total";
pub const POLICY_DENIALS: &str = "handover_policy_denials_total";
pub const DB_BATCH: &str = "handover_db_write_batch_size";

/// Latency buckets (seconds): sends and logins in the tens of milliseconds, long-polls to 60 s.
const LATENCY_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];
/// Jobs per group commit (the writer takes at most 256).
const BATCH_BUCKETS: &[f64] = &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0];

/// The installed recorder and what the scrape needs besides it.
pub struct Metrics {
    handle: PrometheusHandle,
    /// Destinations given a queue-depth gauge, so one whose queue emptied is set back to 0.
    destinations: Mutex<HashSet<String>>,
}

impl Metrics {
    /// Installs the process-wide recorder. Call once, before serving.
    pub fn install() -> anyhow::Result<Self> {
        let handle = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Full(HTTP_DURATION.into()), LATENCY_BUCKETS)?
            .set_buckets_for_metric(Matcher::Full(DB_BATCH.into()), BATCH_BUCKETS)?
            .install_recorder()?;
        describe();
        Ok(Self {
            handle,
            destinations: Mutex::new(HashSet::new()),
        })
    }

    /// Drains histogram samples into their buckets; run every few seconds so memory stays flat
    /// however rarely Prometheus scrapes.
    pub fn upkeep(&self) {
        self.handle.run_upkeep();
    }

    /// The Prometheus text exposition, with the state gauges as read now by the caller (this
    /// module is a leaf that the store and services record into; it never reaches up to them).
    pub fn render(&self, sync_waiters: usize, queue_depths: Vec<(String, u64, u64)>) -> String {
        gauge!(SYNC_WAITERS).set(sync_waiters as f64);
        self.queue_gauges(queue_depths);
        self.handle.render()
    }

    /// Sets the queue-depth gauges; a destination no longer queued goes back to 0.
    fn queue_gauges(&self, depths: Vec<(String, u64, u64)>) {
        let mut seen = self
            .destinations
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let now: HashSet<String> = depths.iter().map(|d| d.0.clone()).collect();
        for gone in seen.difference(&now) {
            for kind in ["pdu", "edu"] {
                gauge!(FEDERATION_QUEUE, "destination" => gone.clone(), "kind" => kind).set(0.0);
            }
        }
        for (dest, pdus, edus) in depths {
            gauge!(FEDERATION_QUEUE, "destination" => dest.clone(), "kind" => "pdu")
                .set(pdus as f64);
            gauge!(FEDERATION_QUEUE, "destination" => dest, "kind" => "edu").set(edus as f64);
        }
        seen.extend(now);
    }
}

fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram};
    describe_counter!(
        HTTP_REQUESTS,
        "HTTP requests by listener, method, matched route template and status"
    );
    describe_histogram!(
        HTTP_DURATION,
        metrics::Unit::Seconds,
        "HTTP request latency by listener, method and route template"
    );
    describe_gauge!(SYNC_WAITERS, "/sync and sliding-sync requests in progress");
    describe_counter!(EVENTS_COMMITTED, "room events committed, by origin");
    describe_gauge!(
        FEDERATION_QUEUE,
        "items queued for a destination server, by kind"
    );
    describe_counter!(
        PURGE_RUNS,
        "retention purge runs of the server's job, by outcome"
    );
    describe_counter!(POLICY_DENIALS, "policy denials, by rule");
    describe_histogram!(DB_BATCH, "write jobs per group commit of the SQLite writer");
}

/// One finished HTTP request. `route` is the matched template (`/rooms/{roomId}/...`), never
/// the raw path, so ids never become label values.
pub fn request(listener: &'static str, method: &http::Method, route: &str, status: u16, secs: f64) {
    let method = match *method {
        http::Method::GET => "GET",
        http::Method::PUT => "PUT",
        http::Method::POST => "POST",
        http::Method::DELETE => "DELETE",
        http::Method::OPTIONS => "OPTIONS",
        http::Method::HEAD => "HEAD",
        http::Method::PATCH => "PATCH",
        _ => "other",
    };
    counter!(HTTP_REQUESTS, "listener" => listener, "method" => method,
        "route" => route.to_owned(), "status" => status.to_string())
    .increment(1);
    histogram!(HTTP_DURATION, "listener" => listener, "method" => method,
        "route" => route.to_owned())
    .record(secs);
}

/// `n` room events committed: `local` (made here) or `federation` (received).
pub fn events_committed(origin: &'static str, n: u64) {
    counter!(EVENTS_COMMITTED, "origin" => origin).increment(n);
}

/// A policy denial (already audited) under `rule`.
pub fn policy_denial(rule: &str) {
    counter!(POLICY_DENIALS, "rule" => rule.to_owned()).increment(1);
}

/// One group commit of `jobs` write jobs.
pub fn db_batch(jobs: usize) {
    histogram!(DB_BATCH).record(jobs as f64);
}

/// One run of the retention purge job.
pub fn purge_run(ok: bool) {
    let outcome = if ok { "success" } else { "failure" };
    counter!(PURGE_RUNS, "outcome" => outcome).increment(1);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_depth_gauges_fall_to_zero_when_a_queue_empties() {
        let recorder = PrometheusBuilder::new().build_recorder();
        let m = Metrics {
            handle: recorder.handle(),
            destinations: Mutex::new(HashSet::new()),
        };
        metrics::with_local_recorder(&recorder, || {
            m.queue_gauges(vec![("a.nhs.uk".into(), 3, 1), ("b.nhs.uk".into(), 0, 2)]);
            let text = m.handle.render();
            assert!(
                text.contains(
                    "handover_federation_queue_depth{destination=\"a.nhs.uk\",kind=\"pdu\"} 3"
                ),
                "{text}"
            );
            m.queue_gauges(vec![("b.nhs.uk".into(), 0, 1)]);
            let text = m.handle.render();
            assert!(text.contains(
                "handover_federation_queue_depth{destination=\"a.nhs.uk\",kind=\"pdu\"} 0"
            ));
            assert!(text.contains(
                "handover_federation_queue_depth{destination=\"b.nhs.uk\",kind=\"edu\"} 1"
            ));
            request("client", &http::Method::PUT, "/rooms/{room_id}", 200, 0.02);
            policy_denial("nhs_number_in_metadata");
            let text = m.handle.render();
            assert!(text.contains("route=\"/rooms/{room_id}\""), "{text}");
            assert!(
                text.contains("handover_policy_denials_total{rule=\"nhs_number_in_metadata\"} 1")
            );
        });
    }
}
