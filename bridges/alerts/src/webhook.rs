//! The HTTP side for clinical systems:
//! - `POST /alerts`: a generic JSON alert or a FHIR `Communication` / `CommunicationRequest` /
//!   `Flag`, signed: `X-Handover-Source`, `X-Handover-Timestamp`, `X-Handover-Signature`
//!   (HMAC-SHA256 over `timestamp + "." + body`). 202 when stored (posted right after), 200 for
//!   a retry of the same alert, else a 4xx JSON error `{error, message, errors?}`: nothing is
//!   posted, and the refusal is audited (never the body).
//! - `GET /alerts/{source}/{alert_id}`: status, signed by the source over `timestamp + "." + path`.
//! - `POST /rota`: CSV rota import, `Authorization: Bearer <webhook.admin_token>`;
//!   `POST /rota/fhir`: import from the FHIR server now (rota_fhir.rs), same token.
//! - `GET /metrics`: Prometheus text exposition.

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::body::{Body, to_bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use handover_bridge_core::signature::{SIGNATURE_HEADER, TIMESTAMP_HEADER, verify};
use handover_bridge_core::store::AuditEntry;
use metrics_exporter_prometheus::PrometheusHandle;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::alert::FieldError;
use crate::engine::{AcceptError, Accepted, Engine, Poster};
use crate::metrics;

pub const SOURCE_HEADER: &str = "x-handover-source";

pub struct WebState<P: Poster> {
    pub engine: Arc<Engine<P>>,
    pub prometheus: Option<PrometheusHandle>,
}

pub fn router<P: Poster>(state: Arc<WebState<P>>) -> Router {
    Router::new()
        .route("/alerts", post(receive::<P>))
        .route("/alerts/{source}/{alert_id}", get(status::<P>))
        .route("/rota", post(rota::<P>))
        .route("/rota/fhir", post(crate::rota_fhir::import_now::<P>))
        .route("/metrics", get(prometheus::<P>))
        .fallback(|| async {
            error(
                StatusCode::NOT_FOUND,
                "not_found",
                "No such endpoint".into(),
                None,
            )
        })
        .with_state(state)
}

pub(crate) fn error(
    status: StatusCode,
    code: &str,
    message: String,
    errors: Option<Vec<FieldError>>,
) -> Response {
    let mut body = json!({"error": code, "message": message});
    if let Some(e) = errors {
        body["errors"] = json!(e);
    }
    (status, Json(body)).into_response()
}

/// A refusal: audited (code and reason, never the body), counted, answered.
pub(crate) async fn refuse<P: Poster>(
    st: &WebState<P>,
    source: Option<&str>,
    status: StatusCode,
    code: &'static str,
    message: String,
    errors: Option<Vec<FieldError>>,
) -> Response {
    metrics::rejected(code);
    let mut e = AuditEntry::new("webhook.rejected", "denied")
        .detail("code", code)
        .detail("reason", message.clone());
    if let Some(s) = source {
        e = e.actor(format!("source:{s}"));
    }
    if let Some(errs) = &errors {
        e = e.detail("errors", json!(errs));
    }
    if let Err(err) = st.engine.store.db.audit(e).await {
        tracing::error!(error = %err, "audit of a refused webhook failed");
        return error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "audit failed".into(),
            None,
        );
    }
    tracing::info!(code, source, "webhook refused");
    error(status, code, message, errors)
}

fn header_str<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

/// Finds the source and checks the signature over `payload`.
async fn authenticate<P: Poster>(
    st: &WebState<P>,
    source: Option<&str>,
    h: &HeaderMap,
    payload: &[u8],
) -> Result<String, Response> {
    let Some(source) = source.filter(|s| !s.is_empty()) else {
        return Err(refuse(
            st,
            None,
            StatusCode::UNAUTHORIZED,
            "unknown_source",
            "missing X-Handover-Source header".into(),
            None,
        )
        .await);
    };
    let secret = match st.engine.cfg.secret_of(source) {
        Some(Ok(s)) => s,
        Some(Err(e)) => {
            tracing::error!(error = e, "source secret unreadable");
            return Err(error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "source secret unreadable".into(),
                None,
            ));
        }
        None => {
            let msg = format!("unknown source {source:?}");
            return Err(refuse(
                st,
                None,
                StatusCode::UNAUTHORIZED,
                "unknown_source",
                msg,
                None,
            )
            .await);
        }
    };
    let now = st.engine.now() / 1000;
    let window = st.engine.cfg.webhook.replay_window_secs;
    if let Err(e) = verify(
        &secret,
        header_str(h, TIMESTAMP_HEADER),
        header_str(h, SIGNATURE_HEADER),
        payload,
        now,
        window,
    ) {
        return Err(refuse(
            st,
            Some(source),
            StatusCode::UNAUTHORIZED,
            e.code(),
            e.to_string(),
            None,
        )
        .await);
    }
    Ok(source.to_owned())
}

async fn receive<P: Poster>(
    State(st): State<Arc<WebState<P>>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let max = st.engine.cfg.webhook.max_body_bytes;
    let source_hdr = header_str(&headers, SOURCE_HEADER).map(str::to_owned);
    let declared =
        header_str(&headers, header::CONTENT_LENGTH.as_str()).and_then(|v| v.parse::<usize>().ok());
    let too_big = |st| async move {
        let msg = format!("body larger than {max} bytes");
        refuse(
            st,
            source_hdr.as_deref(),
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            msg,
            None,
        )
        .await
    };
    if declared.is_some_and(|n| n > max) {
        return too_big(&st).await;
    }
    let Ok(bytes) = to_bytes(body, max).await else {
        return too_big(&st).await;
    };
    let source =
        match authenticate(&st, header_str(&headers, SOURCE_HEADER), &headers, &bytes).await {
            Ok(s) => s,
            Err(r) => return r,
        };
    let value: Value = match serde_json::from_slice(&bytes) {
        Ok(v) => v,
        Err(e) => {
            let msg = format!("body is not JSON: {e}");
            return refuse(
                &st,
                Some(&source),
                StatusCode::BAD_REQUEST,
                "not_json",
                msg,
                None,
            )
            .await;
        }
    };
    let alert = match crate::alert::parse(&value, &source) {
        Ok(a) => a,
        Err(errs) => {
            let msg = format!("{} schema error(s)", errs.len());
            return refuse(
                &st,
                Some(&source),
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_body",
                msg,
                Some(errs),
            )
            .await;
        }
    };
    let alert_id = alert.alert_id.clone();
    let status_url = format!("/alerts/{source}/{alert_id}");
    let hash = hex_sha256(&bytes);
    match st.engine.accept(alert, hash).await {
        Ok(Accepted::New { rule }) => (
            StatusCode::ACCEPTED,
            Json(json!({"source": source, "alert_id": alert_id, "rule": rule, "status": status_url})),
        )
            .into_response(),
        Ok(Accepted::Duplicate) => (
            StatusCode::OK,
            Json(json!({"source": source, "alert_id": alert_id, "duplicate": true, "status": status_url})),
        )
            .into_response(),
        Err(AcceptError::NoRoute) => {
            let msg = "no routing rule matches this alert (source, severity, ward, specialty)".to_owned();
            refuse(&st, Some(&source), StatusCode::UNPROCESSABLE_ENTITY, "no_route", msg, None).await
        }
        Err(AcceptError::Conflict) => {
            let msg = format!("alert_id {alert_id:?} was already used for a different alert");
            refuse(&st, Some(&source), StatusCode::CONFLICT, "alert_id_conflict", msg, None).await
        }
        Err(AcceptError::Store(e)) => {
            tracing::error!(error = e, "storing an alert failed");
            error(StatusCode::SERVICE_UNAVAILABLE, "unavailable", "alert not stored; retry".into(), None)
        }
    }
}

fn hex_sha256(b: &[u8]) -> String {
    Sha256::digest(b)
        .iter()
        .map(|x| format!("{x:02x}"))
        .collect()
}

async fn status<P: Poster>(
    State(st): State<Arc<WebState<P>>>,
    Path((source, alert_id)): Path<(String, String)>,
    headers: HeaderMap,
    uri: axum::http::Uri,
) -> Response {
    if let Err(r) = authenticate(&st, Some(&source), &headers, uri.path().as_bytes()).await {
        return r;
    }
    match st.engine.status(&source, &alert_id).await {
        Ok(Some(s)) => Json(s).into_response(),
        Ok(None) => error(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no alert {alert_id:?} from {source:?}"),
            None,
        ),
        Err(e) => {
            tracing::error!(error = %e, "status lookup failed");
            error(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "status unavailable".into(),
                None,
            )
        }
    }
}

/// The rota endpoints need `Authorization: Bearer <webhook.admin_token>` (404 when unset).
pub(crate) async fn admin_check<P: Poster>(
    st: &WebState<P>,
    headers: &HeaderMap,
) -> Result<(), Response> {
    let Some(expected) = st
        .engine
        .cfg
        .webhook
        .admin_token
        .clone()
        .filter(|t| !t.is_empty())
    else {
        return Err(error(
            StatusCode::NOT_FOUND,
            "not_found",
            "rota import is disabled (no webhook.admin_token)".into(),
            None,
        ));
    };
    let given =
        header_str(headers, header::AUTHORIZATION.as_str()).and_then(|v| v.strip_prefix("Bearer "));
    if given.map(str::as_bytes) != Some(expected.as_bytes()) {
        return Err(refuse(
            st,
            None,
            StatusCode::UNAUTHORIZED,
            "bad_admin_token",
            "rota import needs the admin bearer token".into(),
            None,
        )
        .await);
    }
    Ok(())
}

async fn rota<P: Poster>(
    State(st): State<Arc<WebState<P>>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    if let Err(r) = admin_check(&st, &headers).await {
        return r;
    }
    let Ok(bytes) = to_bytes(body, st.engine.cfg.webhook.max_body_bytes.max(1 << 20)).await else {
        return refuse(
            &st,
            None,
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            "rota larger than 1 MiB".into(),
            None,
        )
        .await;
    };
    let Ok(text) = std::str::from_utf8(&bytes) else {
        return refuse(
            &st,
            None,
            StatusCode::BAD_REQUEST,
            "invalid_rota",
            "rota must be UTF-8 CSV".into(),
            None,
        )
        .await;
    };
    let slots = match crate::roles::parse_rota(&st.engine.cfg, text) {
        Ok(s) => s,
        Err(errs) => {
            return refuse(
                &st,
                None,
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_rota",
                "rota has errors".into(),
                Some(errs),
            )
            .await;
        }
    };
    let n = slots.len();
    match st.engine.store.import_rota(slots, "admin".into()).await {
        Ok(roles) => {
            if let Err(e) = st.engine.reconcile_roles().await {
                tracing::warn!(error = %e, "applying the new rota failed; the next tick retries");
            }
            Json(json!({"imported": n, "roles": roles})).into_response()
        }
        Err(e) => {
            tracing::error!(error = %e, "rota import failed");
            error(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "rota not stored".into(),
                None,
            )
        }
    }
}

async fn prometheus<P: Poster>(State(st): State<Arc<WebState<P>>>) -> Response {
    match &st.prometheus {
        Some(h) => (
            [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
            h.render(),
        )
            .into_response(),
        None => error(
            StatusCode::NOT_FOUND,
            "not_found",
            "metrics disabled".into(),
            None,
        ),
    }
}
