//! Operations endpoints (not Matrix): `/health` and `/ready` on the client listener, and the
//! router of the metrics listener (`/metrics`). docs/OPERATIONS.md.

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Json, Response};
use axum::routing::get;

use crate::metrics::Metrics;
use crate::service::Services;

/// `/health` and `/ready`, merged into the client router.
pub fn routes(router: Router<Services>) -> Router<Services> {
    router
        .route("/health", get(health))
        .route("/ready", get(ready))
}

/// Liveness: the process answers HTTP. Nothing else is checked, so a restart is never
/// triggered by a dependency (the database, a disk) that a restart would not fix.
async fn health() -> Json<serde_json::Value> {
    Json(serde_json::json!({ "status": "ok" }))
}

/// Readiness: 200 when every check passes, else 503 naming what is not ready.
async fn ready(State(s): State<Services>) -> Response {
    let r = s.health.ready(s.federation_list.as_ref()).await;
    let code = if r.is_ready() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, Json(r)).into_response()
}

/// What the metrics listener serves: `GET /metrics` only.
pub fn metrics_router(metrics: Arc<Metrics>, services: Services) -> Router {
    Router::new()
        .route("/metrics", get(scrape))
        .with_state((metrics, services))
}

async fn scrape(State((metrics, services)): State<(Arc<Metrics>, Services)>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        metrics.render(services.notifier.waiters(), services.outbox.depths()),
    )
        .into_response()
}
