//! Interop with Synapse (PyPI, installed by scripts/install-synapse.sh): keys both ways over
//! TLS verified against the test CA, a Synapse user in a Handover room and a Handover user in
//! a Synapse room with messages both ways and agreeing state, and an unlisted Synapse refused
//! everywhere while receiving nothing from us.

use std::time::Duration;

use handover_e2e::account::{Account, eventually};
use handover_e2e::federation::{FedNet, HandoverPeer, loopback_ip};
use handover_e2e::synapse::Synapse;
use handover_e2e::{enc, json, with_timeout};
use serde_json::Value;

use crate::federation::{agree_on_state, key_id, notary_key, own_keys};

/// A Handover listing a Synapse that whitelists it back.
pub(crate) async fn handover_and_synapse(net: &FedNet) -> (HandoverPeer, Synapse) {
    let ip_h = loopback_ip();
    let h_name = ip_h.to_string();
    let s = Synapse::start(net, Some(&[&h_name])).await;
    let h = net.handover_at(ip_h, &[&s.name], &[&s.name]).await;
    (h, s)
}

/// Synapse fetches Handover's key over TLS (asked through Synapse's notary, which fetches from
/// the origin since `trusted_key_servers` is empty), and Handover fetches Synapse's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn synapse_and_handover_fetch_each_others_keys() {
    with_timeout(300, async {
        let net = FedNet::new();
        let (h, s) = handover_and_synapse(&net).await;

        let v: Value = net
            .reqwest()
            .get(format!("{}/_matrix/federation/v1/version", s.fed_url()))
            .send()
            .await
            .expect("synapse /version")
            .json()
            .await
            .unwrap();
        assert_eq!(v["server"]["name"], "Synapse", "{v}");

        let ours = own_keys(&net, &h.fed_url()).await;
        let got = eventually(60, "Synapse to fetch Handover's key", || async {
            let k = notary_key(&net, &s.fed_url(), &h.name, &key_id(&ours)).await;
            (!k.is_empty()).then_some(k)
        })
        .await;
        assert_eq!(got[0]["server_name"], h.name.as_str());
        assert_eq!(got[0]["verify_keys"], ours["verify_keys"]);
        assert!(
            got[0]["signatures"][&s.name].is_object(),
            "Synapse co-signed: {}",
            got[0]
        );

        let theirs = own_keys(&net, &s.fed_url()).await;
        let got = eventually(60, "Handover to fetch Synapse's key", || async {
            let k = notary_key(&net, &h.fed_url(), &s.name, &key_id(&theirs)).await;
            (!k.is_empty()).then_some(k)
        })
        .await;
        assert_eq!(got[0]["verify_keys"], theirs["verify_keys"]);
    })
    .await;
}

/// A Synapse user reads a Handover user's profile: Synapse makes an X-Matrix-signed query
/// that Handover verifies (fetching Synapse's key). Needs `/_matrix/federation/v1/query/profile`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn synapse_reads_a_handover_profile() {
    with_timeout(300, async {
        let net = FedNet::new();
        let (h, s) = handover_and_synapse(&net).await;
        let alice = h.register("alice").await;
        alice
            .put(
                &format!(
                    "/_matrix/client/v3/profile/{}/displayname",
                    enc(&alice.user_id)
                ),
                &json!({"displayname": "Alice at H"}),
            )
            .await
            .ok();
        let sam = s.register("sam").await;
        let r = sam
            .get(&format!(
                "/_matrix/client/v3/profile/{}",
                enc(&alice.user_id)
            ))
            .await;
        assert_eq!(r.ok()["displayname"], "Alice at H");
    })
    .await;
}

/// A Synapse user, invited, joins a Handover room: messages both ways, the same state on both.
/// Needs: outbound invite, make_join/send_join, /send in both directions.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn synapse_user_joins_a_handover_room() {
    with_timeout(400, async {
        let net = FedNet::new();
        let (h, s) = handover_and_synapse(&net).await;
        let alice = h.register("alice").await;
        let sam = s.register("sam").await;
        let room = alice.create_public_room("handover room").await;
        alice.invite(&room, &sam.user_id).await;
        sam.wait_invite(&room, 90).await;
        assert_eq!(sam.join(&room, &[&h.name]).await, room);
        alice.wait_membership(&room, &sam.user_id, "join", 90).await;
        converse(&alice, &sam, &room).await;
        sam.leave(&room).await;
        alice
            .wait_membership(&room, &sam.user_id, "leave", 90)
            .await;
        agree_on_state(&alice, &sam, &room).await;
    })
    .await;
}

/// A Handover user joins a Synapse room (room version 12, Synapse's default) through an
/// invite from Synapse: messages both ways, the same state on both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handover_user_joins_a_synapse_room() {
    with_timeout(400, async {
        let net = FedNet::new();
        let (h, s) = handover_and_synapse(&net).await;
        let alice = h.register("alice").await;
        let sam = s.register("sam").await;
        let room = sam.create_public_room("synapse room").await;
        sam.invite(&room, &alice.user_id).await;
        alice.wait_invite(&room, 90).await;
        assert_eq!(alice.join(&room, &[&s.name]).await, room);
        sam.wait_membership(&room, &alice.user_id, "join", 90).await;
        converse(&sam, &alice, &room).await;
    })
    .await;
}

/// Messages both ways, seen in order on both servers, then the state agrees.
async fn converse(x: &Account, y: &Account, room: &str) {
    x.send_text(room, "hello from the room's server").await;
    y.wait_for_bodies(room, &["hello from the room's server"], 90)
        .await;
    y.send_text(room, "hello from the joining server").await;
    x.wait_for_bodies(room, &["hello from the joining server"], 90)
        .await;
    let want = [
        "hello from the room's server",
        "hello from the joining server",
    ];
    assert_eq!(x.bodies(room, 50).await, want);
    assert_eq!(y.bodies(room, 50).await, want);
    agree_on_state(x, y, room).await;
}

/// A Synapse that is not on our list (but whitelists us, so it tries) is refused at invite,
/// join, directory and media, never gets a request from us, and the refusals are audited.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unlisted_synapse_is_refused_and_receives_nothing() {
    with_timeout(400, async {
        let net = FedNet::new();
        let ip_h = loopback_ip();
        let h_name = ip_h.to_string();
        let s = Synapse::start(&net, Some(&[&h_name])).await;
        // Allowed by [invites] so that what refuses is the federation list.
        let h = net.handover_at(ip_h, &[], &[&s.name]).await;
        let alice = h.register("alice").await;
        let sam = s.register("sam").await;
        let room = alice
            .create_room(&json!({"preset": "public_chat", "room_alias_name": "ward",
                                 "visibility": "public"}))
            .await;
        alice.send_text(&room, "not for unlisted servers").await;
        let upload = alice
            .http
            .request(
                "POST",
                "/_matrix/media/v3/upload",
                Some(&alice.token),
                Some(("text/plain", b"discharge summary".to_vec())),
            )
            .await
            .ok();
        let mxc = upload["content_uri"]
            .as_str()
            .expect("content_uri")
            .to_owned();

        // Invite to the unlisted server: refused by the list.
        let r = alice.try_invite(&room, &sam.user_id).await;
        r.assert_error(403, &["M_FORBIDDEN"]);
        assert!(r.text().contains("federation_not_listed"), "{}", r.text());

        // Join through us: refused.
        let r = sam.try_join(&room, &[&h.name]).await;
        assert_ne!(r.status, 200, "unlisted Synapse joined: {}", r.text());
        // Invite from Synapse to our user: refused, never seen.
        let s_room = sam.create_public_room("from unlisted").await;
        let r = sam.try_invite(&s_room, &alice.user_id).await;
        assert_ne!(
            r.status,
            200,
            "invite from unlisted Synapse accepted: {}",
            r.text()
        );
        // Directory: our public rooms and our alias.
        let r = sam
            .get(&format!(
                "/_matrix/client/v3/publicRooms?server={}",
                enc(&h.name)
            ))
            .await;
        assert_ne!(
            r.status,
            200,
            "public rooms served to unlisted: {}",
            r.text()
        );
        let alias = format!("#ward:{}", h.name);
        let r = sam
            .get(&format!(
                "/_matrix/client/v3/directory/room/{}",
                enc(&alias)
            ))
            .await;
        assert_ne!(r.status, 200, "alias resolved for unlisted: {}", r.text());
        // Media: Synapse cannot fetch our file.
        let media = mxc.trim_start_matches("mxc://");
        let r = sam
            .get(&format!("/_matrix/client/v1/media/download/{media}"))
            .await;
        assert_ne!(r.status, 200, "media served to unlisted: {}", r.text());

        let s_sync = alice.sync(2000).await;
        assert!(s_sync["rooms"]["invite"].get(&s_room).is_none(), "{s_sync}");
        assert_eq!(alice.membership_of(&room, &sam.user_id).await, None);
        crate::federation_policy::outbound_refused(&alice, &s.name, &s_room).await;
        tokio::time::sleep(Duration::from_secs(2)).await;
        let got = s.federation_requests_from_peers();
        assert!(
            got.is_empty(),
            "unlisted Synapse received requests from us: {got:#?}"
        );
        let inbound = h.denials(&s.name, "inbound").await;
        assert!(
            !inbound.is_empty(),
            "Synapse's requests refused and audited"
        );
        assert!(
            !h.denials(&s.name, "outbound").await.is_empty(),
            "our refused invite audited"
        );
    })
    .await;
}
