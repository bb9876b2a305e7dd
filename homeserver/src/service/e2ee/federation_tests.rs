//! E2EE across servers, through the services on a real store: what other servers are told
//! about local keys (answers and announcements: who gets what), and how remote device lists
//! are cached and invalidated. The outbox is replaced by a recorder; where a test needs a real
//! request to fail, a federation list without the remote server refuses it at the gate.

use std::collections::BTreeMap;
use std::sync::Arc;

use ruma::api::client::keys::{claim_keys, get_keys, upload_signatures, upload_signing_keys};
use ruma::api::client::to_device::send_event_to_device::v3::Messages;
use ruma::events::room::member::MembershipState;
use ruma::to_device::DeviceIdOrAllDevices;
use ruma::{OneTimeKeyAlgorithm, OwnedServerName, OwnedUserId};
use serde_json::{Value, json};

use super::tests::{
    PASSWORD, cross_signing_key, cross_signing_key_by, device_keys, pk, raw, sign_as, upload,
};
use crate::service::peer::fanout::RecordingSink;
use crate::service::test_util::{remote_join, room};
use crate::service::users::{Session, test_login};
use crate::service::{Services, test_services};

fn user(id: &str) -> OwnedUserId {
    id.try_into().unwrap()
}

fn server(name: &str) -> OwnedServerName {
    name.try_into().unwrap()
}

/// Services whose federation list holds only `listed.nhs.uk:8448`.
fn gated_services() -> (Services, tempfile::TempDir) {
    use handover_policy::{FederationGate, LiveFederationList};
    let doc =
        br#"{"serial":1,"organisations":[{"ods_code":"RRK","servers":["listed.nhs.uk:8448"]}]}"#;
    let gate = FederationGate {
        list: Some(LiveFederationList::load(doc, None, None).unwrap()),
    };
    let (s, _store, dir) = crate::service::test_services_with_policy(Arc::new(gate));
    (s, dir)
}

fn recorder(s: &Services) -> Arc<RecordingSink> {
    let sink = Arc::new(RecordingSink::default());
    s.fanout.set_sink(sink.clone());
    sink
}

async fn cross_sign(s: &Services, who: &Session) {
    let u = who.user_id.as_str();
    let mut req = upload_signing_keys::v3::Request::new();
    req.master_key = Some(raw(cross_signing_key(u, "master", "MASTER")));
    req.self_signing_key = Some(raw(cross_signing_key_by(
        u,
        "self_signing",
        "SELF",
        "MASTER",
    )));
    req.user_signing_key = Some(raw(cross_signing_key_by(
        u,
        "user_signing",
        "USER",
        "MASTER",
    )));
    s.e2ee.upload_signing_keys(who, req).await.unwrap();
}

#[tokio::test]
async fn other_servers_get_keys_without_names_or_foreign_signatures() {
    let (s, _d) = test_services();
    let (alice, _) = test_login(&s.users, "alice", PASSWORD).await;
    let (bob, _) = test_login(&s.users, "bob", PASSWORD).await;
    s.users
        .rename_device(
            &alice.user_id,
            &alice.device_id,
            Some("Ward 7 desktop".into()),
        )
        .await
        .unwrap();
    upload(&s, &alice, &[("A", "otkA")], None).await;
    cross_sign(&s, &alice).await;
    cross_sign(&s, &bob).await;
    // Bob verifies Alice: his user-signing signature on her master key.
    let mut master = cross_signing_key(alice.user_id.as_str(), "master", "MASTER");
    sign_as(&mut master, bob.user_id.as_str(), "USER");
    let user_sig = format!("ed25519:{}", pk("USER"));
    let bob_sig = master["signatures"][bob.user_id.as_str()][&user_sig].clone();
    let mut keys = upload_signatures::v3::SignedKeys::new();
    keys.add_cross_signing_keys(pk("MASTER").into(), raw(master));
    let req = upload_signatures::v3::Request::new(BTreeMap::from([(alice.user_id.clone(), keys)]));
    let res = s.e2ee.upload_signatures(&bob, req).await.unwrap();
    assert!(res.failures.is_empty(), "{:?}", res.failures);

    let origin = server("remote.nhs.uk");
    let wanted = BTreeMap::from([
        (alice.user_id.clone(), vec![]),
        (user("@carol:remote.nhs.uk"), vec![]),
    ]);
    let res = s.e2ee.federation_query(&origin, wanted).await.unwrap();
    assert_eq!(
        res.device_keys.len(),
        1,
        "only local users are answered for"
    );
    let dk: Value = res.device_keys[&alice.user_id][&alice.device_id]
        .deserialize_as_unchecked()
        .unwrap();
    assert_eq!(dk["user_id"], alice.user_id.as_str());
    assert!(dk["unsigned"]["device_display_name"].is_null());
    let m: Value = res.master_keys[&alice.user_id]
        .deserialize_as_unchecked()
        .unwrap();
    assert!(m["signatures"][bob.user_id.as_str()].is_null());
    assert!(res.self_signing_keys.contains_key(&alice.user_id));

    // A local client still sees the name and Bob's signature.
    let mut q = get_keys::v3::Request::new();
    q.device_keys.insert(alice.user_id.clone(), vec![]);
    let local = s.e2ee.query_keys(&bob, q).await.unwrap();
    let dk: Value = local.device_keys[&alice.user_id][&alice.device_id]
        .deserialize_as_unchecked()
        .unwrap();
    assert_eq!(dk["unsigned"]["device_display_name"], "Ward 7 desktop");
    let m: Value = local.master_keys[&alice.user_id]
        .deserialize_as_unchecked()
        .unwrap();
    assert_eq!(m["signatures"][bob.user_id.as_str()][&user_sig], bob_sig);

    // /user/devices: the devices, a stream id that moves with the list, the public keys.
    let devices = s
        .e2ee
        .federation_devices(&origin, &alice.user_id)
        .await
        .unwrap();
    assert_eq!(devices.devices.len(), 1);
    assert_eq!(devices.devices[0].device_id, alice.device_id);
    assert!(devices.master_key.is_some() && devices.self_signing_key.is_some());
    let before = devices.stream_id;
    upload(&s, &alice, &[], None).await; // same keys: no change
    let (alice2, _) = test_login(&s.users, "alice", PASSWORD).await;
    upload(&s, &alice2, &[], None).await;
    let after = s
        .e2ee
        .federation_devices(&origin, &alice.user_id)
        .await
        .unwrap();
    assert!(after.stream_id > before);
    assert_eq!(after.devices.len(), 2);
    let err = s
        .e2ee
        .federation_devices(&origin, &user("@carol:remote.nhs.uk"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), Some(&ruma::api::error::ErrorKind::InvalidParam));

    // Claims: local users only, one key each.
    let claim = BTreeMap::from([
        (
            alice.user_id.clone(),
            BTreeMap::from([(
                alice.device_id.clone(),
                OneTimeKeyAlgorithm::SignedCurve25519,
            )]),
        ),
        (
            user("@carol:remote.nhs.uk"),
            BTreeMap::from([("X".into(), OneTimeKeyAlgorithm::SignedCurve25519)]),
        ),
    ]);
    let res = s
        .e2ee
        .federation_claim(&origin, claim.clone())
        .await
        .unwrap();
    assert_eq!(res.one_time_keys.len(), 1);
    let key = res.one_time_keys[&alice.user_id][&alice.device_id]
        .values()
        .next()
        .unwrap();
    let key: Value = key.deserialize_as_unchecked().unwrap();
    assert_eq!(key["key"], "otkA");
    let res = s.e2ee.federation_claim(&origin, claim).await.unwrap();
    assert!(res.one_time_keys.is_empty(), "the key was used up");
}

#[tokio::test]
async fn key_changes_are_announced_to_servers_sharing_a_room() {
    let (s, _d) = test_services();
    let sink = recorder(&s);
    let (alice, _) = test_login(&s.users, "alice", PASSWORD).await;
    let (dave, _) = test_login(&s.users, "dave", PASSWORD).await;
    let r = room(&s, &alice.user_id, "ward", true).await;
    remote_join(&s, &r, &user("@bob:remote.nhs.uk")).await;
    remote_join(&s, &r, &user("@bo2:remote.nhs.uk")).await;
    // Another server's user in a room without Alice hears nothing of her.
    let other = room(&s, &dave.user_id, "other", true).await;
    remote_join(&s, &other, &user("@eve:other.nhs.uk")).await;
    sink.clear();

    upload(&s, &alice, &[("A", "otkA")], None).await;
    let sent = sink.sent();
    assert_eq!(sent.len(), 1, "{sent:?}");
    let (dest, kind, content) = &sent[0];
    assert_eq!(
        (dest.as_str(), kind.as_str()),
        ("remote.nhs.uk", "m.device_list_update")
    );
    assert_eq!(content["user_id"], alice.user_id.as_str());
    assert_eq!(content["device_id"], alice.device_id.as_str());
    assert_eq!(content["keys"]["user_id"], alice.user_id.as_str());
    assert!(content["stream_id"].as_u64().unwrap() > 0);
    assert!(content.get("deleted").is_none());

    // One-time keys alone change nothing others track.
    sink.clear();
    upload(&s, &alice, &[("B", "otkB")], None).await;
    assert!(sink.sent().is_empty());

    // Cross-signing: master and self-signing keys, never the user-signing key.
    cross_sign(&s, &alice).await;
    let sent = sink.sent();
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0].1, "m.signing_key_update");
    assert!(sent[0].2["master_key"]["keys"][format!("ed25519:{}", pk("MASTER"))].is_string());
    assert!(sent[0].2["self_signing_key"].is_object());
    assert!(sent[0].2.get("user_signing_key").is_none());

    // Replacing only the user-signing key is not news to other servers.
    sink.clear();
    let mut req = upload_signing_keys::v3::Request::new();
    let u = alice.user_id.as_str();
    req.user_signing_key = Some(raw(cross_signing_key_by(
        u,
        "user_signing",
        "USER2",
        "MASTER",
    )));
    req.auth = Some(super::tests::password(u, None));
    let _ = s.e2ee.upload_signing_keys(&alice, req).await;
    assert!(
        sink.sent()
            .iter()
            .all(|(_, kind, _)| kind != "m.signing_key_update")
    );

    // The self-signing key signs the device: the device's new keys go out.
    sink.clear();
    let mut signed = device_keys(&alice, "curve_key");
    sign_as(&mut signed, u, "SELF");
    let self_sig = format!("ed25519:{}", pk("SELF"));
    let cross_sig = signed["signatures"][u][&self_sig].clone();
    let mut keys = upload_signatures::v3::SignedKeys::new();
    keys.add_device_keys(alice.device_id.clone(), raw(signed));
    let req = upload_signatures::v3::Request::new(BTreeMap::from([(alice.user_id.clone(), keys)]));
    s.e2ee.upload_signatures(&alice, req).await.unwrap();
    let sent = sink.sent();
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0].1, "m.device_list_update");
    assert_eq!(sent[0].2["keys"]["signatures"][u][&self_sig], cross_sig);

    // Logging out deletes the device: the other server hears it is gone.
    sink.clear();
    s.users.logout(&alice).await.unwrap();
    let sent = sink.sent();
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0].1, "m.device_list_update");
    assert_eq!(sent[0].2["device_id"], alice.device_id.as_str());
    assert_eq!(sent[0].2["deleted"], true);
    assert!(sent[0].2.get("keys").is_none());
}

#[tokio::test]
async fn to_device_messages_for_remote_users_go_to_their_servers() {
    let (s, _d) = test_services();
    let sink = recorder(&s);
    let (alice, _) = test_login(&s.users, "alice", PASSWORD).await;
    let (dave, _) = test_login(&s.users, "dave", PASSWORD).await;
    let content = raw(json!({ "algorithm": "m.olm.v1.curve25519-aes-sha2", "ciphertext": {} }));
    let mut messages = Messages::new();
    for (u, d) in [
        ("@bob:remote.nhs.uk", "BOBDEV"),
        ("@bo2:remote.nhs.uk", "*"),
        ("@carol:other.nhs.uk", "CAROLDEV"),
    ] {
        let device = if d == "*" {
            DeviceIdOrAllDevices::AllDevices
        } else {
            DeviceIdOrAllDevices::DeviceId(d.into())
        };
        messages
            .entry(user(u))
            .or_default()
            .insert(device, content.clone());
    }
    messages.entry(dave.user_id.clone()).or_default().insert(
        DeviceIdOrAllDevices::DeviceId(dave.device_id.clone()),
        content.clone(),
    );
    s.to_device
        .send(&alice, "m.room.encrypted", "txn1", &messages)
        .await
        .unwrap();
    let mut sent = sink.sent();
    sent.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(sent.len(), 2, "one EDU per server: {sent:?}");
    assert_eq!(sent[0].0, "other.nhs.uk");
    assert_eq!(sent[1].0, "remote.nhs.uk");
    for (_, kind, c) in &sent {
        assert_eq!(kind, "m.direct_to_device");
        assert_eq!(c["sender"], alice.user_id.as_str());
        assert_eq!(c["type"], "m.room.encrypted");
        assert!(c["message_id"].as_str().is_some_and(|m| !m.is_empty()));
    }
    assert_ne!(sent[0].2["message_id"], sent[1].2["message_id"]);
    let remote = &sent[1].2["messages"];
    assert_eq!(
        remote["@bob:remote.nhs.uk"]["BOBDEV"]["ciphertext"],
        json!({})
    );
    assert!(remote["@bo2:remote.nhs.uk"]["*"].is_object());
    assert!(remote.get(dave.user_id.as_str()).is_none());
    assert!(sent[0].2["messages"].get("@bob:remote.nhs.uk").is_none());

    // The local recipient has it; a retried transaction sends nothing again.
    let d = s
        .to_device
        .deliver(&dave.user_id, &dave.device_id, None, i64::MAX)
        .await
        .unwrap();
    assert_eq!(d.events.len(), 1);
    sink.clear();
    s.to_device
        .send(&alice, "m.room.encrypted", "txn1", &messages)
        .await
        .unwrap();
    assert!(sink.sent().is_empty());
}

/// Alice (local) and Bob (remote.nhs.uk) in one room, Bob's keys cached as fetched now.
async fn cached_bob(s: &Services) -> (Session, OwnedUserId, ruma::OwnedRoomId) {
    let (alice, _) = test_login(&s.users, "alice", PASSWORD).await;
    let bob = user("@bob:remote.nhs.uk");
    let r = room(s, &alice.user_id, "ward", true).await;
    remote_join(s, &r, &bob).await;
    let keys = json!({
        "device_keys": { "BOBDEV": {
            "user_id": bob.as_str(), "device_id": "BOBDEV",
            "algorithms": ["m.olm.v1.curve25519-aes-sha2"],
            "keys": { "curve25519:BOBDEV": "c", "ed25519:BOBDEV": "e" },
            "signatures": {}
        }},
        "master_key": { "user_id": bob.as_str(), "usage": ["master"], "keys": { "ed25519:BM": "BM" } }
    });
    s.e2ee
        .save_cache(
            &bob,
            s.rooms.current_pos(),
            &serde_json::from_value(keys).unwrap(),
        )
        .await
        .unwrap();
    (alice, bob, r)
}

async fn query(s: &Services, who: &Session, u: &OwnedUserId) -> get_keys::v3::Response {
    let mut q = get_keys::v3::Request::new();
    q.device_keys.insert(u.clone(), vec![]);
    s.e2ee.query_keys(who, q).await.unwrap()
}

#[tokio::test]
async fn cached_remote_device_list_is_used_until_its_server_says_it_changed() {
    let (s, _d) = gated_services();
    let (alice, bob, _r) = cached_bob(&s).await;
    let since = s.rooms.current_pos();

    // From the cache: no request (which the gate would refuse: no federation list here).
    let res = query(&s, &alice, &bob).await;
    assert!(res.failures.is_empty(), "{:?}", res.failures);
    assert!(res.device_keys[&bob].contains_key("BOBDEV"));
    assert!(res.master_keys.contains_key(&bob));

    // Asking for one device of a cached list filters it.
    let mut q = get_keys::v3::Request::new();
    q.device_keys.insert(bob.clone(), vec!["OTHER".into()]);
    let res = s.e2ee.query_keys(&alice, q).await.unwrap();
    assert!(res.device_keys[&bob].is_empty());

    // Bob's server says his devices changed: Alice's sync names him, the cache is gone and
    // the next query goes to his server (here: refused by the gate, so a failure; with the
    // cache the gate was never asked).
    s.e2ee.remote_keys_changed(&bob).await.unwrap();
    let changes = s
        .e2ee
        .device_list_changes(&alice.user_id, since, s.rooms.current_pos())
        .await
        .unwrap();
    assert!(changes.changed.contains(&bob));
    assert!(s.e2ee.usable_cache(&bob).await.unwrap().is_none());
    let res = query(&s, &alice, &bob).await;
    assert!(res.failures.contains_key("remote.nhs.uk"));
    assert_eq!(res.failures["remote.nhs.uk"]["status"], 403);
    assert!(!res.device_keys.contains_key(&bob));
}

#[tokio::test]
async fn cached_remote_device_list_is_dropped_after_a_break_in_sharing_a_room() {
    let (s, _d) = test_services();
    let (_alice, bob, r) = cached_bob(&s).await;
    assert!(s.e2ee.usable_cache(&bob).await.unwrap().is_some());
    // Bob leaves and joins again: updates sent while he was away may have been missed.
    let leave = crate::service::rooms::EventSpec::state(
        ruma::events::StateEventType::RoomMember,
        bob.as_str(),
        json!({ "membership": MembershipState::Leave }),
    );
    s.rooms.send(&r, &bob, leave, None).await.unwrap();
    remote_join(&s, &r, &bob).await;
    assert!(s.e2ee.usable_cache(&bob).await.unwrap().is_none());
}

#[tokio::test]
async fn device_list_updates_for_users_sharing_no_room_are_ignored() {
    let (s, _d) = test_services();
    let (alice, _) = test_login(&s.users, "alice", PASSWORD).await;
    let stranger = user("@zed:remote.nhs.uk");
    let since = s.rooms.current_pos();
    s.e2ee.remote_keys_changed(&stranger).await.unwrap();
    assert_eq!(s.rooms.current_pos(), since, "nothing was recorded");
    let changes = s
        .e2ee
        .device_list_changes(&alice.user_id, since, s.rooms.current_pos())
        .await
        .unwrap();
    assert!(changes.is_empty());
}

#[tokio::test]
async fn claims_for_unlisted_servers_are_failures() {
    let (s, _d) = gated_services();
    let (alice, _) = test_login(&s.users, "alice", PASSWORD).await;
    let req = claim_keys::v3::Request::new(BTreeMap::from([(
        user("@bob:remote.nhs.uk"),
        BTreeMap::from([("BOBDEV".into(), OneTimeKeyAlgorithm::SignedCurve25519)]),
    )]));
    let _ = alice;
    let res = s.e2ee.claim_keys(req).await.unwrap();
    assert!(res.one_time_keys.is_empty());
    assert_eq!(res.failures["remote.nhs.uk"]["status"], 403);
    assert!(
        res.failures["remote.nhs.uk"]["message"]
            .as_str()
            .unwrap()
            .contains("federation_not_listed")
    );
}
