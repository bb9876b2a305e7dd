//! Synapse's room moderation admin API against the real binary (shapes per Synapse's admin
//! API docs: rooms.md, purge_history_api.md): room messages, delete room v1 and v2 with the
//! shutdown moving members to a new room, delete status by id and by room, block room,
//! purge history with its status and the purged events gone from the database's raw bytes,
//! legal holds respected, non-admins refused, and a deletion's status kept across a crash.

use handover_e2e::account::eventually;
use handover_e2e::*;
use serde_json::Value;

struct Admin {
    server: TestServer,
    root: String,
    alice: (String, String),
    bob: (String, String),
}

async fn setup(opts: ServerOptions) -> Admin {
    let server = TestServer::start_with(opts).await;
    let http = server.http();
    let alice = http.register("alice", PASSWORD).await;
    let bob = http.register("bob", PASSWORD).await;
    let out = server.admin_create_user("root", PASSWORD, true).await;
    assert!(out.status.success(), "{out:?}");
    let root = http.login("root", PASSWORD).await;
    Admin {
        server,
        root,
        alice,
        bob,
    }
}

/// A room of bob's that alice joined, with an alias and two messages.
async fn ward(a: &Admin, alias: &str, marker: &str) -> String {
    let http = a.server.http();
    let room = http
        .create_room(
            &a.bob.1,
            &json!({ "name": "Ward 7", "preset": "public_chat", "room_alias_name": alias }),
        )
        .await;
    http.post_json(
        &format!("/_matrix/client/v3/rooms/{}/join", enc(&room)),
        Some(&a.alice.1),
        &json!({}),
    )
    .await
    .ok();
    for (i, (tok, body)) in [(&a.alice.1, marker), (&a.bob.1, "ack")]
        .into_iter()
        .enumerate()
    {
        http.put_json(
            &format!(
                "/_matrix/client/v3/rooms/{}/send/m.room.message/w{i}",
                enc(&room)
            ),
            Some(tok),
            &json!({ "msgtype": "m.text", "body": body }),
        )
        .await
        .ok();
    }
    room
}

async fn delete_status(http: &Http, root: &str, id: &str) -> Value {
    eventually(60, "the deletion to finish", || async {
        let s = http
            .get(
                &format!("/_synapse/admin/v2/rooms/delete_status/{id}"),
                Some(root),
            )
            .await
            .ok();
        (s["status"] != "active" && s["status"] != "scheduled").then_some(s)
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_block_and_delete_v2_with_shutdown_follow_synapse() {
    with_timeout(240, async {
        let a = setup(ServerOptions::default()).await;
        let http = a.server.http();
        let room = ward(&a, "ward7", "DELROOM-MARKER bed 4").await;

        // Non-admins are refused everywhere, with M_FORBIDDEN.
        let alice = &a.alice.1;
        let r = enc(&room);
        for (method, path, body) in [
            ("GET", format!("/_synapse/admin/v1/rooms/{r}/messages"), None),
            ("DELETE", format!("/_synapse/admin/v2/rooms/{r}"), Some(json!({}))),
            ("DELETE", format!("/_synapse/admin/v1/rooms/{r}"), Some(json!({}))),
            ("GET", format!("/_synapse/admin/v1/rooms/{r}/block"), None),
            ("PUT", format!("/_synapse/admin/v1/rooms/{r}/block"), Some(json!({ "block": true }))),
            ("POST", format!("/_synapse/admin/v1/purge_history/{r}"), Some(json!({ "purge_up_to_ts": 1 }))),
            ("GET", format!("/_synapse/admin/v2/rooms/{r}/delete_status"), None),
            ("GET", "/_synapse/admin/v1/purge_history_status/x".to_owned(), None),
        ] {
            let body = body.map(|b| ("application/json", serde_json::to_vec(&b).unwrap()));
            http.request(method, &path, Some(alice), body)
                .await
                .assert_error(403, &["M_FORBIDDEN"]);
        }

        // Room messages: the client /messages shape, forwards by default.
        let m = http
            .get(
                &format!("/_synapse/admin/v1/rooms/{r}/messages?limit=100"),
                Some(&a.root),
            )
            .await
            .ok();
        let chunk = m["chunk"].as_array().unwrap();
        assert_eq!(chunk[0]["type"], "m.room.create", "{m}");
        assert!(chunk.iter().any(|e| e["content"]["body"] == "DELROOM-MARKER bed 4"));
        assert!(m["start"].is_string());
        let filter = enc(&json!({ "types": ["m.room.message"] }).to_string());
        let m = http
            .get(
                &format!("/_synapse/admin/v1/rooms/{r}/messages?dir=b&limit=1&filter={filter}"),
                Some(&a.root),
            )
            .await
            .ok();
        assert_eq!(m["chunk"].as_array().unwrap().len(), 1, "{m}");
        assert_eq!(m["chunk"][0]["content"]["body"], "ack");
        let end = m["end"].as_str().expect("more to page").to_owned();
        let m = http
            .get(
                &format!("/_synapse/admin/v1/rooms/{r}/messages?dir=b&limit=1&filter={filter}&from={end}"),
                Some(&a.root),
            )
            .await
            .ok();
        assert_eq!(m["chunk"][0]["content"]["body"], "DELROOM-MARKER bed 4");
        http.get(
            &format!("/_synapse/admin/v1/rooms/{r}/messages?dir=x"),
            Some(&a.root),
        )
        .await
        .assert_error(400, &["M_INVALID_PARAM"]);

        // Block: refuses a join with a clear error; unblock; the GET shape.
        let charlie = http.register("charlie", PASSWORD).await;
        let block = |b: bool| json!({ "block": b });
        let v = http
            .put_json(&format!("/_synapse/admin/v1/rooms/{r}/block"), Some(&a.root), &block(true))
            .await
            .ok();
        assert_eq!(v, json!({ "block": true }));
        let v = http
            .get(&format!("/_synapse/admin/v1/rooms/{r}/block"), Some(&a.root))
            .await
            .ok();
        assert_eq!(v, json!({ "block": true, "user_id": "@root:localhost" }));
        let refused = http
            .post_json(
                &format!("/_matrix/client/v3/rooms/{r}/join"),
                Some(&charlie.1),
                &json!({}),
            )
            .await;
        refused.assert_rule(403, "M_FORBIDDEN", "room_blocked");
        http.put_json(&format!("/_synapse/admin/v1/rooms/{r}/block"), Some(&a.root), &json!({}))
            .await
            .assert_error(400, &["M_BAD_JSON"]);
        http.put_json(&format!("/_synapse/admin/v1/rooms/{r}/block"), Some(&a.root), &block(false))
            .await
            .ok();
        let v = http
            .get(&format!("/_synapse/admin/v1/rooms/{r}/block"), Some(&a.root))
            .await
            .ok();
        assert_eq!(v, json!({ "block": false }));

        // Delete v2 with shutdown: members moved to a new room with the message.
        let v = http
            .request(
                "DELETE",
                &format!("/_synapse/admin/v2/rooms/{r}"),
                Some(&a.root),
                Some((
                    "application/json",
                    serde_json::to_vec(&json!({
                        "new_room_user_id": "@root:localhost",
                        "room_name": "Ward 7 closed",
                        "message": "Ward 7 moved: see the new room",
                        "block": true,
                    }))
                    .unwrap(),
                )),
            )
            .await
            .ok();
        let id = v["delete_id"].as_str().expect("delete_id").to_owned();
        let s = delete_status(&http, &a.root, &id).await;
        assert_eq!(s["status"], "complete", "{s}");
        assert_eq!(s["delete_id"], id.as_str());
        assert_eq!(s["room_id"], room.as_str());
        let shut = &s["shutdown_room"];
        let mut kicked: Vec<_> = shut["kicked_users"].as_array().unwrap().iter().map(|u| u.as_str().unwrap().to_owned()).collect();
        kicked.sort();
        assert_eq!(kicked, vec![a.alice.0.clone(), a.bob.0.clone()], "{s}");
        assert_eq!(shut["failed_to_kick_users"], json!([]));
        assert_eq!(shut["local_aliases"], json!(["#ward7:localhost"]));
        let new_room = shut["new_room_id"].as_str().unwrap().to_owned();
        let by_room = http
            .get(&format!("/_synapse/admin/v2/rooms/{r}/delete_status"), Some(&a.root))
            .await
            .ok();
        assert_eq!(by_room["results"][0]["delete_id"], id.as_str(), "{by_room}");
        assert_eq!(by_room["results"][0]["status"], "complete");

        // Alice is in the new room and reads the admin's message there; the alias follows.
        let joined = http.get("/_matrix/client/v3/joined_rooms", Some(alice)).await.ok();
        assert_eq!(joined["joined_rooms"], json!([new_room]), "{joined}");
        let msgs = http
            .get(
                &format!("/_matrix/client/v3/rooms/{}/messages?dir=b&limit=20", enc(&new_room)),
                Some(alice),
            )
            .await
            .ok();
        assert!(
            msgs["chunk"].as_array().unwrap().iter().any(|e| e["content"]["body"] == "Ward 7 moved: see the new room"),
            "{msgs}"
        );
        let alias = http
            .get("/_matrix/client/v3/directory/room/%23ward7%3Alocalhost", Some(alice))
            .await
            .ok();
        assert_eq!(alias["room_id"], new_room.as_str());

        // The old room is gone (to the raw bytes) and stays blocked.
        http.get(&format!("/_synapse/admin/v1/rooms/{r}"), Some(&a.root))
            .await
            .assert_error(404, &["M_NOT_FOUND"]);
        assert!(!a.server.db_contains("DELROOM-MARKER"));
        http.post_json(&format!("/_matrix/client/v3/rooms/{r}/join"), Some(&charlie.1), &json!({}))
            .await
            .assert_rule(403, "M_FORBIDDEN", "room_blocked");
        // Unknown ids.
        http.get("/_synapse/admin/v2/rooms/delete_status/nope", Some(&a.root))
            .await
            .assert_error(404, &["M_NOT_FOUND"]);
        http.request("DELETE", "/_synapse/admin/v2/rooms/!nope:localhost", Some(&a.root), Some(("application/json", b"{}".to_vec())))
            .await
            .assert_error(404, &["M_NOT_FOUND"]);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_v1_purge_history_and_legal_holds() {
    with_timeout(240, async {
        let a = setup(ServerOptions::default()).await;
        let http = a.server.http();
        let room = ward(&a, "ward8", "PURGEHIST-OLD obs").await;
        let r = enc(&room);
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        let keep = http
            .put_json(
                &format!("/_matrix/client/v3/rooms/{r}/send/m.room.message/k1"),
                Some(&a.bob.1),
                &json!({ "msgtype": "m.text", "body": "PURGEHIST-KEEP obs" }),
            )
            .await
            .ok()["event_id"]
            .as_str()
            .unwrap()
            .to_owned();

        // A legal hold on the room refuses the purge and the deletion, naming the rule.
        let out = a.server.cli(&["admin", "hold", "room", &room, "--reason", "case 42"]).await;
        assert!(out.status.success(), "{out:?}");
        http.post_json(
            &format!("/_synapse/admin/v1/purge_history/{r}/{}", enc(&keep)),
            Some(&a.root),
            &json!({ "delete_local_events": true }),
        )
        .await
        .assert_rule(403, "M_FORBIDDEN", "legal_hold");
        http.request("DELETE", &format!("/_synapse/admin/v1/rooms/{r}"), Some(&a.root), Some(("application/json", b"{}".to_vec())))
            .await
            .assert_rule(403, "M_FORBIDDEN", "legal_hold");
        assert!(a.server.db_contains("PURGEHIST-OLD"));
        let out = a.server.cli(&["admin", "hold", "room", &room, "--release", "--reason", "closed"]).await;
        assert!(out.status.success(), "{out:?}");

        // Bad input is named.
        http.post_json(&format!("/_synapse/admin/v1/purge_history/{r}"), Some(&a.root), &json!({}))
            .await
            .assert_error(400, &["M_MISSING_PARAM"]);
        http.get("/_synapse/admin/v1/purge_history_status/nope", Some(&a.root))
            .await
            .assert_error(404, &["M_NOT_FOUND"]);

        // Purge up to the kept event: the older messages leave the DB, raw bytes included.
        let v = http
            .post_json(
                &format!("/_synapse/admin/v1/purge_history/{r}/{}", enc(&keep)),
                Some(&a.root),
                &json!({ "delete_local_events": true }),
            )
            .await
            .ok();
        let purge_id = v["purge_id"].as_str().expect("purge_id").to_owned();
        let s = eventually(60, "the purge to finish", || async {
            let s = http
                .get(&format!("/_synapse/admin/v1/purge_history_status/{purge_id}"), Some(&a.root))
                .await
                .ok();
            (s["status"] != "active").then_some(s)
        })
        .await;
        assert_eq!(s, json!({ "status": "complete" }));
        assert!(!a.server.db_contains("PURGEHIST-OLD"));
        assert!(a.server.db_contains("PURGEHIST-KEEP"));
        let m = http
            .get(&format!("/_matrix/client/v3/rooms/{r}/messages?dir=b&limit=50"), Some(&a.bob.1))
            .await
            .ok();
        let bodies: Vec<_> = m["chunk"].as_array().unwrap().iter().filter_map(|e| e["content"]["body"].as_str()).collect();
        assert!(bodies.contains(&"PURGEHIST-KEEP obs") && !bodies.contains(&"PURGEHIST-OLD obs"), "{bodies:?}");

        // Delete v1: answered when done, with the shutdown's shape; the room is gone.
        let v = http
            .request("DELETE", &format!("/_synapse/admin/v1/rooms/{r}"), Some(&a.root), Some(("application/json", b"{}".to_vec())))
            .await
            .ok();
        let mut kicked: Vec<_> = v["kicked_users"].as_array().unwrap().iter().map(|u| u.as_str().unwrap().to_owned()).collect();
        kicked.sort();
        assert_eq!(kicked, vec![a.alice.0.clone(), a.bob.0.clone()], "{v}");
        assert_eq!(v["new_room_id"], Value::Null);
        assert_eq!(v["local_aliases"], json!(["#ward8:localhost"]));
        assert!(!a.server.db_contains("PURGEHIST-KEEP"));
        let joined = http.get("/_matrix/client/v3/joined_rooms", Some(&a.alice.1)).await.ok();
        assert_eq!(joined["joined_rooms"], json!([]));
        // v1 may block a room this server has never seen.
        let v = http
            .request("DELETE", "/_synapse/admin/v1/rooms/!elsewhere:remote.example", Some(&a.root), Some(("application/json", serde_json::to_vec(&json!({ "block": true })).unwrap())))
            .await
            .ok();
        assert_eq!(v["kicked_users"], json!([]));
        let v = http.get("/_synapse/admin/v1/rooms/!elsewhere:remote.example/block", Some(&a.root)).await.ok();
        assert_eq!(v["block"], true);

        // Every step is in the audit trail: who, what, which room.
        let file = a.server.dir().join("audit-rooms.jsonl");
        let out = a.server.cli(&["audit", "export", "--since", "2000-01-01", "--until", "2100-01-01", "--out", file.to_str().unwrap()]).await;
        assert!(out.status.success(), "{out:?}");
        let trail: Vec<Value> = std::fs::read_to_string(&file).unwrap().lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
        for action in ["admin.room.purge_history", "admin.room.purge_history.done", "retention.purge_history", "admin.room.delete", "retention.room_delete"] {
            assert!(
                trail.iter().any(|e| e["action"] == action && e["target"] == room.as_str()),
                "{action} missing"
            );
        }
        assert!(trail.iter().any(|e| e["rule"] == "legal_hold" && e["actor"] == "@root:localhost"));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deletion_keeps_its_status_across_a_crash_and_finishes() {
    with_timeout(240, async {
        // Small purge batches: the deletion takes a while to scan the room.
        let mut a = setup(ServerOptions {
            extra_toml: "[retention]\nbatch_size = 1\n".into(),
            ..ServerOptions::default()
        })
        .await;
        let http = a.server.http();
        let room = ward(&a, "ward9", "CRASH-MARKER obs").await;
        for i in 0..60 {
            http.put_json(
                &format!("/_matrix/client/v3/rooms/{}/send/m.room.message/c{i}", enc(&room)),
                Some(&a.bob.1),
                &json!({ "msgtype": "m.text", "body": format!("filler {i}") }),
            )
            .await
            .ok();
        }
        let v = http
            .request(
                "DELETE",
                &format!("/_synapse/admin/v2/rooms/{}", enc(&room)),
                Some(&a.root),
                Some(("application/json", b"{}".to_vec())),
            )
            .await
            .ok();
        let id = v["delete_id"].as_str().unwrap().to_owned();
        // A crash right after the answer: the job was accepted, durably.
        a.server.kill().await;
        a.server.start_again().await;
        let http = a.server.http();
        let s = delete_status(&http, &a.root, &id).await;
        eprintln!("resumed: {}", a.server.stderr().contains("resuming admin room job"));
        assert_eq!(s["status"], "complete", "{s}");
        assert_eq!(s["room_id"], room.as_str());
        assert!(!a.server.db_contains("CRASH-MARKER"));
        http.get(&format!("/_synapse/admin/v1/rooms/{}", enc(&room)), Some(&a.root))
            .await
            .assert_error(404, &["M_NOT_FOUND"]);
    })
    .await;
}
