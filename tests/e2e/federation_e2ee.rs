//! End-to-end encryption across two Handover servers (issues 3 and 4): matrix-sdk clients with
//! their crypto on, Alice on A and Bob on B. Bob's device keys reach Alice's client through
//! A's `/keys/query` -> B's `/user/keys/query`, one-time keys through `/user/keys/claim`, and the
//! room key through `m.direct_to_device`; the message itself is a federated PDU.

use handover_e2e::federation::FedNet;
use handover_e2e::{invited_rooms, sync_until, timeline, with_timeout};
use matrix_sdk::ruma::api::client::room::create_room::v3::Request as CreateRoomRequest;
use matrix_sdk::ruma::events::room::message::RoomMessageEventContent;
use matrix_sdk::ruma::{OwnedServerName, UserId};

use crate::encryption::sync_until_decrypted;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn encrypted_messages_decrypt_across_two_handovers() {
    with_timeout(300, async {
        let net = FedNet::new();
        let (a, b) = crate::federation::pair(&net).await;
        let alice = a.register_sdk(&net, "alice").await;
        let bob = b.register_sdk(&net, "bob").await;
        for (c, who) in [(&alice, "alice"), (&bob, "bob")] {
            sync_until(c, 30, &format!("{who} initial sync"), |_| Some(())).await;
        }

        // A private room: encrypted by default.
        let mut req = CreateRoomRequest::new();
        req.name = Some("ward 9 handover".to_owned());
        let room = alice.create_room(req).await.expect("create room");
        let room_id = room.room_id().to_owned();
        assert!(room.latest_encryption_state().await.unwrap().is_encrypted());
        let bob_id = b.user_id("bob");
        room.invite_user_by_id(<&UserId>::try_from(bob_id.as_str()).unwrap())
            .await
            .expect("invite bob on B");
        sync_until(&bob, 60, "bob sees the invite", |r| {
            invited_rooms(r).contains(&room_id).then_some(())
        })
        .await;
        let via: OwnedServerName = a.name.as_str().try_into().unwrap();
        bob.join_room_by_id_or_alias(<&matrix_sdk::ruma::RoomOrAliasId>::from(&*room_id), &[via])
            .await
            .expect("bob joins through A");
        sync_until(&alice, 60, "alice sees bob's join", |r| {
            timeline(r, &room_id)
                .iter()
                .any(|e| {
                    e["type"] == "m.room.member"
                        && e["state_key"] == bob_id.as_str()
                        && e["content"]["membership"] == "join"
                })
                .then_some(())
        })
        .await;

        let sent = room
            .send(RoomMessageEventContent::text_plain("obs stable, bed 4"))
            .await
            .expect("alice sends");
        let body =
            sync_until_decrypted(&bob, "bob on B", &room_id, sent.response.event_id.as_str()).await;
        assert_eq!(body, "obs stable, bed 4");

        let reply = bob
            .get_room(&room_id)
            .expect("bob's room")
            .send(RoomMessageEventContent::text_plain("thanks, will review"))
            .await
            .expect("bob replies");
        let body = sync_until_decrypted(
            &alice,
            "alice on A",
            &room_id,
            reply.response.event_id.as_str(),
        )
        .await;
        assert_eq!(body, "thanks, will review");
    })
    .await;
}

/// The same with Synapse: Sam on Synapse invites Alice on Handover into an encrypted room
/// (Synapse's default room version 12); each decrypts the other's message. Synapse asks us for
/// Alice's keys (`/user/keys/query`, `/user/keys/claim`), we ask it for Sam's, and room keys
/// cross as `m.direct_to_device` both ways.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn encrypted_messages_decrypt_between_handover_and_synapse() {
    with_timeout(400, async {
        let net = FedNet::new();
        let (h, s) = crate::federation_synapse::handover_and_synapse(&net).await;
        let alice = h.register_sdk(&net, "alice").await;
        let sam = s.register_sdk("sam").await;
        for (c, who) in [(&alice, "alice"), (&sam, "sam")] {
            sync_until(c, 60, &format!("{who} initial sync"), |_| Some(())).await;
        }

        let mut req = CreateRoomRequest::new();
        req.name = Some("cross-trust referral".to_owned());
        req.initial_state = vec![
            matrix_sdk::ruma::events::InitialStateEvent::with_empty_state_key(
                matrix_sdk::ruma::events::room::encryption::RoomEncryptionEventContent::with_recommended_defaults(),
            )
            .to_raw_any(),
        ];
        let room = sam.create_room(req).await.expect("sam creates a room");
        let room_id = room.room_id().to_owned();
        let alice_id = h.user_id("alice");
        room.invite_user_by_id(<&UserId>::try_from(alice_id.as_str()).unwrap())
            .await
            .expect("invite alice on Handover");
        sync_until(&alice, 90, "alice sees the invite", |r| {
            invited_rooms(r).contains(&room_id).then_some(())
        })
        .await;
        let via: OwnedServerName = s.name.as_str().try_into().unwrap();
        alice
            .join_room_by_id_or_alias(<&matrix_sdk::ruma::RoomOrAliasId>::from(&*room_id), &[via])
            .await
            .expect("alice joins through Synapse");
        sync_until(&sam, 90, "sam sees alice's join", |r| {
            timeline(r, &room_id)
                .iter()
                .any(|e| {
                    e["type"] == "m.room.member"
                        && e["state_key"] == alice_id.as_str()
                        && e["content"]["membership"] == "join"
                })
                .then_some(())
        })
        .await;

        let sent = room
            .send(RoomMessageEventContent::text_plain("referral letter attached"))
            .await
            .expect("sam sends");
        let body = sync_until_decrypted(
            &alice,
            "alice on Handover",
            &room_id,
            sent.response.event_id.as_str(),
        )
        .await;
        assert_eq!(body, "referral letter attached");

        let reply = alice
            .get_room(&room_id)
            .expect("alice's room")
            .send(RoomMessageEventContent::text_plain("received, thank you"))
            .await
            .expect("alice replies");
        let body = sync_until_decrypted(
            &sam,
            "sam on Synapse",
            &room_id,
            reply.response.event_id.as_str(),
        )
        .await;
        assert_eq!(body, "received, thank you");
    })
    .await;
}
