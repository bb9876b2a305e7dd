//! Registration modes: open (covered elsewhere), token, closed + `handover admin create-user`.

use handover_e2e::*;

const REGISTER: &str = "/_matrix/client/v3/register";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_mode_advertises_dummy_flow() {
    with_timeout(60, async {
        let server = TestServer::start().await;
        let http = server.http();
        let r = http.post_json(REGISTER, None, &json!({"username": "alice", "password": PASSWORD})).await;
        assert_eq!(r.status, 401, "register without auth must start UIA: {}", r.text());
        let j = r.json();
        assert!(j["session"].is_string(), "UIA session missing: {j}");
        let flows = j["flows"].as_array().expect("UIA flows");
        assert!(
            flows.iter().any(|f| f["stages"] == json!(["m.login.dummy"])),
            "open registration must offer [m.login.dummy]: {j}"
        );
        // Availability check.
        let a = http.get("/_matrix/client/v3/register/available?username=alice", None).await.ok();
        assert_eq!(a["available"], true);
        http.register("alice", PASSWORD).await;
        http.get("/_matrix/client/v3/register/available?username=alice", None)
            .await
            .assert_error(400, &["M_USER_IN_USE"]);
        // Invalid user names.
        let r = http.post_json(REGISTER, None, &json!({"username": "Not Valid!", "password": PASSWORD, "auth": {"type": "m.login.dummy"}})).await;
        r.assert_error_any(&[(400, "M_INVALID_USERNAME"), (401, "M_INVALID_USERNAME")]);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closed_mode_rejects_register_and_admin_create_user_works() {
    with_timeout(180, async {
        let mut server = TestServer::start_with(ServerOptions { registration: Registration::Closed, ..Default::default() }).await;
        let http = server.http();

        // /register is refused with 403 M_FORBIDDEN, with or without auth.
        http.post_json(REGISTER, None, &json!({"username": "mallory", "password": PASSWORD}))
            .await
            .assert_error(403, &["M_FORBIDDEN"]);
        http.post_json(REGISTER, None, &json!({"username": "mallory", "password": PASSWORD, "auth": {"type": "m.login.dummy"}}))
            .await
            .assert_error(403, &["M_FORBIDDEN"]);
        // matrix-sdk sees the same.
        let c = server.client().await;
        let err = register_with(&c, "mallory", PASSWORD, None).await.expect_err("closed registration");
        assert_eq!(err.as_client_api_error().map(|e| e.status_code.as_u16()), Some(403), "{err:?}");
        http.post_json("/_matrix/client/v3/login", None, &login_body("mallory", PASSWORD))
            .await
            .assert_error(403, &["M_FORBIDDEN"]);

        // The admin CLI creates users while the server runs.
        let out = server.admin_create_user("carol", "carol-password", false).await;
        assert!(out.status.success(), "admin create-user failed: {out:?}\nstderr: {}", String::from_utf8_lossy(&out.stderr));
        let carol = server.login("carol", "carol-password").await;
        assert_eq!(carol.user_id().unwrap().as_str(), "@carol:localhost");
        carol.whoami().await.expect("carol whoami");

        let out = server.admin_create_user("dave", "dave-password", true).await;
        assert!(out.status.success(), "admin create-user --admin failed: {out:?}");
        server.login("dave", "dave-password").await;

        // Duplicate user -> non-zero exit, the original password keeps working.
        let out = server.admin_create_user("carol", "another-password", false).await;
        assert!(!out.status.success(), "creating an existing user must fail: {out:?}");
        http.post_json("/_matrix/client/v3/login", None, &login_body("carol", "another-password"))
            .await
            .assert_error(403, &["M_FORBIDDEN"]);
        server.login("carol", "carol-password").await;

        // And while the server is stopped.
        server.stop().await;
        let out = server.admin_create_user("erin", "erin-password", false).await;
        assert!(out.status.success(), "admin create-user (server stopped) failed: {out:?}\nstderr: {}", String::from_utf8_lossy(&out.stderr));
        server.restart().await;
        server.login("erin", "erin-password").await;
        server.login("carol", "carol-password").await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_mode_requires_a_valid_registration_token() {
    with_timeout(120, async {
        let server = TestServer::start_with(ServerOptions {
            registration: Registration::Token(vec!["letmein".into()]),
            ..Default::default()
        })
        .await;
        let http = server.http();

        // UIA flows require m.login.registration_token; dummy alone is not offered.
        let r = http.post_json(REGISTER, None, &json!({"username": "alice", "password": PASSWORD})).await;
        assert_eq!(r.status, 401, "{}", r.text());
        let j = r.json();
        let session = j["session"].as_str().expect("session").to_owned();
        let flows = j["flows"].as_array().expect("flows");
        assert!(!flows.is_empty());
        assert!(
            flows.iter().all(|f| f["stages"].as_array().unwrap().iter().any(|s| s == "m.login.registration_token")),
            "every flow must include m.login.registration_token: {j}"
        );

        // Wrong token -> refused, no account.
        let r = http
            .post_json(
                REGISTER,
                None,
                &json!({"username": "alice", "password": PASSWORD,
                        "auth": {"type": "m.login.registration_token", "token": "wrong", "session": session}}),
            )
            .await;
        assert!(r.status == 401 || r.status == 403, "wrong token: expected 401/403, got {} {}", r.status, r.text());
        assert!(r.json()["access_token"].is_null());
        assert!(
            matches!(r.errcode().as_deref(), Some("M_FORBIDDEN" | "M_UNAUTHORIZED")),
            "wrong token errcode: {}",
            r.text()
        );
        // Dummy auth is not enough.
        let r = http
            .post_json(REGISTER, None, &json!({"username": "alice", "password": PASSWORD, "auth": {"type": "m.login.dummy", "session": session}}))
            .await;
        assert!(r.status == 401 || r.status == 403, "dummy auth in token mode: got {} {}", r.status, r.text());
        // Via matrix-sdk with the wrong token.
        let c = server.client().await;
        register_with(&c, "alice", PASSWORD, Some("wrong")).await.expect_err("wrong token accepted");
        assert!(c.user_id().is_none());
        http.post_json("/_matrix/client/v3/login", None, &login_body("alice", PASSWORD))
            .await
            .assert_error(403, &["M_FORBIDDEN"]);

        // Right token via matrix-sdk -> registered and logged in.
        let c = server.client().await;
        let resp = register_with(&c, "alice", PASSWORD, Some("letmein")).await.expect("register with the right token");
        assert_eq!(resp.user_id.as_str(), "@alice:localhost");
        assert!(c.user_id().is_some());
        server.login("alice", PASSWORD).await;

        // Validity endpoint.
        let v = http.get("/_matrix/client/v1/register/m.login.registration_token/validity?token=letmein", None).await.ok();
        assert_eq!(v["valid"], true);
        let v = http.get("/_matrix/client/v1/register/m.login.registration_token/validity?token=wrong", None).await.ok();
        assert_eq!(v["valid"], false);
    })
    .await;
}
