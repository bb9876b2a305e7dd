//! Federation between two Handover servers on loopback (issue 3): TLS with a test CA, signed
//! federation lists, keys, and the client-visible room flow (create, invite, join, message,
//! leave, backfill, restart with a queue to drain). The harness is `handover_e2e::federation`.

use handover_e2e::account::eventually;
use handover_e2e::federation::FedNet;
use handover_e2e::{enc, json, with_timeout};
use serde_json::Value;

/// A forged `X-Matrix` header claiming `origin`: the federation list is checked before any key
/// is fetched or signature verified, so an unlisted origin is refused (403) whatever it signs,
/// while a listed one with this bogus signature is refused later (401).
pub fn forged_x_matrix(origin: &str, destination: &str) -> String {
    format!(
        "X-Matrix origin=\"{origin}\",destination=\"{destination}\",key=\"ed25519:e2e\",sig=\"Zm9yZ2VkIHNpZ25hdHVyZQ\""
    )
}

/// `method path` on `fed_url` with a forged X-Matrix header from `origin`; (status, body).
pub async fn forged_request(
    net: &FedNet,
    fed_url: &str,
    method: &str,
    path: &str,
    origin: &str,
    destination: &str,
) -> (u16, Value) {
    let client = net.reqwest();
    let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let mut req = client
        .request(m.clone(), format!("{fed_url}{path}"))
        .header("Authorization", forged_x_matrix(origin, destination));
    if m == reqwest::Method::PUT || m == reqwest::Method::POST {
        req = req.json(&json!({}));
    }
    let resp = req
        .send()
        .await
        .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
    let status = resp.status().as_u16();
    let body = resp.json().await.unwrap_or(Value::Null);
    (status, body)
}

/// `GET /_matrix/key/v2/query/{server}` on a notary: the `server_keys` it returns.
pub async fn notary_keys(net: &FedNet, notary_fed_url: &str, server: &str) -> Vec<Value> {
    let url = format!("{notary_fed_url}/_matrix/key/v2/query/{}", enc(server));
    let resp = net.reqwest().get(&url).send().await.expect(&url);
    assert_eq!(resp.status().as_u16(), 200, "{url}");
    let body: Value = resp.json().await.expect("notary JSON");
    body["server_keys"].as_array().cloned().unwrap_or_default()
}

/// `POST /_matrix/key/v2/query` on a notary for `server`'s key `key_id`, valid at least until
/// now: the `server_keys` it returns. (Synapse fetches a missing key only when asked for it by
/// id; asked for "all keys" it answers from its cache.)
pub async fn notary_key(
    net: &FedNet,
    notary_fed_url: &str,
    server: &str,
    key_id: &str,
) -> Vec<Value> {
    let url = format!("{notary_fed_url}/_matrix/key/v2/query");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let body = json!({"server_keys": {server: {key_id: {"minimum_valid_until_ts": now}}}});
    let resp = net
        .reqwest()
        .post(&url)
        .json(&body)
        .send()
        .await
        .expect(&url);
    assert_eq!(resp.status().as_u16(), 200, "{url}");
    let body: Value = resp.json().await.expect("notary JSON");
    body["server_keys"].as_array().cloned().unwrap_or_default()
}

/// The first key id in a key response's `verify_keys`.
pub fn key_id(keys: &Value) -> String {
    keys["verify_keys"]
        .as_object()
        .and_then(|m| m.keys().next().cloned())
        .expect("a verify key")
}

/// The server's own key response (`/_matrix/key/v2/server`).
pub async fn own_keys(net: &FedNet, fed_url: &str) -> Value {
    let url = format!("{fed_url}/_matrix/key/v2/server");
    let resp = net.reqwest().get(&url).send().await.expect(&url);
    assert_eq!(resp.status().as_u16(), 200, "{url}");
    resp.json().await.expect("key JSON")
}

/// Each Handover fetches the other's key over TLS verified against the test CA (asked through
/// its notary) and answers `/version`; both listen on their own IP-literal names.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_handovers_fetch_each_others_keys_over_tls() {
    with_timeout(120, async {
        let net = FedNet::new();
        let (a, b) = pair(&net).await;
        // A real client reaches the client API over the same TLS (test CA).
        let sdk = a.register_sdk(&net, "carol").await;
        assert_eq!(
            sdk.whoami().await.expect("whoami").user_id.as_str(),
            a.user_id("carol")
        );

        for (x, y) in [(&a, &b), (&b, &a)] {
            let v = net
                .reqwest()
                .get(format!("{}/_matrix/federation/v1/version", x.fed_url()))
                .send()
                .await
                .unwrap();
            assert_eq!(v.status().as_u16(), 200);
            let v: Value = v.json().await.unwrap();
            assert!(v["server"]["name"].is_string(), "{v}");

            let theirs = own_keys(&net, &y.fed_url()).await;
            assert_eq!(theirs["server_name"], y.name.as_str());
            // x's notary fetches y's key from y itself (the list allows it) and co-signs it.
            let keys = eventually(30, "notary to fetch the peer's key", || async {
                let k = notary_keys(&net, &x.fed_url(), &y.name).await;
                (!k.is_empty()).then_some(k)
            })
            .await;
            assert_eq!(keys.len(), 1, "{keys:?}");
            assert_eq!(keys[0]["server_name"], y.name.as_str());
            assert_eq!(keys[0]["verify_keys"], theirs["verify_keys"]);
            assert!(keys[0]["signatures"][&y.name].is_object(), "{}", keys[0]);
            assert!(keys[0]["signatures"][&x.name].is_object(), "{}", keys[0]);
        }
    })
    .await;
}

/// Users on two Handovers: create, invite, join, message both ways, leave; both servers agree
/// on the room's state. Needs: outbound invite, make_join/send_join, /send, leave.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_handovers_invite_join_message_leave() {
    with_timeout(300, async {
        let net = FedNet::new();
        let (a, b) = pair(&net).await;
        let alice = a.register("alice").await;
        let bob = b.register("bob").await;

        let room = alice.create_public_room("handover pair").await;
        alice.invite(&room, &bob.user_id).await;
        bob.wait_invite(&room, 60).await;
        assert_eq!(bob.join(&room, &[&a.name]).await, room);
        alice.wait_membership(&room, &bob.user_id, "join", 60).await;

        alice.send_text(&room, "from alice").await;
        bob.wait_for_bodies(&room, &["from alice"], 60).await;
        bob.send_text(&room, "from bob").await;
        alice.wait_for_bodies(&room, &["from bob"], 60).await;
        assert_eq!(alice.bodies(&room, 50).await, ["from alice", "from bob"]);
        assert_eq!(bob.bodies(&room, 50).await, ["from alice", "from bob"]);
        agree_on_state(&alice, &bob, &room).await;

        bob.leave(&room).await;
        alice
            .wait_membership(&room, &bob.user_id, "leave", 60)
            .await;
        agree_on_state(&alice, &bob, &room).await;
        // After leaving, bob's server is no longer sent the room's events.
        alice.send_text(&room, "after bob left").await;
        tokio::time::sleep(std::time::Duration::from_secs(2)).await;
        let seen = bob.bodies(&room, 50).await;
        assert!(!seen.iter().any(|b| b == "after bob left"), "{seen:?}");

        // The other way round: a room on B, a user of A invited into it.
        let room_b = bob.create_public_room("on B").await;
        bob.invite(&room_b, &alice.user_id).await;
        alice.wait_invite(&room_b, 60).await;
        assert_eq!(alice.join(&room_b, &[&b.name]).await, room_b);
        bob.send_text(&room_b, "welcome to B").await;
        alice.wait_for_bodies(&room_b, &["welcome to B"], 60).await;
        agree_on_state(&alice, &bob, &room_b).await;
    })
    .await;
}

/// A server joining late backfills the history it may see (shared history visibility): the
/// joiner pages back through `/messages` to the first message sent before it joined.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_backfills_to_a_joining_server() {
    with_timeout(300, async {
        let net = FedNet::new();
        let (a, b) = pair(&net).await;
        let alice = a.register("alice").await;
        let bob = b.register("bob").await;
        let room = alice.create_public_room("backfill").await;
        let early: Vec<String> = (0..30).map(|i| format!("early {i}")).collect();
        for m in &early {
            alice.send_text(&room, m).await;
        }
        assert_eq!(bob.join(&room, &[&a.name]).await, room);
        alice.send_text(&room, "after join").await;
        bob.wait_for_bodies(&room, &["after join"], 60).await;

        // Page back with `from` tokens until the room's creation, as a client scrolls up.
        let mut from: Option<String> = None;
        let mut bodies = Vec::new();
        for _ in 0..20 {
            let mut path = format!(
                "/_matrix/client/v3/rooms/{}/messages?dir=b&limit=10",
                enc(&room)
            );
            if let Some(f) = &from {
                path.push_str(&format!("&from={}", enc(f)));
            }
            let page = bob.get(&path).await.ok();
            for e in page["chunk"].as_array().into_iter().flatten() {
                if let Some(b) = e["content"]["body"].as_str() {
                    bodies.push(b.to_owned());
                }
            }
            match page["end"].as_str() {
                Some(end) => from = Some(end.to_owned()),
                None => break,
            }
        }
        bodies.reverse();
        let mut want = early.clone();
        want.push("after join".into());
        assert_eq!(
            bodies, want,
            "bob's server backfilled the whole shared history in order"
        );
    })
    .await;
}

/// Each side restarts mid-conversation and nothing is lost: messages sent while the receiver
/// is down are delivered when it is back; messages queued for a down receiver survive a restart
/// of the *sender* too (the queue is durable) and drain once the receiver returns; then the
/// restarted receiver can send again. Order is kept and nothing arrives twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_mid_conversation_loses_nothing() {
    with_timeout(600, async {
        let net = FedNet::new();
        let (mut a, mut b) = pair(&net).await;
        let alice = a.register("alice").await;
        let bob = b.register("bob").await;
        let room = alice.create_public_room("restart").await;
        alice.invite(&room, &bob.user_id).await;
        bob.wait_invite(&room, 60).await;
        bob.join(&room, &[&a.name]).await;
        alice.send_text(&room, "before restart").await;
        bob.wait_for_bodies(&room, &["before restart"], 60).await;
        let mut expected = vec!["before restart".to_owned()];

        // 1. The receiver restarts.
        b.server.stop().await;
        let batch: Vec<String> = (0..3).map(|i| format!("receiver down {i}")).collect();
        for m in &batch {
            alice.send_text(&room, m).await;
        }
        b.restart().await;
        expected.extend(batch.iter().cloned());
        // The sender retries with backoff; allow for a few retry rounds.
        let want: Vec<&str> = expected.iter().map(String::as_str).collect();
        bob.wait_for_bodies(&room, &want, 180).await;

        // 2. Queued for a down receiver, then the sender restarts before delivering.
        b.server.stop().await;
        let batch: Vec<String> = (0..3).map(|i| format!("sender restarted {i}")).collect();
        for m in &batch {
            alice.send_text(&room, m).await;
        }
        a.restart().await;
        b.restart().await;
        expected.extend(batch.iter().cloned());
        let want: Vec<&str> = expected.iter().map(String::as_str).collect();
        bob.wait_for_bodies(&room, &want, 240).await;
        assert_eq!(
            bob.bodies(&room, 100).await,
            expected,
            "in order, nothing lost, nothing twice"
        );

        bob.send_text(&room, "back again").await;
        alice.wait_for_bodies(&room, &["back again"], 60).await;
        agree_on_state(&alice, &bob, &room).await;
    })
    .await;
}

/// Two Handovers listing each other.
pub async fn pair(
    net: &FedNet,
) -> (
    handover_e2e::federation::HandoverPeer,
    handover_e2e::federation::HandoverPeer,
) {
    let ip_b = handover_e2e::federation::loopback_ip().to_string();
    let a = net.handover(&[&ip_b], &[&ip_b]).await;
    let b = net
        .handover_at(ip_b.parse().unwrap(), &[&a.name], &[&a.name])
        .await;
    (a, b)
}

/// Both servers' current state of `room` has the same events.
pub async fn agree_on_state(
    x: &handover_e2e::account::Account,
    y: &handover_e2e::account::Account,
    room: &str,
) {
    eventually(60, "both servers to agree on the room state", || async {
        let (sx, sy) = (x.state_ids(room).await, y.state_ids(room).await);
        (!sx.is_empty() && sx == sy).then_some(())
    })
    .await;
}

/// Retention across servers (issue 9): a server that keeps history longer (its `min_lifetime`
/// is a year) does not hand expired messages back. The room keeps messages 3 s; the joining
/// server pages back through its history and backfill brings none of the expired messages.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backfill_does_not_reimport_expired_history() {
    with_timeout(300, async {
        let net = FedNet::new();
        let ip_b = handover_e2e::federation::loopback_ip();
        let keeps = "[retention]\nmin_lifetime = \"365d\"\n";
        let a = net
            .handover_with(
                handover_e2e::federation::loopback_ip(),
                &[&ip_b.to_string()],
                &[&ip_b.to_string()],
                keeps,
            )
            .await;
        let b = net.handover_at(ip_b, &[&a.name], &[&a.name]).await;
        let alice = a.register("alice").await;
        let bob = b.register("bob").await;
        let room = alice.create_public_room("short-lived").await;
        let path = format!(
            "/_matrix/client/v3/rooms/{}/state/m.room.retention/",
            enc(&room)
        );
        alice
            .put(&path, &json!({ "max_lifetime": 3000 }))
            .await
            .ok();
        for i in 0..5 {
            alice.send_text(&room, &format!("expired {i}")).await;
        }
        // Older than the room's lifetime on the joining server; kept by the resident.
        tokio::time::sleep(std::time::Duration::from_secs(4)).await;
        assert!(
            alice
                .bodies(&room, 20)
                .await
                .iter()
                .any(|b| b == "expired 0"),
            "the resident keeps them (its min_lifetime)"
        );
        assert_eq!(bob.join(&room, &[&a.name]).await, room);
        alice.send_text(&room, "fresh").await;
        bob.wait_for_bodies(&room, &["fresh"], 60).await;

        let mut from: Option<String> = None;
        let mut bodies = Vec::new();
        for _ in 0..10 {
            let mut path = format!(
                "/_matrix/client/v3/rooms/{}/messages?dir=b&limit=10",
                enc(&room)
            );
            if let Some(f) = &from {
                path.push_str(&format!("&from={}", enc(f)));
            }
            let page = bob.get(&path).await.ok();
            for e in page["chunk"].as_array().into_iter().flatten() {
                if let Some(b) = e["content"]["body"].as_str() {
                    bodies.push(b.to_owned());
                }
            }
            match page["end"].as_str() {
                Some(end) => from = Some(end.to_owned()),
                None => break,
            }
        }
        assert_eq!(
            bodies,
            vec!["fresh".to_owned()],
            "no expired message came back"
        );
    })
    .await;
}
