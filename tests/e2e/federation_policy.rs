//! The NHS federation list against other servers: an unlisted origin is refused at every
//! federation endpoint (403 naming `federation_not_listed`, audited) and is never contacted; a
//! list whose content or signature was tampered with is refused at reload and the last good
//! list stays in force. Unlisted Synapse peers: federation_synapse.rs.

use std::time::Duration;

use handover_e2e::account::eventually;
use handover_e2e::federation::{FedNet, HandoverPeer, list_doc, loopback_ip};
use handover_e2e::{enc, with_timeout};
use serde_json::Value;

use crate::federation::{forged_request, notary_keys};

/// Every federation endpoint a peer uses for invites, joins, sending, backfill, media and the
/// directory, with the method; `{room}`/`{dest}` are filled in.
const ENDPOINTS: &[(&str, &str, &str)] = &[
    (
        "invite",
        "PUT",
        "/_matrix/federation/v2/invite/{room}/$e2e-event",
    ),
    (
        "make_join",
        "GET",
        "/_matrix/federation/v1/make_join/{room}/@x:{origin}",
    ),
    (
        "send_join",
        "PUT",
        "/_matrix/federation/v2/send_join/{room}/$e2e-event",
    ),
    ("send", "PUT", "/_matrix/federation/v1/send/e2e-txn"),
    (
        "backfill",
        "GET",
        "/_matrix/federation/v1/backfill/{room}?v=$e2e-event&limit=10",
    ),
    ("event", "GET", "/_matrix/federation/v1/event/$e2e-event"),
    (
        "media",
        "GET",
        "/_matrix/federation/v1/media/download/e2emedia",
    ),
    (
        "directory",
        "GET",
        "/_matrix/federation/v1/query/directory?room_alias=%23x%3A{dest}",
    ),
    ("public_rooms", "GET", "/_matrix/federation/v1/publicRooms"),
    (
        "profile",
        "GET",
        "/_matrix/federation/v1/query/profile?user_id=%40x%3A{dest}",
    ),
    ("version", "GET", "/_matrix/federation/v1/version"),
];

/// Forged requests claiming `origin` at every endpoint of `dest`: the ones whose answer is not
/// `want` (status, and for 403 the rule name), as readable lines.
async fn endpoints_not_answering(
    net: &FedNet,
    dest: &HandoverPeer,
    origin: &str,
    want: u16,
) -> Vec<String> {
    let room = enc(&format!("!e2e:{}", dest.name));
    let mut wrong = Vec::new();
    for (what, method, path) in ENDPOINTS {
        let path = path
            .replace("{room}", &room)
            .replace("{origin}", origin)
            .replace("{dest}", &dest.name);
        let (status, body) =
            forged_request(net, &dest.fed_url(), method, &path, origin, &dest.name).await;
        let rule_ok = want != 403
            || body["error"]
                .as_str()
                .is_some_and(|e| e.contains("federation_not_listed"));
        if status != want || (want == 403 && (body["errcode"] != "M_FORBIDDEN" || !rule_ok)) {
            wrong.push(format!("{what}: {method} {path} -> {status} {body}"));
        }
    }
    wrong
}

/// An unlisted origin is refused (403, rule named) at every federation endpoint before its
/// keys are fetched; a listed origin with the same bogus signature gets 401 instead, so the
/// 403 is the list's doing. Needs every endpoint routed (today: only `/version` is).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unlisted_origin_is_refused_at_every_endpoint() {
    with_timeout(180, async {
        let net = FedNet::new();
        // `listed` is a name with nothing behind it: its key cannot be fetched -> 401.
        let listed = loopback_ip().to_string();
        let unlisted = loopback_ip().to_string();
        let a = net.handover(&[&listed], &[]).await;

        let refused = endpoints_not_answering(&net, &a, &unlisted, 403).await;
        let unauthenticated = endpoints_not_answering(&net, &a, &listed, 401).await;
        assert!(
            refused.is_empty() && unauthenticated.is_empty(),
            "unlisted origin not refused with 403 federation_not_listed at:\n{}\n\
             listed origin with a bad signature not refused with 401 at:\n{}",
            refused.join("\n"),
            unauthenticated.join("\n")
        );
        let audited = a.denials(&unlisted, "inbound").await;
        assert!(!audited.is_empty(), "inbound refusal audited");
        assert_eq!(audited[0]["rule"], "federation_not_listed");
    })
    .await;
}

/// Today's door check: a forged request from an unlisted Handover gets 403 naming the rule,
/// from a listed one 401; our notary will not fetch the unlisted server's key, and that server
/// sees no request from us at all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unlisted_handover_gets_403_and_is_never_contacted() {
    with_timeout(180, async {
        let net = FedNet::new();
        let ip_c = loopback_ip();
        let c_name = ip_c.to_string();
        let listed = loopback_ip().to_string();
        let a = net.handover(&[&listed], &[&c_name]).await;
        // C lists A: it would talk to A; A does not list C.
        let c = net.handover_at(ip_c, &[&a.name], &[&a.name]).await;

        let path = "/_matrix/federation/v1/version";
        let (status, body) =
            forged_request(&net, &a.fed_url(), "GET", path, &c.name, &a.name).await;
        assert_eq!(status, 403, "{body}");
        assert_eq!(body["errcode"], "M_FORBIDDEN");
        assert!(
            body["error"]
                .as_str()
                .unwrap_or("")
                .contains("federation_not_listed"),
            "{body}"
        );
        let (status, body) =
            forged_request(&net, &a.fed_url(), "GET", path, &listed, &a.name).await;
        assert_eq!(status, 401, "listed origin, bad signature: {body}");

        // A's notary leaves C out and never asks C for its key.
        assert!(notary_keys(&net, &a.fed_url(), &c.name).await.is_empty());
        let got = c.federation_requests_logged();
        assert!(
            got.is_empty(),
            "C received requests although A does not list it: {got:#?}"
        );
        // C can fetch A's public key (A is on C's list): the path works in that direction.
        let ks = eventually(30, "C's notary to fetch A's key", || async {
            let k = notary_keys(&net, &c.fed_url(), &a.name).await;
            (!k.is_empty()).then_some(k)
        })
        .await;
        assert_eq!(ks[0]["server_name"], a.name.as_str());

        let inbound = a.denials(&c.name, "inbound").await;
        assert!(!inbound.is_empty(), "inbound refusal of C audited");
        let outbound = a.denials(&c.name, "outbound").await;
        assert!(!outbound.is_empty(), "refused notary lookup of C audited");
        assert_eq!(outbound[0]["details"]["purpose"], "notary");
    })
    .await;
}

/// A list whose content was changed after signing, then one with a corrupted signature, are
/// refused at reload (audited as failures) and the last good list stays in force; a correctly
/// signed list is then taken. Observed through the door: an origin only the refused lists
/// name stays refused (403) until the good list lands (then 401: listed, bad signature).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tampered_list_is_refused_and_last_good_list_stays() {
    with_timeout(180, async {
        let net = FedNet::new();
        let b = loopback_ip().to_string();
        let c = loopback_ip().to_string();
        let mut a = net.handover(&[&b], &[]).await;
        let (url, dest) = (a.fed_url(), a.name.clone());
        let door = |origin: String| {
            let (net, url, dest) = (&net, &url, &dest);
            async move {
                forged_request(
                    net,
                    url,
                    "GET",
                    "/_matrix/federation/v1/version",
                    &origin,
                    dest,
                )
                .await
                .0
            }
        };
        assert_eq!(door(c.clone()).await, 403);
        assert_eq!(door(b.clone()).await, 401);

        // 1. Content changed after signing: C added without the signer.
        a.write_list(&net, &[&b]);
        let mut doc: Value =
            serde_json::from_slice(&std::fs::read(a.list_file()).unwrap()).unwrap();
        doc["organisations"][0]["servers"] = serde_json::json!([b, c]);
        std::fs::write(a.list_file(), serde_json::to_vec(&doc).unwrap()).unwrap();
        a.reload();
        wait_reload_failures(&a, 1).await;
        assert_eq!(
            door(c.clone()).await,
            403,
            "tampered list must not take effect"
        );
        assert_eq!(door(b.clone()).await, 401, "last good list still in force");

        // 2. Correct content, corrupted signature.
        a.write_list(&net, &[&b, &c]);
        let sig_file = {
            let mut s = a.list_file().as_os_str().to_owned();
            s.push(".sig");
            std::path::PathBuf::from(s)
        };
        let sig = std::fs::read_to_string(&sig_file).unwrap();
        let flipped = if sig.starts_with('A') { "B" } else { "A" };
        std::fs::write(&sig_file, format!("{flipped}{}", &sig[1..])).unwrap();
        a.reload();
        wait_reload_failures(&a, 2).await;
        assert_eq!(
            door(c.clone()).await,
            403,
            "badly signed list must not take effect"
        );

        // 3. A list signed by another key (not the pinned signer).
        let other = FedNet::new();
        other.write_signed_list(a.list_file(), &list_doc(10, &[&b, &c]));
        a.reload();
        wait_reload_failures(&a, 3).await;
        assert_eq!(
            door(c.clone()).await,
            403,
            "list from another signer must not take effect"
        );

        // 4. Properly signed: taken; C is now listed (so it gets past the list to the
        // signature check).
        let serial = a.write_list(&net, &[&b, &c]);
        a.reload();
        eventually(30, "the good list to be taken", || {
            let door = door(c.clone());
            async move { (door.await == 401).then_some(()) }
        })
        .await;
        let ok: Vec<Value> = a
            .audit()
            .await
            .into_iter()
            .filter(|e| e["action"] == "federation.list_reload" && e["outcome"] == "success")
            .collect();
        assert!(
            ok.iter().any(|e| e["details"]["serial"] == serial),
            "reload of serial {serial} audited: {ok:?}"
        );
        assert!(
            a.server.stderr().contains("keeping the list in force"),
            "refusals logged"
        );
    })
    .await;
}

/// `user` tries to use the unlisted server `other`: join `room` through it, read its public
/// rooms, resolve an alias on it, download media from it. None of it may succeed.
pub async fn outbound_refused(user: &handover_e2e::account::Account, other: &str, room: &str) {
    let r = user.try_join(room, &[other]).await;
    assert_ne!(
        r.status,
        200,
        "joined through an unlisted server: {}",
        r.text()
    );
    let paths = [
        format!("/_matrix/client/v3/publicRooms?server={}", enc(other)),
        format!(
            "/_matrix/client/v3/directory/room/{}",
            enc(&format!("#ward:{other}"))
        ),
        format!("/_matrix/client/v1/media/download/{other}/e2emedia"),
    ];
    for p in paths {
        let r = user.get(&p).await;
        assert_ne!(
            r.status,
            200,
            "{p} answered for an unlisted server: {}",
            r.text()
        );
    }
}

/// Waits until `n` list reloads have been audited as failures.
async fn wait_reload_failures(a: &HandoverPeer, n: usize) {
    eventually(
        30,
        &format!("{n} refused list reload(s) audited"),
        || async {
            let failures = a
                .audit()
                .await
                .into_iter()
                .filter(|e| e["action"] == "federation.list_reload" && e["outcome"] == "failure")
                .count();
            (failures >= n).then_some(())
        },
    )
    .await;
}

/// Real flows between a Handover and an unlisted Handover that lists it: our user cannot
/// invite theirs, theirs cannot join our room nor invite ours, and they receive nothing from
/// us. Needs: outbound invites checked against the list, inbound make_join/invite gated.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unlisted_handover_cannot_invite_join_or_receive() {
    with_timeout(240, async {
        let net = FedNet::new();
        let ip_c = loopback_ip();
        let c_name = ip_c.to_string();
        let a = net.handover(&[], &[&c_name]).await;
        let c = net.handover_at(ip_c, &[&a.name], &[&a.name]).await;
        let alice = a.register("alice").await;
        let carol = c.register("carol").await;
        let room = alice.create_public_room("not for C").await;
        alice.send_text(&room, "clinical chatter").await;

        // Invite: refused by the list (C is allowed by [invites], so this is the list's rule).
        let r = alice.try_invite(&room, &carol.user_id).await;
        r.assert_error(403, &["M_FORBIDDEN"]);
        assert!(r.text().contains("federation_not_listed"), "{}", r.text());

        // Join from C: A refuses C's make_join; the room never shows carol.
        let r = carol.try_join(&room, &[&a.name]).await;
        assert_ne!(
            r.status,
            200,
            "join through an unlisted server: {}",
            r.text()
        );
        assert_eq!(alice.membership_of(&room, &carol.user_id).await, None);

        // Invite from C: alice never sees it.
        let c_room = carol.create_public_room("from C").await;
        let r = carol.try_invite(&c_room, &alice.user_id).await;
        assert_ne!(r.status, 200, "C's invite delivered to A: {}", r.text());
        let s = alice.sync(2000).await;
        assert!(s["rooms"]["invite"].get(&c_room).is_none(), "{s}");

        // Our users reaching out to C: join via C, its directory, its media. All refused here.
        outbound_refused(&alice, &c.name, &c_room).await;

        tokio::time::sleep(Duration::from_secs(2)).await;
        let got = c.federation_requests_logged();
        assert!(got.is_empty(), "C received requests from A: {got:#?}");
        assert!(!a.denials(&c.name, "inbound").await.is_empty());
        assert!(!a.denials(&c.name, "outbound").await.is_empty());
    })
    .await;
}
