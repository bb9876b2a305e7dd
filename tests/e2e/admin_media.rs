//! The media and registration-token admin APIs through the real binary, against Synapse's
//! documented shapes: a user's media (list, order, paging, delete), a room's media,
//! quarantine (file, room, user; a quarantined file is never served), protect, delete one and
//! by date, legal holds keeping files; registration tokens CRUD and their use by /register.

use handover_e2e::*;
use serde_json::Value;

async fn upload(http: &Http, token: &str, name: &str, bytes: &[u8]) -> String {
    let up = http
        .request(
            "POST",
            &format!("/_matrix/media/v3/upload?filename={name}"),
            Some(token),
            Some(("application/octet-stream", bytes.to_vec())),
        )
        .await
        .ok();
    let mxc = up["content_uri"].as_str().unwrap();
    mxc.rsplit('/').next().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn media_admin_api_shapes_and_rules() {
    with_timeout(240, async {
        let server = TestServer::start().await;
        let http = server.http();
        let (alice, alice_token) = http.register("alice", PASSWORD).await;
        let (_bob, bob_token) = http.register("bob", PASSWORD).await;
        assert!(
            server
                .admin_create_user("root", PASSWORD, true)
                .await
                .status
                .success()
        );
        let root = http.login("root", PASSWORD).await;
        let a = upload(&http, &alice_token, "a.bin", b"aaaa").await;
        let b = upload(&http, &alice_token, "b.bin", b"bbbbbbbbbbbb").await;
        let c = upload(&http, &alice_token, "c.bin", b"cc").await;
        let list = format!("/_synapse/admin/v1/users/{}/media", enc(&alice));

        http.get(&list, Some(&bob_token))
            .await
            .assert_error(403, &["M_FORBIDDEN"]);
        let page = http
            .get(
                &format!("{list}?limit=2&order_by=media_length&dir=b"),
                Some(&root),
            )
            .await
            .ok();
        assert_eq!(page["total"], 3);
        assert_eq!(page["next_token"], 2);
        let ids: Vec<&str> = (page["media"].as_array().unwrap().iter())
            .map(|m| m["media_id"].as_str().unwrap())
            .collect();
        assert_eq!(ids, [b.as_str(), a.as_str()]);
        let m = &page["media"][0];
        for k in [
            "created_ts",
            "last_access_ts",
            "media_length",
            "media_type",
            "quarantined_by",
            "safe_from_quarantine",
            "upload_name",
        ] {
            assert!(m.get(k).is_some(), "media entry lacks {k}: {m}");
        }
        assert_eq!(m["media_length"], 12);
        assert_eq!(m["upload_name"], "b.bin");
        http.get(&format!("{list}?order_by=colour"), Some(&root))
            .await
            .assert_error(400, &["M_INVALID_PARAM"]);

        // A room's media: the file sent in it.
        let room = http
            .create_room(&alice_token, &json!({ "preset": "private_chat" }))
            .await;
        http.put_json(
            &format!(
                "/_matrix/client/v3/rooms/{}/send/m.room.message/f1",
                enc(&room)
            ),
            Some(&alice_token),
            &json!({ "msgtype": "m.file", "body": "c.bin", "url": format!("mxc://localhost/{c}") }),
        )
        .await
        .ok();
        let rm = http
            .get(
                &format!("/_synapse/admin/v1/room/{}/media", enc(&room)),
                Some(&root),
            )
            .await
            .ok();
        assert_eq!(
            rm,
            json!({ "local": [format!("mxc://localhost/{c}")], "remote": [] })
        );

        // Quarantine one file: never served, listed with who did it; unquarantine serves again.
        let dl = |id: &str| format!("/_matrix/client/v1/media/download/localhost/{id}");
        let q = format!("/_synapse/admin/v1/media/quarantine/localhost/{a}");
        assert_eq!(
            http.post_json(&q, Some(&root), &json!({})).await.ok(),
            json!({})
        );
        http.get(&dl(&a), Some(&alice_token))
            .await
            .assert_error(404, &["M_NOT_FOUND"]);
        let page = http
            .get(&format!("{list}?order_by=media_id"), Some(&root))
            .await
            .ok();
        let entry = (page["media"].as_array().unwrap().iter())
            .find(|m| m["media_id"] == a.as_str())
            .unwrap()
            .clone();
        assert_eq!(entry["quarantined_by"], "@root:localhost");
        let uq = format!("/_synapse/admin/v1/media/unquarantine/localhost/{a}");
        http.post_json(&uq, Some(&root), &json!({})).await.ok();
        assert_eq!(http.get(&dl(&a), Some(&alice_token)).await.status, 200);
        http.post_json(
            "/_synapse/admin/v1/media/quarantine/elsewhere.org/x",
            Some(&root),
            &json!({}),
        )
        .await
        .assert_error(400, &["M_INVALID_PARAM"]);

        // Protected files escape a user-wide quarantine; a room quarantine takes the room's.
        http.post_json(
            &format!("/_synapse/admin/v1/media/protect/{b}"),
            Some(&root),
            &json!({}),
        )
        .await
        .ok();
        let n = http
            .post_json(
                &format!("/_synapse/admin/v1/room/{}/media/quarantine", enc(&room)),
                Some(&root),
                &json!({}),
            )
            .await
            .ok();
        assert_eq!(n, json!({ "num_quarantined": 1 }));
        let n = http
            .post_json(
                &format!("/_synapse/admin/v1/user/{}/media/quarantine", enc(&alice)),
                Some(&root),
                &json!({}),
            )
            .await
            .ok();
        assert_eq!(
            n,
            json!({ "num_quarantined": 1 }),
            "only a: b protected, c done"
        );
        assert_eq!(http.get(&dl(&b), Some(&alice_token)).await.status, 200);

        // Legal hold on the room: its file cannot be deleted (rule named), others can.
        let hold = server
            .cli(&["admin", "hold", "room", &room, "--reason", "case 42"])
            .await;
        assert!(hold.status.success(), "{hold:?}");
        http.request(
            "DELETE",
            &format!("/_synapse/admin/v1/media/localhost/{c}"),
            Some(&root),
            None,
        )
        .await
        .assert_rule(403, "M_FORBIDDEN", "legal_hold");
        let del = http
            .request(
                "DELETE",
                &format!("/_synapse/admin/v1/media/localhost/{a}"),
                Some(&root),
                None,
            )
            .await
            .ok();
        assert_eq!(del, json!({ "deleted_media": [a.clone()], "total": 1 }));
        http.get(&dl(&a), Some(&alice_token))
            .await
            .assert_error(404, &["M_NOT_FOUND"]);

        // By date: everything before now except protected (b) and held (c) files.
        let d = upload(&http, &alice_token, "d.bin", b"dddd").await;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis()
            + 1000;
        http.post_json("/_synapse/admin/v1/media/delete", Some(&root), &json!({}))
            .await
            .assert_error(400, &["M_INVALID_PARAM"]);
        let swept = http
            .post_json(
                &format!("/_synapse/admin/v1/media/delete?before_ts={now}"),
                Some(&root),
                &json!({}),
            )
            .await
            .ok();
        assert_eq!(swept, json!({ "deleted_media": [d], "total": 1 }));
        let left = http.get(&list, Some(&root)).await.ok();
        assert_eq!(left["total"], 2);

        // Statistics (synapse-admin's "Users' media").
        let st = http
            .get(
                "/_synapse/admin/v1/statistics/users/media?order_by=media_length&dir=b",
                Some(&root),
            )
            .await
            .ok();
        assert_eq!(st["total"], 1);
        assert_eq!(st["users"][0]["user_id"], alice.as_str());
        assert_eq!(st["users"][0]["media_count"], 2);
        assert_eq!(st["users"][0]["media_length"], 14);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registration_tokens_admin_api_and_registration() {
    with_timeout(240, async {
        let server = TestServer::start_with(ServerOptions {
            registration: Registration::Token(vec![]),
            ..ServerOptions::default()
        })
        .await;
        let http = server.http();
        assert!(server.admin_create_user("root", PASSWORD, true).await.status.success());
        let root = http.login("root", PASSWORD).await;
        let base = "/_synapse/admin/v1/registration_tokens";

        let t = http
            .post_json(&format!("{base}/new"), Some(&root), &json!({ "token": "ward-7", "uses_allowed": 1 }))
            .await
            .ok();
        assert_eq!(
            t,
            json!({ "token": "ward-7", "uses_allowed": 1, "pending": 0, "completed": 0, "expiry_time": null })
        );
        http.post_json(&format!("{base}/new"), Some(&root), &json!({ "token": "ward-7" }))
            .await
            .assert_error(400, &["M_INVALID_PARAM"]);
        http.post_json(&format!("{base}/new"), Some(&root), &json!({ "token": "bad token!" }))
            .await
            .assert_error(400, &["M_INVALID_PARAM"]);
        http.post_json(&format!("{base}/new"), Some(&root), &json!({ "expiry_time": 1 }))
            .await
            .assert_error(400, &["M_INVALID_PARAM"]);
        let g = http
            .post_json(&format!("{base}/new"), Some(&root), &json!({ "length": 20 }))
            .await
            .ok();
        assert_eq!(g["token"].as_str().unwrap().len(), 20);

        let validity = |t: &str| {
            format!("/_matrix/client/v1/register/m.login.registration_token/validity?token={t}")
        };
        assert_eq!(http.get(&validity("ward-7"), None).await.ok()["valid"], true);
        assert_eq!(http.get(&validity("nope"), None).await.ok()["valid"], false);

        // Register with it (UIA), then it is used up.
        let register = |name: &str, session: Option<String>, token: &str| {
            let mut body = json!({ "username": name, "password": PASSWORD });
            if let Some(s) = session {
                body["auth"] = json!({ "type": "m.login.registration_token", "token": token, "session": s });
            }
            body
        };
        let first = http.post_json("/_matrix/client/v3/register", None, &register("dana", None, "")).await;
        assert_eq!(first.status, 401);
        let flows: Value = first.json();
        assert_eq!(flows["flows"][0]["stages"][0], "m.login.registration_token");
        let s = flows["session"].as_str().unwrap().to_owned();
        let ok = http
            .post_json("/_matrix/client/v3/register", None, &register("dana", Some(s), "ward-7"))
            .await
            .ok();
        assert_eq!(ok["user_id"], "@dana:localhost");
        let t = http.get(&format!("{base}/ward-7"), Some(&root)).await.ok();
        assert_eq!((t["pending"].clone(), t["completed"].clone()), (json!(0), json!(1)));
        assert_eq!(http.get(&validity("ward-7"), None).await.ok()["valid"], false);
        let first: Value = http
            .post_json("/_matrix/client/v3/register", None, &register("erin", None, ""))
            .await
            .json();
        let s = first["session"].as_str().unwrap().to_owned();
        let refused = http
            .post_json("/_matrix/client/v3/register", None, &register("erin", Some(s), "ward-7"))
            .await;
        assert_eq!(refused.status, 401, "{}", refused.text());

        // Lift the limit (null), list with the valid filter, delete.
        let t = http
            .put_json(&format!("{base}/ward-7"), Some(&root), &json!({ "uses_allowed": null }))
            .await
            .ok();
        assert_eq!(t["uses_allowed"], Value::Null);
        assert_eq!(http.get(&validity("ward-7"), None).await.ok()["valid"], true);
        let all = http.get(&format!("{base}?valid=true"), Some(&root)).await.ok();
        assert_eq!(all["registration_tokens"].as_array().unwrap().len(), 2);
        assert_eq!(
            http.request("DELETE", &format!("{base}/ward-7"), Some(&root), None).await.ok(),
            json!({})
        );
        http.get(&format!("{base}/ward-7"), Some(&root))
            .await
            .assert_error(404, &["M_NOT_FOUND"]);
        // Not for non-admins.
        let dana = http.login("dana", PASSWORD).await;
        http.get(base, Some(&dana)).await.assert_error(403, &["M_FORBIDDEN"]);
    })
    .await;
}
