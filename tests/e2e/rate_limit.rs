//! Login rate limiting.

use handover_e2e::*;

const LOGIN: &str = "/_matrix/client/v3/login";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_logins_get_429_with_retry_after() {
    with_timeout(120, async {
        let server = TestServer::start_with(ServerOptions {
            rate_limit: Some(LoginRateLimit {
                login_burst: 3,
                login_per_second: 0.05,
            }),
            ..Default::default()
        })
        .await;
        let http = server.http();
        let (_, token) = http.register("alice", PASSWORD).await;

        let mut statuses = vec![];
        let mut limited = None;
        for i in 0..10 {
            let r = http
                .post_json(LOGIN, None, &login_body("alice", "wrong password"))
                .await;
            statuses.push(r.status);
            if r.status == 429 {
                limited = Some((i, r));
                break;
            }
            r.assert_error(403, &["M_FORBIDDEN"]);
        }
        let (i, r) = limited
            .unwrap_or_else(|| panic!("no 429 after 10 failed logins (burst 3): {statuses:?}"));
        assert!(
            i >= 3,
            "rate limited before the burst of 3 was used up: {statuses:?}"
        );
        assert!(
            i <= 4,
            "burst is 3 but the first 429 came at attempt {}: {statuses:?}",
            i + 1
        );
        r.assert_error(429, &["M_LIMIT_EXCEEDED"]);
        let retry = r.json()["retry_after_ms"].as_u64();
        assert!(
            retry.is_some_and(|ms| ms > 0 && ms <= 60_000),
            "retry_after_ms must be a positive integer (~20000 at 0.05/s): {}",
            r.text()
        );
        if let Some(h) = r.headers.get("retry-after") {
            let secs: u64 = h.to_str().unwrap().parse().expect("Retry-After in seconds");
            assert!(secs >= 1);
        }

        // Still limited: even the right password is refused for now.
        let r = http
            .post_json(LOGIN, None, &login_body("alice", PASSWORD))
            .await;
        r.assert_error(429, &["M_LIMIT_EXCEEDED"]);

        // Other endpoints are unaffected.
        http.get("/_matrix/client/v3/account/whoami", Some(&token))
            .await
            .ok();
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_rate_limit_when_disabled() {
    with_timeout(120, async {
        let server = TestServer::start().await;
        let http = server.http();
        http.register("alice", PASSWORD).await;
        for _ in 0..12 {
            http.post_json(LOGIN, None, &login_body("alice", "wrong password"))
                .await
                .assert_error(403, &["M_FORBIDDEN"]);
        }
        http.login("alice", PASSWORD).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn message_sends_are_limited_per_user_at_synapses_defaults() {
    with_timeout(120, async {
        let server = TestServer::start_with(ServerOptions {
            rate_limit: Some(LoginRateLimit {
                login_burst: 10,
                login_per_second: 0.2,
            }),
            ..Default::default()
        })
        .await;
        let http = server.http();
        let (_, alice) = http.register("alice", PASSWORD).await;
        let (_, bob) = http.register("bob", PASSWORD).await;
        let room = http
            .create_room(&alice, &json!({ "preset": "public_chat" }))
            .await;
        let send = |token: String, n: usize| {
            let (http, room) = (http.clone(), room.clone());
            async move {
                http.put_json(
                    &format!(
                        "/_matrix/client/v3/rooms/{}/send/m.room.message/t{n}",
                        enc(&room)
                    ),
                    Some(&token),
                    &json!({ "msgtype": "m.text", "body": "hi" }),
                )
                .await
            }
        };
        // rc_message: a burst of 10, then 0.2/s.
        for n in 0..10 {
            send(alice.clone(), n).await.ok();
        }
        let r = send(alice.clone(), 10).await;
        r.assert_error(429, &["M_LIMIT_EXCEEDED"]);
        assert!(
            r.json()["retry_after_ms"].as_u64().is_some_and(|ms| ms > 0),
            "{}",
            r.text()
        );
        // Per user: Bob is not affected by Alice's sends.
        http.post_json(
            &format!("/_matrix/client/v3/join/{}", enc(&room)),
            Some(&bob),
            &json!({}),
        )
        .await
        .ok();
        send(bob.clone(), 11).await.ok();
    })
    .await;
}
