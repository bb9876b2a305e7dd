//! Delivery to push gateways: one POST per pusher with bounded retries and exponential backoff.
//!
//! Why in memory: a notification is a nudge, not the message (the message is durable in the
//! room). Retries live in a spawned task and are lost on restart; the number of deliveries in
//! flight is capped so a dead gateway cannot pile up unbounded work. A durable queue can replace
//! this module without touching its callers.

use std::sync::Arc;
use std::time::Duration;

use ruma::OwnedUserId;
use tokio::sync::Semaphore;

use super::payload::GatewayRequest;
use crate::service::blocking;
use crate::store::push::PushStore;

/// How hard to try one delivery.
#[derive(Clone, Copy, Debug)]
pub struct RetryPolicy {
    pub attempts: u32,
    pub first_backoff: Duration,
    pub max_backoff: Duration,
    pub timeout: Duration,
}

impl Default for RetryPolicy {
    /// 1 s, 2 s, 4 s, 8 s, 16 s: about half a minute of gateway trouble is ridden out.
    fn default() -> Self {
        Self {
            attempts: 6,
            first_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(60),
            timeout: Duration::from_secs(10),
        }
    }
}

/// Deliveries (including their retries) allowed in flight at once; beyond it, new ones drop.
const MAX_IN_FLIGHT: usize = 1024;

pub struct PushSender {
    client: reqwest::Client,
    retry: RetryPolicy,
    store: Arc<dyn PushStore>,
    in_flight: Arc<Semaphore>,
}

impl PushSender {
    pub fn new(store: Arc<dyn PushStore>, retry: RetryPolicy) -> Self {
        // reqwest is built without a TLS provider; installing ring here (a no-op once server.rs
        // has done it) makes the client usable whichever is constructed first, tests included.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = reqwest::Client::builder()
            .timeout(retry.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("reqwest client with the ring provider");
        Self {
            client,
            retry,
            store,
            in_flight: Arc::new(Semaphore::new(MAX_IN_FLIGHT)),
        }
    }

    /// Queues one delivery; returns at once.
    pub fn post(&self, user: OwnedUserId, req: GatewayRequest) {
        let Ok(permit) = self.in_flight.clone().try_acquire_owned() else {
            tracing::warn!(app_id = %req.app_id, "push queue full; notification dropped");
            return;
        };
        let (client, retry, store) = (self.client.clone(), self.retry, self.store.clone());
        tokio::spawn(async move {
            let _permit = permit;
            deliver(&client, retry, &store, &user, &req).await;
        });
    }
}

enum Outcome {
    Done,
    Retry,
    GiveUp,
}

async fn deliver(
    client: &reqwest::Client,
    retry: RetryPolicy,
    store: &Arc<dyn PushStore>,
    user: &OwnedUserId,
    req: &GatewayRequest,
) {
    let mut backoff = retry.first_backoff;
    for attempt in 1..=retry.attempts {
        match attempt_once(client, store, user, req).await {
            Outcome::Done | Outcome::GiveUp => return,
            Outcome::Retry if attempt < retry.attempts => {
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(retry.max_backoff);
            }
            Outcome::Retry => {}
        }
    }
    // Only ids in logs: the payload may hold clinical detail under a permissive policy.
    tracing::warn!(app_id = %req.app_id, attempts = retry.attempts, "push gateway unreachable; gave up");
}

async fn attempt_once(
    client: &reqwest::Client,
    store: &Arc<dyn PushStore>,
    user: &OwnedUserId,
    req: &GatewayRequest,
) -> Outcome {
    let res = client
        .post(&req.url)
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(req.body.clone())
        .send()
        .await;
    let res = match res {
        Ok(r) => r,
        Err(e) => {
            tracing::debug!(error = %e, app_id = %req.app_id, "push gateway request failed");
            return Outcome::Retry;
        }
    };
    let status = res.status();
    if status.is_success() {
        let rejected = res
            .json::<serde_json::Value>()
            .await
            .ok()
            .and_then(|v| v.get("rejected").cloned())
            .and_then(|v| serde_json::from_value::<Vec<String>>(v).ok())
            .unwrap_or_default();
        // The spec: a rejected pushkey's pusher MUST be removed.
        if rejected.contains(&req.pushkey) {
            let (store, u, a, k) = (
                store.clone(),
                user.to_string(),
                req.app_id.clone(),
                req.pushkey.clone(),
            );
            let _ = blocking(move || Ok(store.delete_pusher(&u, &a, &k)?)).await;
            tracing::info!(app_id = %req.app_id, "pushkey rejected by gateway; pusher removed");
        }
        Outcome::Done
    } else if status.is_server_error() || status == http::StatusCode::TOO_MANY_REQUESTS {
        Outcome::Retry
    } else {
        tracing::warn!(app_id = %req.app_id, status = status.as_u16(), "push gateway refused");
        Outcome::GiveUp
    }
}
