//! Prometheus counters of the bridge (`GET /metrics`): the `metrics` facade, rendered by
//! `metrics-exporter-prometheus` (installed once in `main`; without it these are no-ops, as in
//! unit tests).

use metrics::{counter, histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

pub const RECEIVED: &str = "handover_alerts_received_total";
pub const REJECTED: &str = "handover_alerts_rejected_total";
pub const POSTED: &str = "handover_alerts_posted_total";
pub const ACKNOWLEDGED: &str = "handover_alerts_acknowledged_total";
pub const ESCALATED: &str = "handover_alerts_escalated_total";
pub const TIME_TO_ACK: &str = "handover_alerts_time_to_acknowledge_seconds";

/// Installs the process-wide recorder; the handle renders the text exposition.
pub fn install() -> Result<PrometheusHandle, String> {
    PrometheusBuilder::new()
        .set_buckets_for_metric(
            Matcher::Full(TIME_TO_ACK.into()),
            &[5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0],
        )
        .map_err(|e| e.to_string())?
        .install_recorder()
        .map_err(|e| e.to_string())
}

pub fn received(source: &str, outcome: &'static str) {
    counter!(RECEIVED, "source" => source.to_owned(), "outcome" => outcome).increment(1);
}

pub fn rejected(reason: &'static str) {
    counter!(REJECTED, "reason" => reason).increment(1);
}

pub fn posted(source: &str) {
    counter!(POSTED, "source" => source.to_owned()).increment(1);
}

pub fn acknowledged(source: &str, via: &'static str, secs: f64) {
    counter!(ACKNOWLEDGED, "source" => source.to_owned(), "via" => via).increment(1);
    histogram!(TIME_TO_ACK, "source" => source.to_owned()).record(secs);
}

pub fn escalated(source: &str, step: i64) {
    counter!(ESCALATED, "source" => source.to_owned(), "step" => step.to_string()).increment(1);
}
