//! Interoperability with a real Synapse (ignored by default).

use ruma::{OwnedServerName, OwnedUserId};
use serde_json::{Value, json};

use super::nodes::*;

/// Interoperability with a real Synapse (not run by default): start one with
/// `../shared/tools/peers/synapse_peer.sh init|start /tmp/handover-peers/q 127.0.0.23 18023 18423`,
/// then `HANDOVER_SYNAPSE_FED=127.0.0.23:18423 HANDOVER_SYNAPSE_CLIENT=http://127.0.0.23:18023
/// cargo test -p handover --test federation_queries_http -- --ignored`. Synapse's users read our
/// profiles, aliases and (room-bound) media through Synapse, which asks us over federation with
/// its own X-Matrix signature and parses our multipart answer; we read Synapse's profiles and
/// media. Synapse's certificate is self-signed, so TLS verification is off for this test only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a Synapse peer: set HANDOVER_SYNAPSE_FED and HANDOVER_SYNAPSE_CLIENT"]
async fn synapse_interop_queries_and_media() {
    let (Ok(peer), Ok(peer_client)) = (
        std::env::var("HANDOVER_SYNAPSE_FED"),
        std::env::var("HANDOVER_SYNAPSE_CLIENT"),
    ) else {
        panic!("set HANDOVER_SYNAPSE_FED (IP:port) and HANDOVER_SYNAPSE_CLIENT (http://IP:port)");
    };
    let _ = rustls::crypto::ring::default_provider().install_default();
    let peer = OwnedServerName::try_from(peer).unwrap();
    let certs_dir = tempfile::tempdir().unwrap();
    let certs = make_certs(certs_dir.path());
    let (l, name) = bind();
    let list = listing(&[&name, &peer]);
    let h = start(l, name.clone(), &certs, &list, |c| {
        c.federation.verify_tls = false
    })
    .await;
    let (alice, _) = login(&h, "alice").await;
    h.services
        .users
        .admin_set_displayname(&alice, Some("Dr Alice".into()))
        .await
        .unwrap();

    // A user on Synapse.
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let localpart = format!("carol{}", rand::random::<u32>());
    let reg: Value = http
        .post(format!("{peer_client}/_matrix/client/v3/register"))
        .json(
            &json!({ "username": localpart, "password": "a long password 123",
                       "auth": { "type": "m.login.dummy" } }),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let carol_token = reg["access_token"].as_str().expect("registered").to_owned();
    let carol: OwnedUserId = reg["user_id"].as_str().unwrap().try_into().unwrap();
    let synapse_get = |path: String| {
        let http = http.clone();
        let (base, token) = (peer_client.clone(), carol_token.clone());
        async move {
            let res = http
                .get(format!("{base}{path}"))
                .bearer_auth(token)
                .send()
                .await
                .unwrap();
            let status = res.status().as_u16();
            (status, res.bytes().await.unwrap().to_vec())
        }
    };

    // 1. Synapse asks us for alice's profile (a Synapse-signed request to us).
    let (status, body) = synapse_get(format!(
        "/_matrix/client/v3/profile/{}",
        enc(alice.as_str())
    ))
    .await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["displayname"], "Dr Alice");

    // 2. ... and resolves our alias.
    let ward = public_room(&h, &alice, "Ward 7", "ward7").await;
    let (status, body) = synapse_get(format!(
        "/_matrix/client/v3/directory/room/{}",
        enc(&format!("#ward7:{name}"))
    ))
    .await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["room_id"], ward.as_str());

    // 3. We ask Synapse for carol's profile.
    let res = http
        .put(format!(
            "{peer_client}/_matrix/client/v3/profile/{}/displayname",
            enc(carol.as_str())
        ))
        .bearer_auth(&carol_token)
        .json(&json!({ "displayname": "Carol S" }))
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success());
    let p = h
        .services
        .query
        .profile(Some(&alice), &carol)
        .await
        .unwrap();
    assert_eq!(p.displayname.as_deref(), Some("Carol S"));

    // 4. We fetch Synapse's media (its multipart answer, parsed by us).
    let up: Value = http
        .post(format!("{peer_client}/_matrix/media/v3/upload"))
        .bearer_auth(&carol_token)
        .header("content-type", "text/plain")
        .body("referral from the GP")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mxc = up["content_uri"].as_str().expect("uploaded").to_owned();
    let id = mxc.rsplit('/').next().unwrap();
    let got = h
        .services
        .media
        .download(&alice, &peer, id, None, std::time::Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(got.bytes, b"referral from the GP");
    assert_eq!(got.content_type, "text/plain");

    // 5. Synapse fetches our media for carol once Synapse has a member in its room (carol's
    //    membership set here, standing in for a federation join); an unbound file stays here.
    h.services.rooms.join(&ward, &carol, None).await.unwrap();
    let letter = share(
        &h,
        &alice,
        Some(&ward),
        b"discharge letter".to_vec(),
        "text/plain",
    )
    .await;
    let private = share(&h, &alice, None, b"private note".to_vec(), "text/plain").await;
    let (status, body) =
        synapse_get(format!("/_matrix/client/v1/media/download/{name}/{letter}")).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert_eq!(body, b"discharge letter");
    let (status, body) = synapse_get(format!(
        "/_matrix/client/v1/media/download/{name}/{private}"
    ))
    .await;
    assert_eq!(status, 404, "{}", String::from_utf8_lossy(&body));
}
