//! Push: an http pusher (format `event_id_only`) pointed at a tiny in-test push gateway on
//! loopback; a message notifies once with ids only (no content), a `dont_notify` room rule
//! silences the room.

use std::time::Duration;

use handover_e2e::*;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

/// A received gateway request: `(method, path, JSON body)`.
type GatewayRequest = (String, String, Value);

/// Starts a push gateway on 127.0.0.1:0; every request is forwarded to the returned channel
/// and answered `200 {"rejected": []}`.
async fn start_gateway() -> (u16, mpsc::UnboundedReceiver<GatewayRequest>) {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind gateway");
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((sock, _)) = listener.accept().await {
            let tx = tx.clone();
            tokio::spawn(async move {
                let _ = serve_conn(sock, tx).await;
            });
        }
    });
    (port, rx)
}

async fn serve_conn(
    mut sock: TcpStream,
    tx: mpsc::UnboundedSender<GatewayRequest>,
) -> std::io::Result<()> {
    let mut buf = Vec::new();
    let mut tmp = [0u8; 8192];
    loop {
        // Parse as many complete requests as the buffer holds (keep-alive).
        while let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_string();
            let mut lines = head.split("\r\n");
            let mut first = lines.next().unwrap_or("").split_whitespace();
            let method = first.next().unwrap_or("").to_owned();
            let path = first.next().unwrap_or("").to_owned();
            let mut len = 0usize;
            for l in lines {
                if let Some((k, v)) = l.split_once(':') {
                    if k.trim().eq_ignore_ascii_case("content-length") {
                        len = v.trim().parse().unwrap_or(0);
                    }
                }
            }
            if buf.len() < end + 4 + len {
                break;
            }
            let body: Value =
                serde_json::from_slice(&buf[end + 4..end + 4 + len]).unwrap_or(Value::Null);
            buf.drain(..end + 4 + len);
            let _ = tx.send((method, path, body));
            let resp = b"{\"rejected\":[]}";
            sock.write_all(
                format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
                    resp.len()
                )
                .as_bytes(),
            )
            .await?;
            sock.write_all(resp).await?;
        }
        let n = sock.read(&mut tmp).await?;
        if n == 0 {
            return Ok(());
        }
        buf.extend_from_slice(&tmp[..n]);
    }
}

async fn send_message(http: &Http, token: &str, room_id: &str, txn: &str, body: &str) -> String {
    http.put_json(
        &format!(
            "/_matrix/client/v3/rooms/{}/send/m.room.message/{txn}",
            enc(room_id)
        ),
        Some(token),
        &json!({"msgtype": "m.text", "body": body}),
    )
    .await
    .ok()["event_id"]
        .as_str()
        .expect("event_id")
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_pusher_event_id_only_and_dont_notify_room_rule() {
    with_timeout(120, async {
        let server = TestServer::start().await;
        let http = server.http();
        let (_alice_id, alice) = http.register("alice", PASSWORD).await;
        let (_bob_id, bob) = http.register("bob", PASSWORD).await;
        let (port, mut gateway) = start_gateway().await;
        let url = format!("http://127.0.0.1:{port}/_matrix/push/v1/notify");

        // Bob registers an http pusher on loopback with format event_id_only.
        http.post_json(
            "/_matrix/client/v3/pushers/set",
            Some(&bob),
            &json!({
                "kind": "http",
                "app_id": "org.handover.e2e",
                "pushkey": "bob-pushkey-1",
                "app_display_name": "e2e",
                "device_display_name": "e2e device",
                "lang": "en",
                "data": {"url": url, "format": "event_id_only"},
            }),
        )
        .await
        .ok();
        let pushers = http
            .get("/_matrix/client/v3/pushers", Some(&bob))
            .await
            .ok();
        assert_eq!(
            pushers["pushers"][0]["pushkey"], "bob-pushkey-1",
            "{pushers}"
        );
        assert_eq!(
            pushers["pushers"][0]["data"]["url"],
            url.as_str(),
            "{pushers}"
        );

        // A two-member room (alice invites, bob joins).
        let room_id = http
            .create_room(
                &alice,
                &json!({"name": "push room", "invite": ["@bob:localhost"], "is_direct": false}),
            )
            .await;
        http.post_json(
            &format!("/_matrix/client/v3/join/{}", enc(&room_id)),
            Some(&bob),
            &json!({}),
        )
        .await
        .ok();
        // The invite may notify bob (.m.rule.invite_for_me): drain until 1.5 s of quiet.
        while let Ok(Some(_)) =
            tokio::time::timeout(Duration::from_millis(1500), gateway.recv()).await
        {}

        // Alice sends a message → exactly one notification with ids only.
        let event_id = send_message(&http, &alice, &room_id, "t1", "ping bob").await;
        let (method, path, body) = within(
            20,
            "the push gateway receives a notification",
            gateway.recv(),
        )
        .await
        .expect("gateway channel open");
        assert_eq!(method, "POST");
        assert_eq!(path, "/_matrix/push/v1/notify");
        let n = &body["notification"];
        assert_eq!(n["event_id"], event_id.as_str(), "notification: {body}");
        assert_eq!(n["room_id"], room_id.as_str(), "notification: {body}");
        for field in [
            "content",
            "sender_display_name",
            "room_name",
            "sender",
            "type",
        ] {
            assert!(
                n.get(field).is_none(),
                "event_id_only notification must not carry `{field}`: {body}"
            );
        }
        assert_eq!(
            n["devices"][0]["pushkey"], "bob-pushkey-1",
            "notification: {body}"
        );
        assert_eq!(
            n["devices"][0]["app_id"], "org.handover.e2e",
            "notification: {body}"
        );
        assert!(
            n["counts"]["unread"].as_u64().is_some_and(|u| u >= 1),
            "notification counts.unread must be >= 1: {body}"
        );
        // ... and only one.
        tokio::time::sleep(Duration::from_secs(2)).await;
        if let Ok(extra) = gateway.try_recv() {
            panic!("expected exactly one notification, got another: {extra:?}");
        }

        // Bob silences the room with a room rule whose actions are empty (don't notify).
        http.put_json(
            &format!("/_matrix/client/v3/pushrules/global/room/{}", enc(&room_id)),
            Some(&bob),
            &json!({"actions": []}),
        )
        .await
        .ok();
        let rule = http
            .get(
                &format!("/_matrix/client/v3/pushrules/global/room/{}", enc(&room_id)),
                Some(&bob),
            )
            .await
            .ok();
        assert_eq!(rule["rule_id"], room_id.as_str(), "{rule}");
        assert_eq!(rule["enabled"], true, "{rule}");

        send_message(&http, &alice, &room_id, "t2", "you should not be woken").await;
        if let Ok(Some(req)) = tokio::time::timeout(Duration::from_secs(4), gateway.recv()).await {
            panic!("a dont_notify room rule must silence the room, but the gateway got: {req:?}");
        }

        // Switching the rule to the legacy "dont_notify" action keeps it silent too.
        http.put_json(
            &format!("/_matrix/client/v3/pushrules/global/room/{}", enc(&room_id)),
            Some(&bob),
            &json!({"actions": ["dont_notify"]}),
        )
        .await
        .ok();
        send_message(&http, &alice, &room_id, "t3", "still quiet").await;
        if let Ok(Some(req)) = tokio::time::timeout(Duration::from_secs(3), gateway.recv()).await {
            panic!("actions [\"dont_notify\"] must not notify, but the gateway got: {req:?}");
        }

        // Deleting the room rule restores notifications (proves the gateway is still reachable).
        http.request(
            "DELETE",
            &format!("/_matrix/client/v3/pushrules/global/room/{}", enc(&room_id)),
            Some(&bob),
            None,
        )
        .await
        .ok();
        let eid4 = send_message(&http, &alice, &room_id, "t4", "loud again").await;
        let (_, _, body) = within(
            20,
            "notification after deleting the room rule",
            gateway.recv(),
        )
        .await
        .expect("gateway channel open");
        assert_eq!(body["notification"]["event_id"], eid4.as_str(), "{body}");
    })
    .await;
}
