//! Optional status callbacks: on each change of an alert (posted, read, acknowledged,
//! escalated) its status JSON is POSTed to the source's `callback_url`, signed like the
//! inbound webhook (`X-Handover-Timestamp`, `X-Handover-Signature`) with the source's secret.
//! Best effort (3 tries): the status endpoint stays the source of truth.

use std::sync::Arc;
use std::time::Duration;

use handover_bridge_core::signature::{SIGNATURE_HEADER, TIMESTAMP_HEADER, sign};
use serde_json::Value;

use crate::config::Config;

#[derive(Clone)]
pub struct Callbacks {
    cfg: Arc<Config>,
    http: reqwest::Client,
}

impl Callbacks {
    pub fn new(cfg: Arc<Config>) -> Self {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .expect("HTTP client");
        Self { cfg, http }
    }

    pub fn notify(&self, source: &str, status: Value) {
        let Some(url) = self.cfg.source(source).and_then(|s| s.callback_url.clone()) else {
            return;
        };
        let Some(Ok(secret)) = self.cfg.secret_of(source) else {
            return;
        };
        let http = self.http.clone();
        tokio::spawn(async move {
            let body = status.to_string();
            for attempt in 0..3u32 {
                let ts = handover_bridge_core::now_ms() / 1000;
                let sent = http
                    .post(&url)
                    .header("content-type", "application/json")
                    .header(TIMESTAMP_HEADER, ts.to_string())
                    .header(SIGNATURE_HEADER, sign(&secret, ts, body.as_bytes()))
                    .body(body.clone())
                    .send()
                    .await;
                match sent {
                    Ok(r) if r.status().is_success() => return,
                    Ok(r) => {
                        tracing::warn!(status = %r.status(), attempt, "status callback refused")
                    }
                    Err(e) => tracing::warn!(error = %e, attempt, "status callback failed"),
                }
                tokio::time::sleep(Duration::from_millis(500 << attempt)).await;
            }
        });
    }
}
