//! Direct messages to a colleague in another trust (issue 16): a matrix-sdk client on Handover
//! starts a DM the way Element does (`create_dm`: createRoom with `is_direct`,
//! `trusted_private_chat`, the colleague in `invite`, encrypted) with a user on Synapse and with
//! a user on a second Handover. The invitee's client sees the invite, joins, both sides mark the
//! room in `m.direct`, and encrypted messages flow both ways. A remote invitee the policy refuses
//! (unlisted server, server outside `[invites] allowed_servers`) fails createRoom naming the rule,
//! audited, creating no room here and sending nothing there.

use handover_e2e::account::Account;
use handover_e2e::federation::{FedNet, HandoverPeer, loopback_ip};
use handover_e2e::{invited_rooms, json, sync_until, with_timeout};
use matrix_sdk::Client;
use matrix_sdk::ruma::events::GlobalAccountDataEventType;
use matrix_sdk::ruma::events::room::message::RoomMessageEventContent;
use matrix_sdk::ruma::{OwnedUserId, RoomId, UserId};
use serde_json::Value;

use crate::encryption::sync_until_decrypted;

/// `m.direct` on the server (fetched, not the client's cache) lists `room` under `with`.
async fn assert_marked_direct(client: &Client, who: &str, with: &UserId, room: &RoomId) {
    let raw = client
        .account()
        .fetch_account_data(GlobalAccountDataEventType::Direct)
        .await
        .unwrap_or_else(|e| panic!("{who}: GET m.direct: {e:?}"))
        .unwrap_or_else(|| panic!("{who}: no m.direct account data on the server"));
    let v: Value = raw.deserialize_as().expect("m.direct is JSON");
    let rooms = v[with.as_str()].as_array().cloned().unwrap_or_default();
    assert!(
        rooms.iter().any(|r| r == room.as_str()),
        "{who}'s m.direct lists {room} under {with}: {v}"
    );
}

/// Alice (on Handover) starts a DM with `bob_id`; Bob's client sees the invite, joins without
/// naming a server (the inviter's is used), both mark it direct, and they talk (encrypted).
async fn dm_round_trip(alice: &Client, bob: &Client, bob_id: &str) {
    for (c, who) in [(alice, "alice"), (bob, "bob")] {
        sync_until(c, 60, &format!("{who} initial sync"), |_| Some(())).await;
    }
    let bob_uid = <&UserId>::try_from(bob_id).unwrap();
    let room = alice
        .create_dm(bob_uid)
        .await
        .expect("alice creates the DM");
    let room_id = room.room_id().to_owned();
    assert!(room.latest_encryption_state().await.unwrap().is_encrypted());
    sync_until(bob, 60, "bob sees the DM invite", |r| {
        invited_rooms(r).contains(&room_id).then_some(())
    })
    .await;
    let invited = bob
        .get_room(&room_id)
        .expect("bob's client knows the invite");
    assert!(
        invited.is_direct().await.unwrap(),
        "the invite carries is_direct"
    );
    bob.join_room_by_id(&room_id).await.expect("bob joins");
    let alice_id: OwnedUserId = alice.user_id().unwrap().to_owned();
    assert_marked_direct(alice, "alice", bob_uid, &room_id).await;
    assert_marked_direct(bob, "bob", &alice_id, &room_id).await;

    let sent = room
        .send(RoomMessageEventContent::text_plain(
            "can you look at this patient?",
        ))
        .await
        .expect("alice sends");
    let body = sync_until_decrypted(bob, "bob", &room_id, sent.response.event_id.as_str()).await;
    assert_eq!(body, "can you look at this patient?");
    let reply = bob
        .get_room(&room_id)
        .expect("bob's room")
        .send(RoomMessageEventContent::text_plain("on my way"))
        .await
        .expect("bob replies");
    let body =
        sync_until_decrypted(alice, "alice", &room_id, reply.response.event_id.as_str()).await;
    assert_eq!(body, "on my way");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dm_to_a_user_on_synapse_arrives_and_both_talk() {
    with_timeout(400, async {
        let net = FedNet::new();
        let (h, s) = crate::federation_synapse::handover_and_synapse(&net).await;
        let alice = h.register_sdk(&net, "alice").await;
        let bob = s.register_sdk("bob").await;
        dm_round_trip(&alice, &bob, &s.user_id("bob")).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dm_to_a_user_on_another_handover_arrives_and_both_talk() {
    with_timeout(300, async {
        let net = FedNet::new();
        let (a, b) = crate::federation::pair(&net).await;
        let alice = a.register_sdk(&net, "alice").await;
        let bob = b.register_sdk(&net, "bob").await;
        dm_round_trip(&alice, &bob, &b.user_id("bob")).await;
    })
    .await;
}

/// The rooms `who` is joined to.
async fn joined(who: &Account) -> Vec<Value> {
    who.get("/_matrix/client/v3/joined_rooms").await.ok()["joined_rooms"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// A DM whose invitee the policy refuses: 403 naming `rule`, a denial audited with the creator
/// as actor, no room created here, no invite (and no request at all) at the other server.
async fn refused_dm(h: &HandoverPeer, alice: &Account, other: &Account, rule: &str) {
    let before = joined(alice).await;
    let r = alice
        .post(
            "/_matrix/client/v3/createRoom",
            &json!({"preset": "trusted_private_chat", "is_direct": true,
                    "invite": [other.user_id]}),
        )
        .await;
    r.assert_rule(403, "M_FORBIDDEN", rule);
    assert_eq!(joined(alice).await, before, "no room was created");
    let audited = h.audit().await.into_iter().any(|e| {
        e["rule"] == rule && e["actor"] == alice.user_id.as_str() && e["outcome"] == "denied"
    });
    assert!(
        audited,
        "the refusal ({rule}) is audited with the creator as actor"
    );
    let sync = other.sync(1000).await;
    assert!(
        sync["rooms"]["invite"]
            .as_object()
            .is_none_or(|m| m.is_empty()),
        "{} got no invite: {sync}",
        other.user_id
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_remote_invitees_fail_create_room_naming_the_rule() {
    with_timeout(300, async {
        let net = FedNet::new();
        let (ip_b, ip_c) = (loopback_ip().to_string(), loopback_ip().to_string());
        // A lists B but may not invite its users; it may invite C's users, but C is not listed.
        let a = net.handover(&[&ip_b], &[&ip_c]).await;
        let b = net
            .handover_at(ip_b.parse().unwrap(), &[&a.name], &[&a.name])
            .await;
        let c = net
            .handover_at(ip_c.parse().unwrap(), &[&a.name], &[&a.name])
            .await;
        let alice = a.register("alice").await;
        let (bob, carol) = (b.register("bob").await, c.register("carol").await);
        refused_dm(&a, &alice, &bob, "invite_outside_organisation").await;
        refused_dm(&a, &alice, &carol, "federation_not_listed").await;
        assert!(
            c.federation_requests_logged().is_empty(),
            "the unlisted server was never contacted: {:?}",
            c.federation_requests_logged()
        );
    })
    .await;
}
