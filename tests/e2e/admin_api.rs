//! The admin API through the real binary: Synapse's `/_synapse/admin/...` shapes (users v2
//! list / query / create-or-modify, admin flag, whois, devices, joined rooms, reset password,
//! deactivate) and the spec v1.18 lock and suspend endpoints with their meaning; non-admins get
//! `403 M_FORBIDDEN`; `handover admin set-admin`; every admin call is in the audit trail.

use handover_e2e::*;
use serde_json::Value;

fn users_path(query: &str) -> String {
    format!("/_synapse/admin/v2/users?{query}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn synapse_admin_users_api_shapes_and_rules() {
    with_timeout(240, async {
        let server = TestServer::start().await;
        let http = server.http();
        let (alice, alice_token) = http.register("alice", PASSWORD).await;
        let (bob, bob_token) = http.register("bob", PASSWORD).await;
        let out = server.admin_create_user("root", PASSWORD, true).await;
        assert!(out.status.success(), "{out:?}");
        let root = http.login("root", PASSWORD).await;
        let room = http
            .create_room(&bob_token, &json!({ "preset": "public_chat" }))
            .await;

        let v = http
            .get("/_synapse/admin/v1/server_version", None)
            .await
            .ok();
        assert!(
            v["server_version"]
                .as_str()
                .unwrap()
                .starts_with("handover")
        );

        // Not an admin / no token.
        http.get(&users_path(""), Some(&alice_token))
            .await
            .assert_error(403, &["M_FORBIDDEN"]);
        http.get(&users_path(""), None)
            .await
            .assert_error(401, &["M_MISSING_TOKEN"]);
        let p = format!("/_matrix/client/v1/admin/lock/{}", enc(&bob));
        http.put_json(&p, Some(&alice_token), &json!({ "locked": true }))
            .await
            .assert_error(403, &["M_FORBIDDEN"]);

        // The list: paging with next_token, total, Synapse's fields; bad parameters named.
        let page = http
            .get(&users_path("from=0&limit=2&order_by=name"), Some(&root))
            .await
            .ok();
        assert_eq!(page["total"], 3);
        assert_eq!(page["next_token"], "2");
        let names: Vec<&str> = page["users"]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| u["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, [alice.as_str(), bob.as_str()]);
        let u = &page["users"][0];
        for key in [
            "admin",
            "deactivated",
            "is_guest",
            "shadow_banned",
            "creation_ts",
            "displayname",
            "avatar_url",
            "locked",
            "erased",
        ] {
            assert!(u.get(key).is_some(), "user entry lacks {key}: {u}");
        }
        let last = http
            .get(&users_path("from=2&limit=2"), Some(&root))
            .await
            .ok();
        assert!(last.get("next_token").is_none(), "{last}");
        assert_eq!(last["users"][0]["admin"], 1);
        let found = http.get(&users_path("name=ALI"), Some(&root)).await.ok();
        assert_eq!(found["total"], 1);
        let back = http
            .get(&users_path("dir=b&limit=1"), Some(&root))
            .await
            .ok();
        assert_eq!(
            back["users"][0]["name"],
            format!("@root:{}", server_name(&alice))
        );
        for bad in [
            "limit=-1",
            "dir=x",
            "order_by=nonsense",
            "deactivated=maybe",
        ] {
            http.get(&users_path(bad), Some(&root))
                .await
                .assert_error(400, &["M_INVALID_PARAM"]);
        }

        // Create-or-modify: 201 then 200; the new account can log in.
        let carol = format!("@carol:{}", server_name(&alice));
        let p = format!("/_synapse/admin/v2/users/{}", enc(&carol));
        let body =
            json!({ "password": "carol's long password", "displayname": "Carol", "admin": false });
        let r = http.put_json(&p, Some(&root), &body).await;
        assert_eq!(r.status, 201, "{}", r.text());
        assert_eq!(r.json()["displayname"], "Carol");
        let r = http
            .put_json(&p, Some(&root), &json!({ "displayname": "Carol B" }))
            .await;
        assert_eq!(r.status, 200, "{}", r.text());
        http.login("carol", "carol's long password").await;
        let q = http.get(&p, Some(&root)).await.ok();
        assert_eq!(
            (q["name"].as_str(), q["displayname"].as_str()),
            (Some(carol.as_str()), Some("Carol B"))
        );
        assert_eq!(q["threepids"], json!([]));
        http.put_json(&p, Some(&root), &json!({ "admin": "yes" }))
            .await
            .assert_error(400, &["M_BAD_JSON"]);
        let ghost = format!(
            "/_synapse/admin/v2/users/{}",
            enc("@ghost:elsewhere.example")
        );
        http.get(&ghost, Some(&root))
            .await
            .assert_error(400, &["M_INVALID_PARAM"]);
        let ghost = format!(
            "/_synapse/admin/v2/users/{}",
            enc(&format!("@ghost:{}", server_name(&alice)))
        );
        http.get(&ghost, Some(&root))
            .await
            .assert_error(404, &["M_NOT_FOUND"]);

        // The admin flag: the CLI grants it, the API reads and revokes it.
        let out = server.cli(&["admin", "set-admin", "bob"]).await;
        assert!(out.status.success(), "{out:?}");
        let p = format!("/_synapse/admin/v1/users/{}/admin", enc(&bob));
        assert_eq!(http.get(&p, Some(&root)).await.ok()["admin"], true);
        http.put_json(&p, Some(&root), &json!({ "admin": false }))
            .await
            .ok();
        assert_eq!(http.get(&p, Some(&root)).await.ok()["admin"], false);

        // whois, devices, joined rooms.
        let w = http
            .get(
                &format!("/_synapse/admin/v1/whois/{}", enc(&bob)),
                Some(&root),
            )
            .await
            .ok();
        assert_eq!(w["user_id"], bob.as_str());
        assert_eq!(w["devices"].as_object().unwrap().len(), 1);
        let p = format!("/_synapse/admin/v2/users/{}/devices", enc(&bob));
        let d = http.get(&p, Some(&root)).await.ok();
        assert_eq!(d["total"], 1);
        assert_eq!(d["devices"][0]["user_id"], bob.as_str());
        let p = format!("/_synapse/admin/v1/users/{}/joined_rooms", enc(&bob));
        let j = http.get(&p, Some(&root)).await.ok();
        assert_eq!(
            (j["total"].clone(), j["joined_rooms"][0].clone()),
            (json!(1), json!(room))
        );

        // Spec v1.18 lock: no token works, no login.
        let p = format!("/_matrix/client/v1/admin/lock/{}", enc(&bob));
        assert_eq!(
            http.put_json(&p, Some(&root), &json!({ "locked": true }))
                .await
                .ok()["locked"],
            true
        );
        assert_eq!(http.get(&p, Some(&root)).await.ok()["locked"], true);
        http.get("/_matrix/client/v3/account/whoami", Some(&bob_token))
            .await
            .assert_error(401, &["M_USER_LOCKED"]);
        http.post_json(
            "/_matrix/client/v3/login",
            None,
            &login_body("bob", PASSWORD),
        )
        .await
        .assert_error(401, &["M_USER_LOCKED"]);
        let locked_list = http.get(&users_path("locked=true"), Some(&root)).await.ok();
        assert!(
            locked_list["users"]
                .as_array()
                .unwrap()
                .iter()
                .any(|u| u["name"] == bob.as_str() && u["locked"] == true)
        );
        http.put_json(&p, Some(&root), &json!({ "locked": false }))
            .await
            .ok();
        http.get("/_matrix/client/v3/account/whoami", Some(&bob_token))
            .await
            .ok();

        // Spec v1.18 suspend: reading works, writing does not; Synapse's form lifts it.
        let p = format!("/_matrix/client/v1/admin/suspend/{}", enc(&bob));
        assert_eq!(
            http.put_json(&p, Some(&root), &json!({ "suspended": true }))
                .await
                .ok()["suspended"],
            true
        );
        assert_eq!(http.get(&p, Some(&root)).await.ok()["suspended"], true);
        let send = format!(
            "/_matrix/client/v3/rooms/{}/send/m.room.message/s1",
            enc(&room)
        );
        http.put_json(
            &send,
            Some(&bob_token),
            &json!({ "msgtype": "m.text", "body": "hi" }),
        )
        .await
        .assert_error(403, &["M_USER_SUSPENDED"]);
        http.get("/_matrix/client/v3/joined_rooms", Some(&bob_token))
            .await
            .ok();
        let p = format!("/_synapse/admin/v1/suspend/{}", enc(&bob));
        let r = http
            .put_json(&p, Some(&root), &json!({ "suspend": false }))
            .await
            .ok();
        assert_eq!(r[format!("user_{bob}_suspended")], false);
        http.put_json(
            &send,
            Some(&bob_token),
            &json!({ "msgtype": "m.text", "body": "hi" }),
        )
        .await
        .ok();

        // Reset password (logs out), then deactivate with erase.
        let p = format!("/_synapse/admin/v1/reset_password/{}", enc(&alice));
        http.post_json(
            &p,
            Some(&root),
            &json!({ "new_password": "a new long password" }),
        )
        .await
        .ok();
        http.get("/_matrix/client/v3/account/whoami", Some(&alice_token))
            .await
            .assert_error(401, &["M_UNKNOWN_TOKEN"]);
        http.login("alice", "a new long password").await;
        let p = format!("/_synapse/admin/v1/deactivate/{}", enc(&alice));
        let r = http
            .post_json(&p, Some(&root), &json!({ "erase": true }))
            .await
            .ok();
        assert_eq!(r["id_server_unbind_result"], "success");
        http.post_json(
            "/_matrix/client/v3/login",
            None,
            &login_body("alice", "a new long password"),
        )
        .await
        .assert_error(403, &["M_USER_DEACTIVATED"]);
        let q = http
            .get(
                &format!("/_synapse/admin/v2/users/{}", enc(&alice)),
                Some(&root),
            )
            .await
            .ok();
        assert_eq!(
            (q["deactivated"].clone(), q["erased"].clone()),
            (json!(1), json!(true))
        );

        // Every admin call was audited with who, what and whom.
        let file = server.dir().join("audit.jsonl");
        let out = server
            .cli(&[
                "audit",
                "export",
                "--since",
                "2000-01-01",
                "--until",
                "2100-01-01",
                "--out",
                file.to_str().unwrap(),
            ])
            .await;
        assert!(out.status.success(), "{out:?}");
        let trail = std::fs::read_to_string(&file).unwrap();
        let records: Vec<Value> = trail
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect();
        let by = |action: &str, target: &str| {
            records.iter().any(|r| {
                r["action"] == action
                    && r["target"] == target
                    && r["actor"].as_str().unwrap_or("").starts_with("@root:")
            })
        };
        assert!(by("admin.user.lock", &bob), "{trail}");
        assert!(by("admin.user.suspend", &bob));
        assert!(by("admin.user.deactivate", &alice));
        assert!(by("admin.user.create", &carol));
        assert!(
            records
                .iter()
                .any(|r| r["action"] == "admin.denied" && r["actor"] == alice.as_str())
        );
    })
    .await;
}

fn server_name(user_id: &str) -> &str {
    user_id.split_once(':').map(|(_, s)| s).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn synapse_admin_rooms_and_event_reports() {
    with_timeout(180, async {
        let server = TestServer::start().await;
        let http = server.http();
        let (_alice, alice_token) = http.register("alice", PASSWORD).await;
        let (bob, bob_token) = http.register("bob", PASSWORD).await;
        let out = server.admin_create_user("root", PASSWORD, true).await;
        assert!(out.status.success(), "{out:?}");
        let root = http.login("root", PASSWORD).await;
        let ward = http
            .create_room(
                &bob_token,
                &json!({ "preset": "public_chat", "name": "Ward 7" }),
            )
            .await;
        let other = http
            .create_room(&bob_token, &json!({ "name": "Another" }))
            .await;
        http.post_json(
            &format!("/_matrix/client/v3/join/{}", enc(&ward)),
            Some(&alice_token),
            &json!({}),
        )
        .await
        .ok();
        let send = format!(
            "/_matrix/client/v3/rooms/{}/send/m.room.message/r1",
            enc(&ward)
        );
        let ev = http
            .put_json(
                &send,
                Some(&bob_token),
                &json!({ "msgtype": "m.text", "body": "MARKER-reported" }),
            )
            .await
            .ok();
        let event_id = ev["event_id"].as_str().unwrap().to_owned();
        let report = format!(
            "/_matrix/client/v3/rooms/{}/report/{}",
            enc(&ward),
            enc(&event_id)
        );
        http.post_json(&report, Some(&alice_token), &json!({ "reason": "rude" }))
            .await
            .ok();

        http.get("/_synapse/admin/v1/rooms", Some(&alice_token))
            .await
            .assert_error(403, &["M_FORBIDDEN"]);
        http.get("/_synapse/admin/v1/event_reports", Some(&alice_token))
            .await
            .assert_error(403, &["M_FORBIDDEN"]);

        // Rooms: list (ordered, searched, paged), details, members, state. `public` means
        // "in the room directory", as on Synapse (a public_chat room is not listed by default).
        let list = http
            .get("/_synapse/admin/v1/rooms?order_by=name", Some(&root))
            .await
            .ok();
        assert_eq!(list["total_rooms"], 2, "{list}");
        assert_eq!(list["offset"], 0);
        assert_eq!(list["rooms"][0]["name"], "Another");
        let w = &list["rooms"][1];
        assert_eq!(
            (w["room_id"].as_str(), w["joined_members"].clone()),
            (Some(ward.as_str()), json!(2))
        );
        assert_eq!(
            (
                w["public"].clone(),
                w["join_rules"].clone(),
                w["creator"].clone()
            ),
            (json!(false), json!("public"), json!(bob))
        );
        let page = http
            .get(
                "/_synapse/admin/v1/rooms?limit=1&order_by=joined_members&dir=b",
                Some(&root),
            )
            .await
            .ok();
        assert_eq!(page["rooms"][0]["room_id"], ward.as_str());
        assert_eq!(page["next_batch"], 1);
        let found = http
            .get("/_synapse/admin/v1/rooms?search_term=WARD", Some(&root))
            .await
            .ok();
        assert_eq!(found["total_rooms"], 1);
        http.get("/_synapse/admin/v1/rooms?order_by=colour", Some(&root))
            .await
            .assert_error(400, &["M_INVALID_PARAM"]);
        let d = http
            .get(
                &format!("/_synapse/admin/v1/rooms/{}", enc(&other)),
                Some(&root),
            )
            .await
            .ok();
        assert_eq!(
            (d["name"].clone(), d["joined_members"].clone()),
            (json!("Another"), json!(1))
        );
        let m = http
            .get(
                &format!("/_synapse/admin/v1/rooms/{}/members", enc(&ward)),
                Some(&root),
            )
            .await
            .ok();
        assert_eq!(m["total"], 2);
        let st = http
            .get(
                &format!("/_synapse/admin/v1/rooms/{}/state", enc(&ward)),
                Some(&root),
            )
            .await
            .ok();
        assert!(
            st["state"]
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e["type"] == "m.room.create")
        );
        http.get("/_synapse/admin/v1/rooms/!nope:localhost", Some(&root))
            .await
            .assert_error(404, &["M_NOT_FOUND"]);
        http.get("/_synapse/admin/v1/rooms/not-a-room", Some(&root))
            .await
            .assert_error(400, &["M_INVALID_PARAM"]);

        // Event reports: list, read (with the event), delete.
        let reports = http
            .get("/_synapse/admin/v1/event_reports", Some(&root))
            .await
            .ok();
        assert_eq!(reports["total"], 1, "{reports}");
        let r = &reports["event_reports"][0];
        assert_eq!(
            (
                r["event_id"].as_str(),
                r["sender"].as_str(),
                r["name"].as_str()
            ),
            (Some(event_id.as_str()), Some(bob.as_str()), Some("Ward 7"))
        );
        assert_eq!(r["reason"], "rude");
        let id = r["id"].as_i64().unwrap();
        let one = http
            .get(
                &format!("/_synapse/admin/v1/event_reports/{id}"),
                Some(&root),
            )
            .await
            .ok();
        assert_eq!(one["event_json"]["content"]["body"], "MARKER-reported");
        let p = format!("/_synapse/admin/v1/event_reports/{id}");
        http.request("DELETE", &p, Some(&root), None).await.ok();
        http.get(&p, Some(&root))
            .await
            .assert_error(404, &["M_NOT_FOUND"]);
        http.get("/_synapse/admin/v1/event_reports/x", Some(&root))
            .await
            .assert_error(400, &["M_INVALID_PARAM"]);
        let empty = http
            .get("/_synapse/admin/v1/event_reports", Some(&root))
            .await
            .ok();
        assert_eq!(empty["total"], 0);
    })
    .await;
}
