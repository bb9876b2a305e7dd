//! The webhook over real HTTP: every refusal is a 4xx JSON error, stores nothing and is audited.

use std::sync::Arc;

use handover_bridge_core::signature::sign;
use handover_bridge_core::store::Db;
use serde_json::{Value, json};

use super::{FakeClock, FakePoster, engine_on};
use crate::state::MIGRATIONS;
use crate::webhook::{WebState, router};

const NOW: i64 = 1_750_000_000;

async fn serve(db: Db) -> String {
    let clock = FakeClock::default();
    clock.advance_secs(NOW);
    let mut engine = engine_on(db, &clock, &FakePoster::default());
    let mut cfg = (*engine.cfg).clone();
    cfg.webhook.max_body_bytes = 2048;
    cfg.webhook.admin_token = Some("admintoken".into());
    engine.cfg = Arc::new(cfg);
    let app = router(Arc::new(WebState {
        engine: Arc::new(engine),
        prometheus: None,
    }));
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    format!("http://{addr}")
}

async fn post(
    base: &str,
    source: Option<&str>,
    ts: i64,
    sig: Option<String>,
    body: &str,
) -> (u16, Value) {
    let mut rb = reqwest::Client::new()
        .post(format!("{base}/alerts"))
        .body(body.to_owned());
    if let Some(s) = source {
        rb = rb.header("X-Handover-Source", s);
    }
    rb = rb.header("X-Handover-Timestamp", ts.to_string());
    if let Some(s) = sig {
        rb = rb.header("X-Handover-Signature", s);
    }
    let r = rb.send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

fn good() -> String {
    json!({"source": "news2", "alert_id": "w1", "severity": "high", "title": "NEWS2 7", "text": "Bed 4"}).to_string()
}

#[tokio::test]
async fn signed_alert_accepted_once_and_every_bad_input_refused() {
    let db = Db::memory(MIGRATIONS).unwrap();
    let base = serve(db.clone()).await;
    let s = |b: &str, ts| Some(sign(b"s3cret", ts, b.as_bytes()));
    let body = good();

    let cases: Vec<(&str, Option<&str>, i64, Option<String>, String, u16, &str)> = vec![
        (
            "unknown source",
            Some("pharmacy"),
            NOW,
            s(&body, NOW),
            body.clone(),
            401,
            "unknown_source",
        ),
        (
            "no source",
            None,
            NOW,
            s(&body, NOW),
            body.clone(),
            401,
            "unknown_source",
        ),
        (
            "wrong secret",
            Some("news2"),
            NOW,
            Some(sign(b"guess", NOW, body.as_bytes())),
            body.clone(),
            401,
            "bad_signature",
        ),
        (
            "no signature",
            Some("news2"),
            NOW,
            None,
            body.clone(),
            401,
            "bad_signature",
        ),
        (
            "stale",
            Some("news2"),
            NOW - 301,
            s(&body, NOW - 301),
            body.clone(),
            401,
            "stale_timestamp",
        ),
        (
            "tampered",
            Some("news2"),
            NOW,
            s(&body, NOW),
            body.replace("Bed 4", "Bed 5"),
            401,
            "bad_signature",
        ),
        (
            "not json",
            Some("news2"),
            NOW,
            s("{nope", NOW),
            "{nope".into(),
            400,
            "not_json",
        ),
        (
            "oversized",
            Some("news2"),
            NOW,
            s(&"x".repeat(3000), NOW),
            "x".repeat(3000),
            413,
            "body_too_large",
        ),
    ];
    for (what, src, ts, sig, b, status, code) in cases {
        let (st, v) = post(&base, src, ts, sig, &b).await;
        assert_eq!(
            (st, v["error"].as_str()),
            (status, Some(code)),
            "{what}: {v}"
        );
    }
    let invalid = json!({"source": "news2", "alert_id": "w2", "severity": "urgent"}).to_string();
    let (st, v) = post(&base, Some("news2"), NOW, s(&invalid, NOW), &invalid).await;
    assert_eq!(st, 422, "{v}");
    let fields: Vec<&str> = v["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["severity", "title", "text"]);

    let rejected = db.audit_rows(Some("webhook.rejected")).unwrap();
    assert_eq!(rejected.len(), 9, "every refusal audited");
    assert!(
        rejected
            .iter()
            .all(|r| !r.detail.to_string().contains("Bed 4")),
        "no body in the audit"
    );
    let n: i64 = db
        .call_sync(|c| c.query_row("SELECT COUNT(*) FROM alerts", [], |r| r.get(0)))
        .unwrap();
    assert_eq!(n, 0, "nothing stored");

    let (st, v) = post(&base, Some("news2"), NOW, s(&body, NOW), &body).await;
    assert_eq!((st, v["rule"].as_str()), (202, Some("ward7")), "{v}");
    let (st, v) = post(&base, Some("news2"), NOW + 5, s(&body, NOW + 5), &body).await;
    assert_eq!(
        (st, v["duplicate"].as_bool()),
        (200, Some(true)),
        "a retry: {v}"
    );
    let changed = body.replace("Bed 4", "Bed 9");
    let (st, v) = post(&base, Some("news2"), NOW, s(&changed, NOW), &changed).await;
    assert_eq!((st, v["error"].as_str()), (409, Some("alert_id_conflict")));

    // Status: signed over the path.
    let path = "/alerts/news2/w1";
    let get = |sig: String| {
        reqwest::Client::new()
            .get(format!("{base}{path}"))
            .header("X-Handover-Timestamp", NOW.to_string())
            .header("X-Handover-Signature", sig)
            .send()
    };
    let r = get(sign(b"s3cret", NOW, path.as_bytes())).await.unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(
        (v["state"].as_str(), v["severity"].as_str()),
        (Some("pending"), Some("high"))
    );
    let r = get(sign(b"s3cret", NOW, b"/alerts/news2/other"))
        .await
        .unwrap();
    assert_eq!(r.status(), 401);

    // Rota import needs the admin token and valid CSV.
    let rota = |auth: &str, csv: &str| {
        reqwest::Client::new()
            .post(format!("{base}/rota"))
            .bearer_auth(auth.to_owned())
            .body(csv.to_owned())
            .send()
    };
    assert_eq!(
        rota("wrong", "role,user_id,start,end\n")
            .await
            .unwrap()
            .status(),
        401
    );
    let r = rota(
        "admintoken",
        "role,user_id,start,end\nnope,@a:localhost,2025-01-01T00:00:00Z,2025-01-02T00:00:00Z\n",
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 422);
    let r = rota("admintoken", "role,user_id,start,end\nmedreg-oncall,@a:localhost,2025-01-01T00:00:00Z,2035-01-02T00:00:00Z\n").await.unwrap();
    assert_eq!(r.status(), 200);
}
