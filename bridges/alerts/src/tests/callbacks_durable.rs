//! Status callbacks are queued in SQLite and retried with backoff until accepted, in order,
//! across a restart of the bridge (a new `Callbacks` on the same database).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use handover_bridge_core::Clock;
use handover_bridge_core::signature::verify;
use handover_bridge_core::store::Db;
use serde_json::{Value, json};

use super::{FakeClock, config};
use crate::callback::Callbacks;
use crate::state::MIGRATIONS;

/// A receiver that refuses the first `fail` POSTs, then records the accepted bodies.
async fn receiver(fail: usize) -> (String, Arc<Mutex<Vec<Value>>>, Arc<AtomicUsize>) {
    let got = Arc::new(Mutex::new(Vec::new()));
    let tries = Arc::new(AtomicUsize::new(0));
    let (g, t) = (got.clone(), tries.clone());
    let app = axum::Router::new().route(
        "/cb",
        axum::routing::post(move |h: HeaderMap, body: Bytes| {
            let (g, t) = (g.clone(), t.clone());
            async move {
                if t.fetch_add(1, Ordering::SeqCst) < fail {
                    return StatusCode::SERVICE_UNAVAILABLE;
                }
                let ts = h["x-handover-timestamp"].to_str().unwrap();
                let sig = h["x-handover-signature"].to_str().unwrap();
                let now: i64 = ts.parse().unwrap();
                verify(b"s3cret", Some(ts), Some(sig), &body, now, 5)
                    .expect("signed with the source's secret");
                g.lock()
                    .unwrap()
                    .push(serde_json::from_slice(&body).unwrap());
                StatusCode::OK
            }
        }),
    );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    (format!("http://{addr}/cb"), got, tries)
}

#[tokio::test]
async fn callbacks_are_retried_with_backoff_in_order_and_survive_a_restart() {
    let (url, got, tries) = receiver(2).await;
    let mut cfg = config();
    cfg.sources[0].callback_url = Some(url);
    cfg.callbacks.first_backoff_ms = 1000;
    let cfg = Arc::new(cfg);
    let db = Db::memory(MIGRATIONS).unwrap();
    let clock = FakeClock::default();
    clock.advance_secs(1_750_000_000);
    let cb = Callbacks::new(cfg.clone(), db.clone(), Arc::new(clock.clone()));
    cb.enqueue("news2", "a1", json!({"alert_id": "a1", "state": "open"}))
        .await
        .unwrap();
    cb.enqueue(
        "news2",
        "a1",
        json!({"alert_id": "a1", "state": "acknowledged"}),
    )
    .await
    .unwrap();
    // First attempt refused: retried after 1 s, the second change waits behind it.
    let next = cb.deliver_due().await.unwrap().unwrap();
    assert_eq!(next, clock.now_ms() + 1000);
    assert_eq!(tries.load(Ordering::SeqCst), 1);
    cb.deliver_due().await.unwrap();
    assert_eq!(tries.load(Ordering::SeqCst), 1, "not due yet");

    // The bridge restarts: the queue is in the database.
    drop(cb);
    let cb = Callbacks::new(cfg.clone(), db.clone(), Arc::new(clock.clone()));
    assert_eq!(cb.pending().await.unwrap(), 2);
    clock.advance_secs(1);
    let next = cb.deliver_due().await.unwrap().unwrap();
    assert_eq!(next, clock.now_ms() + 2000, "backoff doubles");
    clock.advance_secs(2);
    cb.deliver_due().await.unwrap();
    cb.deliver_due().await.unwrap();
    let got = got.lock().unwrap().clone();
    let states: Vec<&str> = got.iter().map(|v| v["state"].as_str().unwrap()).collect();
    assert_eq!(states, ["open", "acknowledged"], "in order, once each");
    assert_eq!(cb.pending().await.unwrap(), 0);
}

#[tokio::test]
async fn a_callback_never_accepted_is_dropped_after_the_limit_and_audited() {
    let (url, got, _) = receiver(usize::MAX).await;
    let mut cfg = config();
    cfg.sources[0].callback_url = Some(url);
    cfg.callbacks.give_up_after_secs = 60;
    let cfg = Arc::new(cfg);
    let db = Db::memory(MIGRATIONS).unwrap();
    let clock = FakeClock::default();
    clock.advance_secs(1_750_000_000);
    let cb = Callbacks::new(cfg, db.clone(), Arc::new(clock.clone()));
    cb.enqueue("news2", "a9", json!({"alert_id": "a9"}))
        .await
        .unwrap();
    cb.deliver_due().await.unwrap();
    clock.advance_secs(61);
    cb.deliver_due().await.unwrap();
    assert_eq!(cb.pending().await.unwrap(), 0);
    assert!(got.lock().unwrap().is_empty());
    let rows = db.audit_rows(Some("callback.abandoned")).unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].target.as_deref(), Some("news2/a9"));
}
