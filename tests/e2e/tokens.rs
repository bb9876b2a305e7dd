//! Access tokens (issue 9, item 19): never from the query string; expiry with refresh tokens
//! (spec `/refresh`), off unless `[sessions] access_token_lifetime` is set.

use std::time::Duration;

use handover_e2e::*;
use serde_json::json;

const WHOAMI: &str = "/_matrix/client/v3/account/whoami";
const REFRESH: &str = "/_matrix/client/v3/refresh";

#[tokio::test]
async fn query_string_access_token_is_refused() {
    let server = TestServer::start().await;
    let http = server.http();
    let (_, token) = http.register("alice", "a long password").await;
    http.get(WHOAMI, Some(&token)).await.ok();
    let resp = http
        .get(&format!("{WHOAMI}?access_token={token}"), None)
        .await;
    resp.assert_error(401, &["M_MISSING_TOKEN"]);
    // Next to a good header too: the token was still put into a URL.
    let resp = http
        .get(&format!("{WHOAMI}?access_token={token}"), Some(&token))
        .await;
    resp.assert_error(401, &["M_MISSING_TOKEN"]);
}

fn login_refreshable(user: &str) -> serde_json::Value {
    let mut body = login_body(user, "a long password");
    body["refresh_token"] = json!(true);
    body
}

#[tokio::test]
async fn tokens_never_expire_by_default() {
    let server = TestServer::start().await;
    let http = server.http();
    http.register("alice", "a long password").await;
    let login = http
        .post_json(
            "/_matrix/client/v3/login",
            None,
            &login_refreshable("alice"),
        )
        .await
        .ok();
    assert!(login.get("refresh_token").is_none(), "{login}");
    assert!(login.get("expires_in_ms").is_none(), "{login}");
}

#[tokio::test]
async fn expired_token_soft_logout_and_single_use_refresh() {
    let server = TestServer::start_with(ServerOptions {
        extra_toml: "[sessions]\naccess_token_lifetime = \"2s\"\n".into(),
        ..ServerOptions::default()
    })
    .await;
    let http = server.http();
    // Register with refresh_token: true gets a pair too.
    let body = json!({"username": "alice", "password": "a long password",
                      "refresh_token": true, "auth": {"type": "m.login.dummy"}});
    let reg = http
        .post_json("/_matrix/client/v3/register", None, &body)
        .await;
    let reg = if reg.status == 401 {
        let mut body = body.clone();
        body["auth"]["session"] = reg.json()["session"].clone();
        http.post_json("/_matrix/client/v3/register", None, &body)
            .await
    } else {
        reg
    };
    let reg = reg.ok();
    assert_eq!(reg["expires_in_ms"], 2000, "{reg}");
    assert!(reg["refresh_token"].is_string(), "{reg}");

    // A client that does not ask keeps a token that does not expire.
    let plain = http.login("alice", "a long password").await;
    let login = http
        .post_json(
            "/_matrix/client/v3/login",
            None,
            &login_refreshable("alice"),
        )
        .await
        .ok();
    let access = login["access_token"].as_str().unwrap().to_owned();
    let refresh = login["refresh_token"].as_str().unwrap().to_owned();
    assert_eq!(login["expires_in_ms"], 2000);
    http.get(WHOAMI, Some(&access)).await.ok();

    tokio::time::sleep(Duration::from_millis(2500)).await;
    let expired = http.get(WHOAMI, Some(&access)).await;
    expired.assert_error(401, &["M_UNKNOWN_TOKEN"]);
    assert_eq!(expired.json()["soft_logout"], true, "{}", expired.text());
    http.get(WHOAMI, Some(&plain)).await.ok();

    let next = http
        .post_json(REFRESH, None, &json!({"refresh_token": refresh}))
        .await
        .ok();
    assert_eq!(next["expires_in_ms"], 2000);
    let new_access = next["access_token"].as_str().unwrap();
    let me = http.get(WHOAMI, Some(new_access)).await.ok();
    assert_eq!(me["device_id"], login["device_id"]);

    // Spent, and unknown: refused, and not a soft logout.
    for t in [refresh.as_str(), "hot_made_up"] {
        let again = http
            .post_json(REFRESH, None, &json!({"refresh_token": t}))
            .await;
        again.assert_error(401, &["M_UNKNOWN_TOKEN"]);
        assert_ne!(again.json()["soft_logout"], true, "{}", again.text());
    }
    // No leaks of either token into the server's log.
    let log = server.stderr();
    assert!(!log.contains(&refresh) && !log.contains(&access));
}

/// `[sessions] max_session_age`: past it the session is over (`soft_logout: false`, the device
/// deleted), whatever the refresh tokens say; signing in again starts a new session.
#[tokio::test]
async fn max_session_age_ends_the_session_for_good() {
    let server = TestServer::start_with(ServerOptions {
        extra_toml: "[sessions]\naccess_token_lifetime = \"1m\"\nmax_session_age = \"3s\"\nidle_timeout = \"2m\"\n".into(),
        ..ServerOptions::default()
    })
    .await;
    let http = server.http();
    let (_, token) = http.register("alice", PASSWORD).await;
    let login = http
        .post_json(
            "/_matrix/client/v3/login",
            None,
            &json!({"type": "m.login.password", "password": PASSWORD, "refresh_token": true,
                    "identifier": {"type": "m.id.user", "user": "alice"}}),
        )
        .await
        .ok();
    let access = login["access_token"].as_str().unwrap().to_owned();
    let refresh = login["refresh_token"].as_str().unwrap().to_owned();
    http.get("/_matrix/client/v3/account/whoami", Some(&access))
        .await
        .ok();
    tokio::time::sleep(Duration::from_secs(4)).await;
    let res = http
        .get("/_matrix/client/v3/account/whoami", Some(&access))
        .await;
    res.assert_error(401, &["M_UNKNOWN_TOKEN"]);
    // `soft_logout` false (the spec's default, which ruma leaves out).
    assert_ne!(res.json()["soft_logout"], true, "{}", res.text());
    assert!(res.text().contains("maximum session age"), "{}", res.text());
    // The device is gone with its refresh token: no way back but signing in.
    http.post_json(
        "/_matrix/client/v3/refresh",
        None,
        &json!({"refresh_token": refresh}),
    )
    .await
    .assert_error(401, &["M_UNKNOWN_TOKEN"]);
    // The registration's session is as old: ended too.
    http.get("/_matrix/client/v3/account/whoami", Some(&token))
        .await
        .assert_error(401, &["M_UNKNOWN_TOKEN"]);
    let again = http.login("alice", PASSWORD).await;
    http.get("/_matrix/client/v3/account/whoami", Some(&again))
        .await
        .ok();
}
