//! OpenID (issue 14): `POST /user/{userId}/openid/request_token` gives a short-lived token that
//! a third party exchanges at the federation listener's `GET /openid/userinfo?access_token=` for
//! the user's id; the token is not an access token (and vice versa), and is only for oneself.

use handover_e2e::federation::FedNet;
use handover_e2e::*;
use serde_json::Value;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openid_token_names_its_user_to_a_third_party() {
    with_timeout(120, async {
        let net = FedNet::new();
        let hs = net.handover(&[], &[]).await;
        let alice = hs.register("alice").await;
        let bob = hs.register("bob").await;
        let path = |u: &str| format!("/_matrix/client/v3/user/{}/openid/request_token", enc(u));

        let v = alice.post(&path(&alice.user_id), &json!({})).await.ok();
        assert_eq!(v["token_type"], "Bearer");
        assert_eq!(v["matrix_server_name"], hs.name.as_str());
        assert_eq!(v["expires_in"], 3600);
        let token = v["access_token"].as_str().expect("access_token").to_owned();

        let userinfo = |tok: &str| {
            let url = format!(
                "{}/_matrix/federation/v1/openid/userinfo?access_token={}",
                hs.fed_url(),
                enc(tok)
            );
            let client = net.reqwest();
            async move {
                let r = client.get(&url).send().await.expect("userinfo");
                (
                    r.status().as_u16(),
                    r.json::<Value>().await.unwrap_or(Value::Null),
                )
            }
        };
        let (status, body) = userinfo(&token).await;
        assert_eq!(
            (status, body["sub"].as_str()),
            (200, Some(alice.user_id.as_str()))
        );

        // Unknown tokens, and an access token, are not OpenID tokens.
        for bad in ["not-a-token", alice.token.as_str()] {
            let (status, body) = userinfo(bad).await;
            assert_eq!(
                (status, body["errcode"].as_str()),
                (401, Some("M_UNKNOWN_TOKEN"))
            );
        }
        // Nor is an OpenID token an access token.
        hs.http()
            .get("/_matrix/client/v3/account/whoami", Some(&token))
            .await
            .assert_error(401, &["M_UNKNOWN_TOKEN"]);
        // Only for oneself.
        bob.post(&path(&alice.user_id), &json!({}))
            .await
            .assert_error(403, &["M_FORBIDDEN"]);
    })
    .await;
}
