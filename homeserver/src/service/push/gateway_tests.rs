//! Delivery to a real push gateway: a tiny axum server on 127.0.0.1 records every POST.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::routing::post;
use ruma::api::client::push::set_pusher::v3::PusherAction;
use ruma::push::{NewConditionalPushRule, NewPushRule};
use serde_json::{Value, json};

use super::RetryPolicy;
use super::tests::http_pusher;
use crate::config::Config;
use crate::service::Services;
use crate::service::test_util::{join, room, text, user};

#[derive(Clone, Default)]
struct Gateway {
    received: Arc<Mutex<Vec<Value>>>,
    /// Answer this many requests with 503 first (to exercise the retry).
    fail_first: Arc<Mutex<u32>>,
}

async fn notify(State(g): State<Gateway>, Json(body): Json<Value>) -> axum::response::Response {
    use axum::response::IntoResponse;
    g.received.lock().unwrap().push(body);
    let mut fail = g.fail_first.lock().unwrap();
    if *fail > 0 {
        *fail -= 1;
        return http::StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    Json(json!({ "rejected": [] })).into_response()
}

async fn start_gateway() -> (Gateway, String) {
    let g = Gateway::default();
    let app = axum::Router::new()
        .route("/_matrix/push/v1/notify", post(notify))
        .with_state(g.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (g, format!("http://{addr}/_matrix/push/v1/notify"))
}

fn services() -> (Services, tempfile::TempDir) {
    let (store, dir) = crate::store::sqlite::test_store();
    let config = Config {
        data_dir: dir.path().to_owned(),
        ..Config::default()
    };
    let retry = RetryPolicy {
        attempts: 3,
        first_backoff: Duration::from_millis(20),
        max_backoff: Duration::from_millis(100),
        timeout: Duration::from_secs(5),
    };
    let policy = Arc::new(handover_policy::AllowAll);
    let s = Services::build_with(config, store, policy, retry).expect("services");
    (s, dir)
}

/// Waits until the gateway has received `n` requests (or a few seconds pass).
async fn received(g: &Gateway, n: usize) -> Vec<Value> {
    for _ in 0..200 {
        if g.received.lock().unwrap().len() >= n {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Anything extra would arrive now.
    tokio::time::sleep(Duration::from_millis(200)).await;
    g.received.lock().unwrap().clone()
}

#[tokio::test]
async fn notifying_message_posts_ids_only_to_the_gateway() {
    let (g, url) = start_gateway().await;
    let (s, _d) = services();
    let alice = user(&s, "alice").await;
    let bob = user(&s, "bob").await;
    let r = room(&s, &alice, "Ward 7", false).await;
    join(&s, &r, &alice, &bob).await;
    let pusher: PusherAction = serde_json::from_value(json!({
        "kind": "http", "app_id": "uk.nhs.handover", "pushkey": "bob-phone",
        "app_display_name": "Handover", "device_display_name": "Ward phone", "lang": "en",
        "data": { "url": url, "custom": "kept" },
    }))
    .unwrap();
    s.push.set_pusher(&bob, pusher).await.unwrap();

    let event_id = text(&s, &r, &alice, "Mr Jones, bed 4: NEWS 7").await;
    let got = received(&g, 1).await;
    assert_eq!(got.len(), 1, "exactly one POST: {got:?}");
    let n = &got[0]["notification"];
    assert_eq!(n["event_id"], event_id.as_str());
    assert_eq!(n["room_id"], r.as_str());
    assert_eq!(n["counts"]["unread"], 1);
    assert_eq!(n["devices"][0]["pushkey"], "bob-phone");
    assert_eq!(n["devices"][0]["data"]["custom"], "kept");
    for leak in [
        "content",
        "sender_display_name",
        "room_name",
        "sender",
        "type",
    ] {
        assert!(
            n.get(leak).is_none(),
            "{leak} must not leave the trust: {n}"
        );
    }
    assert!(!got[0].to_string().contains("NEWS 7"));

    // Bob's own message and Alice's (no pusher) notify nobody with a pusher.
    text(&s, &r, &bob, "on my way").await;
    assert_eq!(received(&g, 2).await.len(), 1, "own message must not push");

    // Bob silences everything with an override rule whose actions do not notify.
    let quiet = NewPushRule::Override(NewConditionalPushRule::new("quiet".into(), vec![], vec![]));
    s.push.set_rule(&bob, quiet, None, None).await.unwrap();
    text(&s, &r, &alice, "another").await;
    assert_eq!(received(&g, 2).await.len(), 1, "dont_notify must not push");
}

#[tokio::test]
async fn gateway_errors_are_retried_with_backoff() {
    let (g, url) = start_gateway().await;
    *g.fail_first.lock().unwrap() = 1;
    let (s, _d) = services();
    let alice = user(&s, "alice").await;
    let bob = user(&s, "bob").await;
    let r = room(&s, &alice, "Ward 7", false).await;
    join(&s, &r, &alice, &bob).await;
    let pusher: PusherAction = serde_json::from_value(http_pusher(&url, "k")).unwrap();
    s.push.set_pusher(&bob, pusher).await.unwrap();
    let event_id = text(&s, &r, &alice, "hello").await;
    let got = received(&g, 2).await;
    assert_eq!(got.len(), 2, "one 503, then one retry that succeeds");
    assert_eq!(got[0], got[1]);
    assert_eq!(got[1]["notification"]["event_id"], event_id.as_str());
}
