//! Operations (issue 15): `/metrics` on its own listener in Prometheus text format, and the
//! `/health` and `/ready` probes on the client listener.

use handover_e2e::account::{Account, eventually};
use handover_e2e::*;

/// The value of the series `name{labels}` (labels exactly as rendered, in order), if present.
fn series(text: &str, name_and_labels: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(name_and_labels)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
}

/// The sum of every series of `name` whose label set contains all of `labels`.
fn sum(text: &str, name: &str, labels: &[&str]) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (key, value) = l.rsplit_once(' ')?;
            let rest = key.strip_prefix(name)?;
            if !(rest.is_empty() || rest.starts_with('{')) {
                return None;
            }
            labels
                .iter()
                .all(|want| rest.contains(want))
                .then(|| value.parse::<f64>().ok())?
        })
        .sum()
}

async fn scrape(url: &str) -> String {
    let r = reqwest::get(format!("{url}/metrics"))
        .await
        .expect("scrape");
    assert_eq!(r.status(), 200);
    let ct = r.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(ct.starts_with("text/plain"), "{ct}");
    r.text().await.unwrap()
}

const SEND_ROUTE: &str = "route=\"/_matrix/client/v3/rooms/{room_id}/send/{event_type}/{txn_id}\"";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_move_with_traffic_and_probes_answer() {
    with_timeout(180, async {
        let opts = ServerOptions {
            extra_toml: "[metrics]\nlisten = \"127.0.0.1:0\"\n".into(),
            ..Default::default()
        };
        let server = TestServer::start_with(opts).await;
        let murl = server.metrics_url().expect("metrics listener").to_owned();
        let http = server.http();

        // Probes on the client listener.
        let h = http.get("/health", None).await;
        assert_eq!(h.status, 200);
        assert_eq!(h.json()["status"], "ok");
        let r = http.get("/ready", None).await;
        assert_eq!(r.status, 200, "{}", r.text());
        let ready = r.json();
        assert_eq!(ready["status"], "ready");
        assert_eq!(ready["checks"]["database"]["ok"], true);
        assert_eq!(ready["checks"]["media"]["ok"], true);
        assert_eq!(ready["checks"]["federation_list"]["ok"], true);
        // /metrics is not on the client listener, and the probes are not on the metrics one.
        assert_eq!(http.get("/metrics", None).await.status, 404);
        let on_metrics = reqwest::get(format!("{murl}/ready")).await.unwrap();
        assert_eq!(on_metrics.status(), 404);

        let alice = Account::register(server.http(), "alice").await;
        let room = alice
            .create_room(&json!({"preset": "public_chat", "name": "Ward 7"}))
            .await;
        for i in 0..3 {
            alice.send_text(&room, &format!("obs {i}")).await;
        }
        let before = scrape(&murl).await;
        let sends = sum(
            &before,
            "handover_http_requests_total",
            &[SEND_ROUTE, "status=\"200\""],
        );
        assert!(sends >= 3.0, "sends counted: {sends}\n{before}");
        // Route templates only: no room id, user id or token ever becomes a label.
        assert!(!before.contains(&room), "a raw room id in the metrics");
        assert!(!before.contains("@alice"), "a user id in the metrics");
        assert!(!before.contains(&alice.token), "a token in the metrics");
        let local_events = sum(
            &before,
            "handover_events_committed_total",
            &["origin=\"local\""],
        );
        assert!(local_events >= 3.0 + 5.0, "events: {local_events}");
        assert!(
            sum(
                &before,
                "handover_http_request_duration_seconds_bucket",
                &[SEND_ROUTE, "le=\"+Inf\""]
            ) >= 3.0,
            "latency histogram:\n{before}"
        );
        assert!(sum(&before, "handover_db_write_batch_size_count", &[]) >= 1.0);
        assert!(before.contains("# TYPE handover_http_request_duration_seconds histogram"));

        // The series move: two more sends, one policy denial.
        alice.send_text(&room, "obs 3").await;
        alice.send_text(&room, "obs 4").await;
        alice
            .post(
                "/_matrix/client/v3/createRoom",
                &json!({"name": "Bed 4 943 476 5919"}),
            )
            .await
            .assert_rule(403, "M_FORBIDDEN", "nhs_number_in_metadata");
        let after = scrape(&murl).await;
        let sends_after = sum(
            &after,
            "handover_http_requests_total",
            &[SEND_ROUTE, "status=\"200\""],
        );
        assert_eq!(sends_after, sends + 2.0);
        assert_eq!(
            sum(
                &after,
                "handover_events_committed_total",
                &["origin=\"local\""]
            ),
            local_events + 2.0
        );
        assert_eq!(
            series(
                &after,
                "handover_policy_denials_total{rule=\"nhs_number_in_metadata\"}"
            ),
            Some(1.0),
            "{after}"
        );
        assert!(
            sum(
                &after,
                "handover_http_requests_total",
                &["route=\"/_matrix/client/v3/createRoom\"", "status=\"403\""]
            ) >= 1.0
        );

        // A long-polling /sync is a sync waiter while it waits.
        let since = alice.get("/_matrix/client/v3/sync").await.ok()["next_batch"]
            .as_str()
            .unwrap()
            .to_owned();
        let poll = {
            let a = alice.http.clone();
            let token = alice.token.clone();
            tokio::spawn(async move {
                a.get(
                    &format!("/_matrix/client/v3/sync?since={since}&timeout=20000"),
                    Some(&token),
                )
                .await
            })
        };
        eventually(30, "a sync waiter is counted", || {
            let murl = murl.clone();
            async move {
                let text = scrape(&murl).await;
                (series(&text, "handover_sync_waiters") >= Some(1.0)).then_some(())
            }
        })
        .await;
        alice.send_text(&room, "wake").await;
        let woke = within(30, "the long-poll", poll).await.unwrap();
        assert_eq!(woke.status, 200);
        eventually(30, "no sync waiter left", || {
            let murl = murl.clone();
            async move {
                let text = scrape(&murl).await;
                (series(&text, "handover_sync_waiters") == Some(0.0)).then_some(())
            }
        })
        .await;
    })
    .await;
}
