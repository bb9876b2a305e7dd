//! The alerts bridge end to end: the real `handover` and `handover-alerts` binaries, staff as
//! matrix-sdk clients. Signed alert → encrypted room (decrypted by the member); a read receipt
//! is recorded but does not acknowledge; no acknowledgement → escalation to the on-call holder
//! from the imported rota; ✅ → acknowledged; the bridge killed mid-escalation neither loses
//! nor repeats the step; every bad input refused with nothing posted.

use std::path::Path;
use std::time::Duration;

use handover_e2e::alerts::{AlertsBridge, free_port, now_secs};
use handover_e2e::*;
use matrix_sdk::Client;
use matrix_sdk::room::MessagesOptions;
use matrix_sdk::ruma::api::client::receipt::create_receipt::v3::ReceiptType;
use matrix_sdk::ruma::events::reaction::ReactionEventContent;
use matrix_sdk::ruma::events::receipt::ReceiptThread;
use matrix_sdk::ruma::events::relation::Annotation;
use matrix_sdk::ruma::{EventId, OwnedRoomId};
use serde_json::Value;

pub(crate) const SECRET: &str = "news2-secret-for-e2e";

pub(crate) fn bridge_config(dir: &Path, as_port: u16) -> String {
    format!(
        r#"[appservice]
id = "alerts"
homeserver_url = "http://127.0.0.1:1"
server_name = "localhost"
listen = "127.0.0.1:{as_port}"
as_token = "as-token-e2e-7f3a9c"
hs_token = "hs-token-e2e-91b2d4"
sender_localpart = "alerts"

[webhook]
listen = "127.0.0.1:0"
max_body_bytes = 4096
replay_window_secs = 300
admin_token = "rota-admin-e2e"

[state]
path = {db}

[escalation]
tick_ms = 200

[log]
level = "info,matrix_sdk=warn,matrix_sdk_crypto=warn"

[[sources]]
id = "news2"
secret = "{SECRET}"

[[rooms]]
id = "ward7"
name = "Ward 7 alerts"
members = ["@nurse:localhost"]

[[roles]]
id = "medreg-oncall"
name = "Medical registrar on call"

[[rules]]
name = "ward7-news2"
sources = ["news2"]
target = "room:ward7"
[[rules.escalation]]
after_secs = 4
to = "role:medreg-oncall"
"#,
        db = toml_str(&dir.join("alerts.db").to_string_lossy()),
    )
}

/// Server with the bridge's registration, staff accounts, the bridge itself.
pub(crate) async fn setup(
    staff: &[&str],
) -> (TestServer, Vec<Client>, AlertsBridge, tempfile::TempDir) {
    let dir = tempfile::Builder::new()
        .prefix("handover-alerts-e2e-")
        .tempdir()
        .unwrap();
    let (config, reg) =
        AlertsBridge::write_config(dir.path(), &bridge_config(dir.path(), free_port())).await;
    let opts = ServerOptions {
        extra_toml: format!(
            "[appservices]\nregistration_files = [{}]\n",
            toml_str(&reg.to_string_lossy())
        ),
        ..Default::default()
    };
    let server = TestServer::start_with(opts).await;
    let mut clients = Vec::new();
    for s in staff {
        clients.push(server.register(s).await);
    }
    let bridge = AlertsBridge::start(config, server.url(), dir.path()).await;
    (server, clients, bridge, dir)
}

pub(crate) fn alert(id: &str) -> String {
    json!({"source": "news2", "alert_id": id, "severity": "high", "title": "NEWS2 score 7",
           "text": "Bed 4: RR 28, SpO2 91%", "patient": "Patient/uk-core-p1",
           "route": {"ward": "ward-7"}})
    .to_string()
}

/// Accepts the first invite and returns the room.
pub(crate) async fn join_invite(c: &Client, who: &str) -> OwnedRoomId {
    let room_id = sync_until(c, 45, &format!("{who} is invited"), |r| {
        invited_rooms(r).into_iter().next()
    })
    .await;
    c.get_room(&room_id).unwrap().join().await.expect("join");
    room_id
}

/// Waits until `c` has *decrypted* an alert message with this id (and `pred`) in `room_id`;
/// returns the event JSON. Reads /messages each round, so late room keys are used.
pub(crate) async fn wait_alert(
    c: &Client,
    room_id: &OwnedRoomId,
    id: &str,
    what: &str,
    pred: impl Fn(&Value) -> bool,
) -> Value {
    within(60, what, async {
        loop {
            let _ = c
                .sync_once(
                    matrix_sdk::config::SyncSettings::default().timeout(Duration::from_millis(300)),
                )
                .await;
            if let Some(room) = c.get_room(room_id) {
                if let Ok(msgs) = room.messages(MessagesOptions::backward()).await {
                    for ev in msgs.chunk.iter().filter(|e| e.encryption_info().is_some()) {
                        let j = raw_json(ev.raw());
                        if j["content"]["org.handover.alert"]["id"] == id && pred(&j) {
                            return j;
                        }
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    })
    .await
}

pub(crate) async fn status_until(
    b: &AlertsBridge,
    id: &str,
    what: &str,
    pred: impl Fn(&Value) -> bool,
) -> Value {
    account::eventually(60, what, || async {
        let (code, v) = b.status("news2", SECRET, id).await;
        (code == 200 && pred(&v)).then_some(v)
    })
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn alert_to_room_receipt_escalation_ack_and_bridge_restart() {
    with_timeout(400, async {
        let (_server, clients, mut bridge, _dir) = setup(&["nurse", "reg"]).await;
        let (nurse, reg) = (&clients[0], &clients[1]);
        let ward = join_invite(nurse, "nurse").await;

        // The rota makes @reg the medical registrar on call: invited into the role's room.
        let now = chrono_like(now_secs() - 3600);
        let until = chrono_like(now_secs() + 86_400);
        let csv = format!("role,user_id,start,end\nmedreg-oncall,@reg:localhost,{now},{until}\n");
        let r = reqwest::Client::new()
            .post(format!("{}/rota", bridge.webhook))
            .bearer_auth("rota-admin-e2e")
            .body(csv)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
        let role_room = join_invite(reg, "reg").await;

        // Signed alert → 202 → the nurse decrypts it in the encrypted ward room.
        let (code, v) = bridge.send("news2", SECRET, now_secs(), &alert("a1")).await;
        assert_eq!(code, 202, "{v}");
        let ev = wait_alert(nurse, &ward, "a1", "nurse decrypts alert a1", |_| true).await;
        assert_eq!(ev["content"]["org.handover.alert"]["severity"], "high");
        assert_eq!(
            ev["content"]["org.handover.alert"]["patient"],
            "Patient/uk-core-p1"
        );
        assert!(
            ev["content"]["body"]
                .as_str()
                .unwrap()
                .contains("NEWS2 score 7")
        );
        assert!(
            ev["content"]["formatted_body"]
                .as_str()
                .unwrap()
                .contains("<strong>")
        );
        let a1_event = ev["event_id"].as_str().unwrap().to_owned();

        // A read receipt is "read by", never an acknowledgement.
        let room = nurse.get_room(&ward).unwrap();
        room.send_single_receipt(
            ReceiptType::Read,
            ReceiptThread::Unthreaded,
            EventId::parse(&a1_event).unwrap(),
        )
        .await
        .unwrap();
        let s = status_until(&bridge, "a1", "read_by nurse", |v| {
            v["read_by"].to_string().contains("@nurse:localhost")
        })
        .await;
        assert_ne!(s["state"], "acknowledged");

        // Not acknowledged within 4 s → escalated to the on-call registrar, who decrypts it.
        let esc = wait_alert(reg, &role_room, "a1", "reg receives the escalation", |_| {
            true
        })
        .await;
        assert!(
            esc["content"]["body"]
                .as_str()
                .unwrap()
                .contains("Escalated"),
            "{esc}"
        );
        let s = status_until(&bridge, "a1", "escalated to reg", |v| {
            v["escalated"].as_array().is_some_and(|a| !a.is_empty())
        })
        .await;
        assert_eq!(s["escalated"][0]["recipient"], "@reg:localhost");

        // ✅ by the registrar → acknowledged by them, and the alert is edited to say so.
        let esc_id = EventId::parse(esc["event_id"].as_str().unwrap()).unwrap();
        reg.get_room(&role_room)
            .unwrap()
            .send(ReactionEventContent::new(Annotation::new(
                esc_id,
                "✅".to_owned(),
            )))
            .await
            .unwrap();
        let s = status_until(&bridge, "a1", "acknowledged", |v| {
            v["state"] == "acknowledged"
        })
        .await;
        assert_eq!(s["acknowledged"]["by"], "@reg:localhost");
        assert_eq!(s["acknowledged"]["via"], "reaction");
        wait_alert(
            nurse,
            &ward,
            "a1",
            "nurse sees the acknowledgement edit",
            |j| {
                j["content"]["m.new_content"]["body"]
                    .as_str()
                    .is_some_and(|b| b.contains("Acknowledged by @reg:localhost"))
            },
        )
        .await;
        // A retry of the same webhook is a duplicate: nothing posted again.
        let (code, v) = bridge.send("news2", SECRET, now_secs(), &alert("a1")).await;
        assert_eq!((code, v["duplicate"].as_bool()), (200, Some(true)), "{v}");

        // Bridge killed after posting a2 and before its escalation is due; restarted after.
        let (code, _) = bridge.send("news2", SECRET, now_secs(), &alert("a2")).await;
        assert_eq!(code, 202);
        status_until(&bridge, "a2", "a2 delivered", |v| v["state"] == "open").await;
        bridge.kill().await;
        tokio::time::sleep(Duration::from_secs(5)).await;
        bridge.restart().await;
        let s = status_until(&bridge, "a2", "a2 escalated after restart", |v| {
            v["escalated"].as_array().is_some_and(|a| !a.is_empty())
        })
        .await;
        assert_eq!(s["escalated"][0]["recipient"], "@reg:localhost");
        // The new bot device's message decrypts for the holder.
        wait_alert(
            reg,
            &role_room,
            "a2",
            "reg decrypts a2's escalation from the restarted bot",
            |_| true,
        )
        .await;
        // Counters are per process: this one escalated a2.
        let metrics = bridge.get_text("/metrics").await;
        assert!(
            metrics.contains("handover_alerts_escalated_total{source=\"news2\",step=\"1\"} 1"),
            "{metrics}"
        );
        bridge.restart().await;
        tokio::time::sleep(Duration::from_secs(2)).await;
        let (_, s) = bridge.status("news2", SECRET, "a2").await;
        assert_eq!(
            s["escalated"].as_array().unwrap().len(),
            1,
            "not repeated by a restart: {s}"
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_webhook_input_is_refused_and_nothing_is_posted() {
    with_timeout(200, async {
        let (_server, clients, bridge, _dir) = setup(&["nurse"]).await;
        let _ward = join_invite(&clients[0], "nurse").await;
        let now = now_secs();
        let body = alert("bad1");
        let sig = handover_e2e::alerts::openssl_sign(SECRET, &format!("{now}.{body}")).await;
        let stale = handover_e2e::alerts::openssl_sign(SECRET, &format!("{}.{body}", now - 600)).await;
        let big = "x".repeat(5000);
        let cases: Vec<(&str, Option<&str>, Option<i64>, Option<String>, String, u16, &str)> = vec![
            ("unknown source", Some("pharmacy"), Some(now), Some(sig.clone()), body.clone(), 401, "unknown_source"),
            ("bad signature", Some("news2"), Some(now), Some(format!("sha256={}", "0".repeat(64))), body.clone(), 401, "bad_signature"),
            ("no signature", Some("news2"), Some(now), None, body.clone(), 401, "bad_signature"),
            ("stale timestamp", Some("news2"), Some(now - 600), Some(stale), body.clone(), 401, "stale_timestamp"),
            ("body changed after signing", Some("news2"), Some(now), Some(sig.clone()), body.replace("Bed 4", "Bed 5"), 401, "bad_signature"),
            ("oversized", Some("news2"), Some(now), Some(sig.clone()), big, 413, "body_too_large"),
        ];
        for (what, src, ts, sig, b, status, code) in cases {
            let (st, v) = bridge.send_raw(src, ts, sig.as_deref(), &b).await;
            assert_eq!((st, v["error"].as_str()), (status, Some(code)), "{what}: {v}");
        }
        let (st, v) = bridge.send("news2", SECRET, now, "not json").await;
        assert_eq!((st, v["error"].as_str()), (400, Some("not_json")), "{v}");
        let invalid = json!({"source": "news2", "alert_id": "bad2", "severity": "urgent", "patient": "9434765919"}).to_string();
        let (st, v) = bridge.send("news2", SECRET, now, &invalid).await;
        assert_eq!(st, 422, "{v}");
        let fields: Vec<&str> = v["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap()).collect();
        assert_eq!(fields, ["severity", "title", "text", "patient"], "{v}");
        let flag = json!({"resourceType": "Flag", "id": "bad3", "status": "active"}).to_string();
        let (st, v) = bridge.send("news2", SECRET, now, &flag).await;
        assert_eq!((st, v["error"].as_str()), (422, Some("invalid_body")), "{v}");
        // Nothing stored, so nothing posted.
        for id in ["bad1", "bad2", "bad3"] {
            assert_eq!(bridge.status("news2", SECRET, id).await.0, 404, "{id}");
        }
        let metrics = bridge.get_text("/metrics").await;
        assert!(metrics.contains("handover_alerts_rejected_total{reason=\"bad_signature\"} 3"), "{metrics}");
        // A valid FHIR Communication is accepted (the same endpoint).
        let comm = json!({"resourceType": "Communication", "id": "lab-1", "status": "completed", "priority": "stat",
                          "subject": {"reference": "Patient/uk-core-p1"}, "topic": {"text": "Critical K+"},
                          "payload": [{"contentString": "K+ 6.9 mmol/L"}]}).to_string();
        let (st, v) = bridge.send("news2", SECRET, now, &comm).await;
        assert_eq!(st, 202, "{v}");
        let s = status_until(&bridge, "lab-1", "lab-1 delivered", |v| v["state"] == "open").await;
        assert_eq!((s["kind"].as_str(), s["severity"].as_str()), (Some("Communication"), Some("critical")));
    })
    .await;
}

/// RFC 3339 UTC for Unix seconds (no date crate in this workspace).
pub(crate) fn chrono_like(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Civil from days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}
