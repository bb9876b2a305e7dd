//! TURN (issue 14): `GET /_matrix/client/v3/voip/turnServer` gives coturn shared-secret
//! credentials (`[voip]`): username `expiry:user_id`, password base64(HMAC-SHA1(secret,
//! username)), checked here with openssl as coturn would; `{}` when no TURN is configured; a
//! token is required.

use std::io::Write;
use std::process::{Command, Stdio};

use handover_e2e::account::Account;
use handover_e2e::*;

const PATH: &str = "/_matrix/client/v3/voip/turnServer";

/// base64(HMAC-SHA1(secret, msg)) by openssl, independently of the server.
fn coturn_password(secret: &str, msg: &str) -> String {
    let mut dgst = Command::new("openssl")
        .args(["dgst", "-sha1", "-hmac", secret, "-binary"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("openssl");
    dgst.stdin
        .take()
        .unwrap()
        .write_all(msg.as_bytes())
        .unwrap();
    let mac = dgst.wait_with_output().unwrap().stdout;
    assert_eq!(mac.len(), 20, "an HMAC-SHA1");
    handover_e2e::federation::base64(&mac)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn turn_credentials_coturn_can_check() {
    with_timeout(120, async {
        let opts = ServerOptions {
            extra_toml: r#"
[voip]
turn_uris = ["turn:turn.example.org:3478?transport=udp", "turns:turn.example.org:443?transport=tcp"]
turn_shared_secret = "e2e-turn-secret"
turn_ttl = "2h"
"#
            .into(),
            ..Default::default()
        };
        let server = TestServer::start_with(opts).await;
        let alice = Account::register(server.http(), "alice").await;
        let v = alice.get(PATH).await.ok();
        assert_eq!(v["ttl"], 7200);
        assert_eq!(v["uris"].as_array().unwrap().len(), 2);
        let username = v["username"].as_str().unwrap();
        let (expiry, user) = username.split_once(':').unwrap();
        assert_eq!(user, alice.user_id);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let expiry: u64 = expiry.parse().unwrap();
        assert!(expiry.abs_diff(now + 7200) < 60, "{expiry} vs {now}");
        assert_eq!(v["password"], coturn_password("e2e-turn-secret", username));

        server
            .http()
            .get(PATH, None)
            .await
            .assert_error(401, &["M_MISSING_TOKEN"]);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_turn_configured_answers_empty() {
    with_timeout(60, async {
        let server = TestServer::start().await;
        let alice = Account::register(server.http(), "alice").await;
        assert_eq!(alice.get(PATH).await.ok(), json!({}));
    })
    .await;
}
