//! Crash safety (issue 9): the server is killed with SIGKILL while clients send, keeping a
//! ledger of every event id the server acknowledged; after a restart every acknowledged event is
//! there. Over federation, messages acknowledged while the receiver was down and the sender then
//! crashed are still delivered, in order, once both are back (the outbox is durable).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use handover_e2e::account::eventually;
use handover_e2e::federation::FedNet;
use handover_e2e::*;

const V3: &str = "/_matrix/client/v3";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_acknowledged_event_survives_sigkill() {
    with_timeout(240, async {
        let mut server = TestServer::start().await;
        let http = server.http();
        let (_, token) = http.register("alice", PASSWORD).await;
        let rooms: Vec<String> = {
            let mut v = Vec::new();
            for i in 0..2 {
                v.push(
                    http.create_room(
                        &token,
                        &json!({"preset": "public_chat", "name": format!("crash {i}")}),
                    )
                    .await,
                );
            }
            v
        };
        // (room, event id, body) of every send the server answered 200.
        let ledger: Arc<Mutex<Vec<(String, String, String)>>> = Arc::default();
        let mut senders = tokio::task::JoinSet::new();
        for w in 0..4 {
            let (http, token, ledger) = (http.clone(), token.clone(), ledger.clone());
            let room = rooms[w % rooms.len()].clone();
            senders.spawn(async move {
                for n in 0.. {
                    let body = format!("writer {w} message {n}");
                    let path = format!("{V3}/rooms/{}/send/m.room.message/w{w}n{n}", enc(&room));
                    let Ok(r) = http
                        .try_request(
                            "PUT",
                            &path,
                            Some(&token),
                            Some((
                                "application/json",
                                json!({"msgtype": "m.text", "body": body})
                                    .to_string()
                                    .into_bytes(),
                            )),
                        )
                        .await
                    else {
                        return;
                    };
                    if r.status != 200 {
                        return;
                    }
                    let id = r.json()["event_id"].as_str().expect("event_id").to_owned();
                    ledger.lock().unwrap().push((room.clone(), id, body));
                }
            });
        }
        // Let the writers get going, then pull the plug mid-stream.
        eventually(30, "some sends acknowledged", || async {
            (ledger.lock().unwrap().len() >= 40).then_some(())
        })
        .await;
        server.kill().await;
        senders.join_all().await;
        let acked = ledger.lock().unwrap().clone();
        assert!(acked.len() >= 40, "{} sends acknowledged", acked.len());

        server.start_again().await;
        let http = server.http();
        for (room, id, body) in &acked {
            let r = http
                .get(
                    &format!("{V3}/rooms/{}/event/{}", enc(room), enc(id)),
                    Some(&token),
                )
                .await;
            assert_eq!(
                r.ok()["content"]["body"],
                body.as_str(),
                "acknowledged {id} survived"
            );
        }
        // And the timelines hold them in the order they were acknowledged, per writer.
        for room in &rooms {
            let msgs = http
                .get(
                    &format!("{V3}/rooms/{}/messages?dir=f&limit=1000", enc(room)),
                    Some(&token),
                )
                .await
                .ok();
            let got: Vec<&str> = msgs["chunk"]
                .as_array()
                .unwrap()
                .iter()
                .filter_map(|e| e["content"]["body"].as_str())
                .collect();
            let want: Vec<&str> = acked
                .iter()
                .filter(|(r, _, _)| r == room)
                .map(|(_, _, b)| b.as_str())
                .collect();
            let got_acked: Vec<&str> = got.iter().copied().filter(|b| want.contains(b)).collect();
            let mut want_sorted = want.clone();
            want_sorted.sort();
            let mut got_sorted = got_acked.clone();
            got_sorted.sort();
            assert_eq!(
                got_sorted, want_sorted,
                "every acknowledged message is in the timeline once"
            );
            for w in 0..4 {
                let prefix = format!("writer {w} ");
                let seq = |v: &[&str]| {
                    v.iter()
                        .filter(|b| b.starts_with(&prefix))
                        .map(|b| b.to_string())
                        .collect::<Vec<_>>()
                };
                assert_eq!(
                    seq(&got_acked),
                    seq(&want),
                    "writer {w}'s messages in order"
                );
            }
        }
        // The server works on: a new send and a sync.
        let path = format!("{V3}/rooms/{}/send/m.room.message/after", enc(&rooms[0]));
        http.put_json(
            &path,
            Some(&token),
            &json!({"msgtype": "m.text", "body": "after the crash"}),
        )
        .await
        .ok();
        http.get(&format!("{V3}/sync?timeout=0"), Some(&token))
            .await
            .ok();
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_federation_outbox_resumes_after_sigkill() {
    with_timeout(400, async {
        let net = FedNet::new();
        let (mut a, mut b) = crate::federation::pair(&net).await;
        let alice = a.register("alice").await;
        let bob = b.register("bob").await;
        let room = alice.create_public_room("outbox crash").await;
        alice.invite(&room, &bob.user_id).await;
        bob.wait_invite(&room, 60).await;
        bob.join(&room, &[&a.name]).await;
        alice.send_text(&room, "before").await;
        bob.wait_for_bodies(&room, &["before"], 60).await;

        // The receiver is down: these are acknowledged to Alice and queued for B.
        b.server.stop().await;
        let batch: Vec<String> = (0..5).map(|i| format!("queued {i}")).collect();
        for m in &batch {
            alice.send_text(&room, m).await;
        }
        // The sender crashes with the queue undelivered.
        a.server.kill().await;
        tokio::time::sleep(Duration::from_millis(200)).await;
        b.server.start_again().await;
        a.server.start_again().await;
        let mut want = vec!["before"];
        want.extend(batch.iter().map(String::as_str));
        bob.wait_for_bodies(&room, &want, 240).await;
        assert_eq!(
            bob.bodies(&room, 100).await,
            want,
            "in order, nothing lost, nothing twice"
        );
    })
    .await;
}
