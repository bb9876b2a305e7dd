//! createRoom under concurrency and odd options (issues 16 and 17): one user firing identical
//! createRoom requests at once (room version 12, whose room id is the create event's hash) gets
//! a distinct, usable room every time; `invite_3pid` is refused with the spec's error.

use std::collections::HashSet;

use handover_e2e::*;

const V3: &str = "/_matrix/client/v3";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_identical_create_room_requests_all_get_distinct_usable_rooms() {
    with_timeout(180, async {
        let server = TestServer::start().await;
        let http = server.http();
        let (_, token) = http.register("alice", PASSWORD).await;
        let t = Some(token.as_str());
        let body = json!({"preset": "public_chat", "name": "bed requests"});
        let mut ids = Vec::new();
        // 25 rounds of 8 identical requests at once: the same user, body and often millisecond.
        for _ in 0..25 {
            let mut round = tokio::task::JoinSet::new();
            for _ in 0..8 {
                let (http, token, body) = (http.clone(), token.clone(), body.clone());
                round.spawn(async move {
                    http.post_json(&format!("{V3}/createRoom"), Some(&token), &body)
                        .await
                });
            }
            for r in round.join_all().await {
                let v = r.ok();
                ids.push(v["room_id"].as_str().expect("room_id").to_owned());
            }
        }
        let distinct: HashSet<&String> = ids.iter().collect();
        assert_eq!(
            distinct.len(),
            ids.len(),
            "every room id is distinct: {ids:?}"
        );
        for (i, room) in ids.iter().enumerate() {
            assert!(
                !room.contains(':'),
                "room version 12 ids carry no server: {room}"
            );
            let path = format!("{V3}/rooms/{}/send/m.room.message/t{i}", enc(room));
            http.put_json(
                &path,
                t,
                &json!({"msgtype": "m.text", "body": format!("room {i}")}),
            )
            .await
            .ok();
            let msgs = http
                .get(
                    &format!("{V3}/rooms/{}/messages?dir=b&limit=5", enc(room)),
                    t,
                )
                .await
                .ok();
            let bodies: Vec<&str> = msgs["chunk"]
                .as_array()
                .unwrap()
                .iter()
                .filter_map(|e| e["content"]["body"].as_str())
                .collect();
            assert_eq!(
                bodies,
                [format!("room {i}")],
                "room {room} has its own message"
            );
        }
        let joined = http.get(&format!("{V3}/joined_rooms"), t).await.ok();
        assert_eq!(joined["joined_rooms"].as_array().unwrap().len(), ids.len());
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invite_3pid_is_refused_and_creates_nothing() {
    with_timeout(60, async {
        let server = TestServer::start().await;
        let http = server.http();
        let (_, token) = http.register("alice", PASSWORD).await;
        let t = Some(token.as_str());
        let r = http
            .post_json(
                &format!("{V3}/createRoom"),
                t,
                &json!({"invite_3pid": [{"id_server": "id.example.org", "id_access_token": "x",
                                         "medium": "email", "address": "bob@nhs.net"}]}),
            )
            .await;
        r.assert_error(400, &["M_INVALID_PARAM"]);
        assert!(r.text().contains("invite_3pid"), "{}", r.text());
        let joined = http.get(&format!("{V3}/joined_rooms"), t).await.ok();
        assert_eq!(joined["joined_rooms"], json!([]));
    })
    .await;
}
