//! Bad input over raw HTTP: status codes and errcodes.

use handover_e2e::*;

const V3: &str = "/_matrix/client/v3";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_and_mistyped_json() {
    with_timeout(120, async {
        let server = TestServer::start().await;
        let http = server.http();
        let (_, token) = http.register("alice", PASSWORD).await;
        let t = Some(token.as_str());
        let room_id = http.create_room(&token, &json!({})).await;

        // Not JSON at all / truncated JSON.
        for body in [&b"{\"name\": "[..], b"this is not json", b"{]"] {
            let r = http.request("POST", &format!("{V3}/createRoom"), t, Some(("application/json", body.to_vec()))).await;
            r.assert_error(400, &["M_NOT_JSON", "M_BAD_JSON"]);
        }
        let r = http
            .request("POST", &format!("{V3}/login"), None, Some(("application/json", b"{\"type\": \"m.login.password\",".to_vec())))
            .await;
        r.assert_error(400, &["M_NOT_JSON", "M_BAD_JSON"]);

        // JSON, but not an object.
        let r = http.request("POST", &format!("{V3}/login"), None, Some(("application/json", b"[1,2,3]".to_vec()))).await;
        r.assert_error(400, &["M_BAD_JSON", "M_NOT_JSON"]);
        let path = format!("{V3}/rooms/{}/send/m.room.message/txn-arr", enc(&room_id));
        let r = http.request("PUT", &path, t, Some(("application/json", b"[\"body\"]".to_vec()))).await;
        r.assert_error(400, &["M_BAD_JSON", "M_NOT_JSON"]);

        // Wrong field types.
        http.post_json(&format!("{V3}/createRoom"), t, &json!({"name": 42})).await.assert_error(400, &["M_BAD_JSON"]);
        http.post_json(&format!("{V3}/createRoom"), t, &json!({"invite": "@bob:localhost"}))
            .await
            .assert_error(400, &["M_BAD_JSON"]);
        http.post_json(
            &format!("{V3}/login"),
            None,
            &json!({"type": "m.login.password", "identifier": {"type": "m.id.user", "user": 12}, "password": PASSWORD}),
        )
        .await
        .assert_error(400, &["M_BAD_JSON"]);
        let typing = format!("{V3}/rooms/{}/typing/{}", enc(&room_id), enc("@alice:localhost"));
        http.put_json(&typing, t, &json!({"typing": "yes"})).await.assert_error(400, &["M_BAD_JSON"]);
        // Missing required field.
        http.put_json(&typing, t, &json!({})).await.assert_error(400, &["M_BAD_JSON", "M_MISSING_PARAM"]);

        // Bad query parameters.
        let r = http.get(&format!("{V3}/rooms/{}/messages?dir=sideways", enc(&room_id)), t).await;
        r.assert_error(400, &["M_INVALID_PARAM", "M_BAD_JSON", "M_MISSING_PARAM"]);
        let r = http.get(&format!("{V3}/rooms/{}/messages?dir=b&limit=lots", enc(&room_id)), t).await;
        r.assert_error(400, &["M_INVALID_PARAM", "M_BAD_JSON"]);

        // The server still works afterwards.
        http.get(&format!("{V3}/account/whoami"), t).await.ok();
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_events() {
    with_timeout(180, async {
        let server = TestServer::start_with(ServerOptions {
            max_upload_bytes: 1024 * 1024,
            ..Default::default()
        })
        .await;
        let http = server.http();
        let (_, token) = http.register("alice", PASSWORD).await;
        let t = Some(token.as_str());

        let room_id = http.create_room(&token, &json!({})).await;

        // A message event whose JSON exceeds the 65536-byte PDU limit -> 413 M_TOO_LARGE.
        let path = format!("{V3}/rooms/{}/send/m.room.message/big1", enc(&room_id));
        http.put_json(
            &path,
            t,
            &json!({"msgtype": "m.text", "body": "x".repeat(70_000)}),
        )
        .await
        .assert_error(413, &["M_TOO_LARGE"]);
        // State event too.
        let path = format!("{V3}/rooms/{}/state/m.room.topic/", enc(&room_id));
        http.put_json(&path, t, &json!({"topic": "y".repeat(70_000)}))
            .await
            .assert_error(413, &["M_TOO_LARGE"]);

        // Nothing was stored: the room has no m.room.message and no giant topic.
        let path = format!("{V3}/rooms/{}/messages?dir=b&limit=50", enc(&room_id));
        let msgs = http.get(&path, t).await.ok();
        assert!(
            !msgs["chunk"]
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e["type"] == "m.room.message" || e["type"] == "m.room.topic"),
            "an oversized event was stored: {msgs}"
        );
    })
    .await;
}

fn huge_json(prefix: &str) -> Vec<u8> {
    let mut v = prefix.as_bytes().to_vec();
    v.extend(std::iter::repeat_n(b'z', 16 * 1024 * 1024));
    v.extend(b"\"}");
    v
}

/// A 16 MiB JSON body (above the configured limit) -> 413 M_TOO_LARGE. Sent over raw TCP,
/// reading while writing (like curl), so an early 413 is seen even if the server then
/// closes the connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn huge_json_body_gets_413() {
    with_timeout(120, async {
        let server = TestServer::start().await;
        let http = server.http();
        let (_, token) = http.register("alice", PASSWORD).await;
        for (path, t, prefix) in [
            (
                format!("{V3}/login"),
                None,
                r#"{"type": "m.login.password", "password": ""#,
            ),
            (
                format!("{V3}/createRoom"),
                Some(token.as_str()),
                r#"{"name": ""#,
            ),
        ] {
            http.raw_streaming_request("POST", &path, t, "application/json", huge_json(prefix))
                .await
                .assert_error(413, &["M_TOO_LARGE"]);
        }
        // The server is still healthy.
        http.get(&format!("{V3}/account/whoami"), Some(&token))
            .await
            .ok();
    })
    .await;
}

/// The same through reqwest/hyper (matrix-sdk's HTTP stack), which writes the whole body
/// before reading the response: a server that answers 413 early and then closes the socket
/// makes such clients fail with EPIPE/ECONNRESET instead of seeing M_TOO_LARGE. The server
/// drains oversized bodies (bounded) so the 413 reaches them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn huge_json_body_413_reaches_reqwest_clients() {
    with_timeout(120, async {
        let server = TestServer::start().await;
        let http = server.http();
        let (_, token) = http.register("alice", PASSWORD).await;
        for (path, t, prefix) in [
            (
                format!("{V3}/login"),
                None,
                r#"{"type": "m.login.password", "password": ""#,
            ),
            (
                format!("{V3}/createRoom"),
                Some(token.as_str()),
                r#"{"name": ""#,
            ),
        ] {
            for _ in 0..3 {
                match http
                    .try_request(
                        "POST",
                        &path,
                        t,
                        Some(("application/json", huge_json(prefix))),
                    )
                    .await
                {
                    Ok(r) => r.assert_error(413, &["M_TOO_LARGE"]),
                    Err(e) => panic!(
                        "POST {path} with a 16 MiB body: no HTTP response reached reqwest ({e:?}); \
                         drain the body (or close gracefully) so clients see 413 M_TOO_LARGE"
                    ),
                }
            }
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_rooms_and_non_members() {
    with_timeout(120, async {
        let server = TestServer::start().await;
        let http = server.http();
        let (_, alice) = http.register("alice", PASSWORD).await;
        let (_, bob) = http.register("bob", PASSWORD).await;
        let room_id = http
            .create_room(&alice, &json!({"preset": "private_chat", "name": "secret"}))
            .await;
        let r = enc(&room_id);
        let path = format!("{V3}/rooms/{r}/send/m.room.message/a1");
        let ev = http
            .put_json(
                &path,
                Some(&alice),
                &json!({"msgtype": "m.text", "body": "hidden"}),
            )
            .await
            .ok();
        let event_id = ev["event_id"].as_str().unwrap().to_owned();

        // Unknown room: 404 M_NOT_FOUND or 403 M_FORBIDDEN.
        let unknown = enc("!doesnotexist:localhost");
        for path in [
            format!("{V3}/rooms/{unknown}/messages?dir=b"),
            format!("{V3}/rooms/{unknown}/state"),
            format!("{V3}/rooms/{unknown}/state/m.room.name/"),
            format!("{V3}/rooms/{unknown}/members"),
        ] {
            http.get(&path, Some(&alice))
                .await
                .assert_error_any(&[(404, "M_NOT_FOUND"), (403, "M_FORBIDDEN")]);
        }
        http.put_json(
            &format!("{V3}/rooms/{unknown}/send/m.room.message/u1"),
            Some(&alice),
            &json!({"body": "x", "msgtype": "m.text"}),
        )
        .await
        .assert_error_any(&[(404, "M_NOT_FOUND"), (403, "M_FORBIDDEN")]);
        http.post_json(&format!("{V3}/join/{unknown}"), Some(&alice), &json!({}))
            .await
            .assert_error_any(&[(404, "M_NOT_FOUND"), (403, "M_FORBIDDEN")]);

        // Non-member bob on alice's private room: 403 M_FORBIDDEN.
        for path in [
            format!("{V3}/rooms/{r}/messages?dir=b"),
            format!("{V3}/rooms/{r}/state"),
            format!("{V3}/rooms/{r}/state/m.room.name/"),
            format!("{V3}/rooms/{r}/members"),
        ] {
            let resp = http.get(&path, Some(&bob)).await;
            resp.assert_error(403, &["M_FORBIDDEN"]);
            assert!(
                !resp.text().contains("hidden") && !resp.text().contains("secret"),
                "leak: {}",
                resp.text()
            );
        }
        // A single event of a room you cannot see: 404 M_NOT_FOUND (or 403).
        let resp = http
            .get(
                &format!("{V3}/rooms/{r}/event/{}", enc(&event_id)),
                Some(&bob),
            )
            .await;
        resp.assert_error_any(&[(404, "M_NOT_FOUND"), (403, "M_FORBIDDEN")]);
        assert!(!resp.text().contains("hidden"));
        // Writing and joining an invite-only room.
        http.put_json(
            &format!("{V3}/rooms/{r}/send/m.room.message/b1"),
            Some(&bob),
            &json!({"msgtype": "m.text", "body": "x"}),
        )
        .await
        .assert_error(403, &["M_FORBIDDEN"]);
        http.put_json(
            &format!("{V3}/rooms/{r}/state/m.room.name/"),
            Some(&bob),
            &json!({"name": "mine"}),
        )
        .await
        .assert_error(403, &["M_FORBIDDEN"]);
        http.post_json(&format!("{V3}/join/{r}"), Some(&bob), &json!({}))
            .await
            .assert_error(403, &["M_FORBIDDEN"]);
        // Alice's room is untouched.
        let name = http
            .get(&format!("{V3}/rooms/{r}/state/m.room.name/"), Some(&alice))
            .await
            .ok();
        assert_eq!(name["name"], "secret");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_missing_bogus_and_logged_out() {
    with_timeout(120, async {
        let server = TestServer::start().await;
        let http = server.http();
        let (_, token) = http.register("alice", PASSWORD).await;
        let whoami = format!("{V3}/account/whoami");

        // Missing token.
        for path in [
            whoami.clone(),
            format!("{V3}/sync?timeout=0"),
            format!("{V3}/joined_rooms"),
        ] {
            http.get(&path, None)
                .await
                .assert_error(401, &["M_MISSING_TOKEN"]);
        }
        http.post_json(&format!("{V3}/createRoom"), None, &json!({}))
            .await
            .assert_error(401, &["M_MISSING_TOKEN"]);

        // Bogus token.
        for bogus in ["syt_bogus_token", "x", &format!("{token}x")] {
            let r = http.get(&whoami, Some(bogus)).await;
            r.assert_error(401, &["M_UNKNOWN_TOKEN"]);
            assert!(
                r.json()["soft_logout"].is_null() || r.json()["soft_logout"] == false,
                "bogus token must not be a soft logout"
            );
        }
        http.get(&format!("{V3}/sync?timeout=0"), Some("nope"))
            .await
            .assert_error(401, &["M_UNKNOWN_TOKEN"]);

        // Two devices; logging out one kills only its token.
        let token2 = http.login("alice", PASSWORD).await;
        assert_ne!(token, token2);
        http.get(&whoami, Some(&token2)).await.ok();
        http.post_json(&format!("{V3}/logout"), Some(&token2), &json!({}))
            .await
            .ok();
        http.get(&whoami, Some(&token2))
            .await
            .assert_error(401, &["M_UNKNOWN_TOKEN"]);
        http.get(&whoami, Some(&token)).await.ok();

        // /logout/all kills every token.
        let token3 = http.login("alice", PASSWORD).await;
        http.post_json(&format!("{V3}/logout/all"), Some(&token3), &json!({}))
            .await
            .ok();
        http.get(&whoami, Some(&token))
            .await
            .assert_error(401, &["M_UNKNOWN_TOKEN"]);
        http.get(&whoami, Some(&token3))
            .await
            .assert_error(401, &["M_UNKNOWN_TOKEN"]);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_endpoints_and_wrong_methods() {
    with_timeout(60, async {
        let server = TestServer::start().await;
        let http = server.http();
        let (_, token) = http.register("alice", PASSWORD).await;
        let t = Some(token.as_str());

        for path in [
            format!("{V3}/this/does/not/exist"),
            "/_matrix/client/v3/nonexistent".to_owned(),
            "/_matrix/client/v9/account/whoami".to_owned(),
            "/_matrix/media/v3/nonexistent".to_owned(),
        ] {
            http.get(&path, t)
                .await
                .assert_error(404, &["M_UNRECOGNIZED"]);
        }
        http.post_json(&format!("{V3}/not_an_endpoint"), t, &json!({}))
            .await
            .assert_error(404, &["M_UNRECOGNIZED"]);

        // Known paths, wrong method -> 405 M_UNRECOGNIZED.
        http.request(
            "PUT",
            &format!("{V3}/login"),
            None,
            Some(("application/json", b"{}".to_vec())),
        )
        .await
        .assert_error(405, &["M_UNRECOGNIZED"]);
        http.get(&format!("{V3}/createRoom"), t)
            .await
            .assert_error(405, &["M_UNRECOGNIZED"]);
        http.request("DELETE", &format!("{V3}/account/whoami"), t, None)
            .await
            .assert_error(405, &["M_UNRECOGNIZED"]);
        http.request(
            "POST",
            "/_matrix/client/versions",
            None,
            Some(("application/json", b"{}".to_vec())),
        )
        .await
        .assert_error(405, &["M_UNRECOGNIZED"]);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn versions_and_cors() {
    with_timeout(60, async {
        let server = TestServer::start().await;
        let http = server.http();

        let v = http.get("/_matrix/client/versions", None).await.ok();
        let versions: Vec<&str> = v["versions"]
            .as_array()
            .expect("versions array")
            .iter()
            .filter_map(|v| v.as_str())
            .collect();
        assert!(
            versions.contains(&"v1.11"),
            "v1.11 (authenticated media) not advertised: {v}"
        );
        assert!(versions.contains(&"v1.12"), "v1.12 not advertised: {v}");

        // CORS preflight and headers (spec: all client-server endpoints).
        let r = http
            .client()
            .request(
                reqwest::Method::OPTIONS,
                http.url("/_matrix/client/v3/login"),
            )
            .header("Origin", "https://app.example")
            .header("Access-Control-Request-Method", "POST")
            .header(
                "Access-Control-Request-Headers",
                "authorization, content-type",
            )
            .send()
            .await
            .expect("OPTIONS");
        assert!(
            r.status().is_success(),
            "CORS preflight status {}",
            r.status()
        );
        let h = r.headers();
        assert_eq!(
            h.get("access-control-allow-origin")
                .map(|v| v.to_str().unwrap()),
            Some("*"),
            "{h:?}"
        );
        let methods = h
            .get("access-control-allow-methods")
            .map(|v| v.to_str().unwrap().to_ascii_uppercase())
            .unwrap_or_default();
        assert!(
            methods.contains("POST") || methods == "*",
            "allow-methods {methods:?}"
        );
        let headers = h
            .get("access-control-allow-headers")
            .map(|v| v.to_str().unwrap().to_ascii_lowercase())
            .unwrap_or_default();
        assert!(
            headers.contains("authorization") || headers == "*",
            "allow-headers {headers:?}"
        );

        let r = http
            .client()
            .get(http.url("/_matrix/client/versions"))
            .header("Origin", "https://app.example")
            .send()
            .await
            .unwrap();
        assert_eq!(
            r.headers()
                .get("access-control-allow-origin")
                .map(|v| v.to_str().unwrap()),
            Some("*")
        );
    })
    .await;
}

/// ruma's login body parser panics on a body without "type"; the server must still answer
/// M_BAD_JSON rather than drop the connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_without_type_is_bad_json() {
    with_timeout(60, async {
        let server = TestServer::start().await;
        let http = server.http();
        http.post_json("/_matrix/client/v3/login", None, &serde_json::json!({}))
            .await
            .assert_error(400, &["M_BAD_JSON"]);
        // The server is still serving.
        http.get("/_matrix/client/versions", None).await.ok();
    })
    .await;
}
