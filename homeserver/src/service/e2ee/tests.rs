//! Key upload/query/claim, device-list tracking, to-device delivery and cross-signing, on a
//! real SQLite store through the services.

use std::collections::BTreeMap;
use std::time::Duration;

use ruma::api::client::filter::FilterDefinition;
use ruma::api::client::keys::{
    claim_keys, get_keys, upload_keys, upload_signatures, upload_signing_keys,
};
use ruma::api::client::sync::sync_events::v3::Response as SyncResponse;
use ruma::api::client::uiaa::{AuthData, MatrixUserIdentifier, Password, UserIdentifier};
use ruma::api::error::ErrorKind;
use ruma::presence::PresenceState;
use ruma::serde::Raw;
use ruma::to_device::DeviceIdOrAllDevices;
use ruma::{OneTimeKeyAlgorithm, OwnedUserId, UInt};
use serde_json::{Value, json};

use crate::error::Error;
use crate::service::sync::SyncRequest;
use crate::service::test_util::{join, room};
use crate::service::users::{Session, test_login};
use crate::service::{Services, test_services};

pub(super) const PASSWORD: &str = "correct horse";

pub(super) fn raw<T>(v: Value) -> Raw<T> {
    Raw::new(&v).unwrap().cast_unchecked()
}

pub(super) fn device_keys(s: &Session, curve: &str) -> Value {
    let (u, d) = (s.user_id.as_str(), s.device_id.as_str());
    json!({
        "user_id": u, "device_id": d,
        "algorithms": ["m.olm.v1.curve25519-aes-sha2", "m.megolm.v1.aes-sha2"],
        "keys": { format!("curve25519:{d}"): curve, format!("ed25519:{d}"): "ed_key" },
        "signatures": { u: { format!("ed25519:{d}"): "self_sig" } }
    })
}

pub(super) fn signed_key(s: &Session, key: &str, fallback: bool) -> Value {
    let mut v = json!({
        "key": key,
        "signatures": { s.user_id.as_str(): { format!("ed25519:{}", s.device_id): "sig" } }
    });
    if fallback {
        v["fallback"] = true.into();
    }
    v
}

pub(super) async fn upload(
    s: &Services,
    who: &Session,
    otks: &[(&str, &str)],
    fallback: Option<&str>,
) {
    let mut req = upload_keys::v3::Request::new();
    req.device_keys = Some(raw(device_keys(who, "curve_key")));
    for (id, key) in otks {
        req.one_time_keys.insert(
            format!("signed_curve25519:{id}").try_into().unwrap(),
            raw(signed_key(who, key, false)),
        );
    }
    if let Some(key) = fallback {
        req.fallback_keys.insert(
            "signed_curve25519:FB".try_into().unwrap(),
            raw(signed_key(who, key, true)),
        );
    }
    s.e2ee.upload_keys(who, req).await.unwrap();
}

async fn claim(s: &Services, who: &Session) -> Option<String> {
    let req = claim_keys::v3::Request::new(BTreeMap::from([(
        who.user_id.clone(),
        BTreeMap::from([(who.device_id.clone(), OneTimeKeyAlgorithm::SignedCurve25519)]),
    )]));
    let res = s.e2ee.claim_keys(req).await.unwrap();
    let keys = res.one_time_keys.get(&who.user_id)?.get(&who.device_id)?;
    let (_, key) = keys.iter().next()?;
    let v: Value = key.deserialize_as_unchecked().unwrap();
    Some(v["key"].as_str()?.to_owned())
}

pub(super) async fn sync(s: &Services, who: &Session, since: Option<&str>) -> SyncResponse {
    let req = SyncRequest {
        since: since.map(|t| crate::service::filter::parse_token(t).unwrap()),
        full_state: false,
        timeout: Duration::ZERO,
        filter: FilterDefinition::default(),
        use_state_after: false,
        set_presence: PresenceState::Offline,
    };
    s.sync.sync(who, req).await.unwrap()
}

fn kind(e: &Error) -> Option<&ErrorKind> {
    e.kind()
}

#[tokio::test]
async fn upload_query_claim_round_trip_then_fallback() {
    let (s, _d) = test_services();
    let (alice, _) = test_login(&s.users, "alice", PASSWORD).await;
    let (bob, _) = test_login(&s.users, "bob", PASSWORD).await;
    upload(&s, &alice, &[("A", "otkA"), ("B", "otkB")], Some("fbkk")).await;

    let counts = s
        .e2ee
        .one_time_key_counts(&alice.user_id, &alice.device_id)
        .await
        .unwrap();
    assert_eq!(
        counts[&OneTimeKeyAlgorithm::SignedCurve25519],
        UInt::new(2).unwrap()
    );

    // Bob sees Alice's device keys; a remote user lands in `failures`, not silently dropped.
    let remote: OwnedUserId = "@carol:remote.example".try_into().unwrap();
    let mut q = get_keys::v3::Request::new();
    q.device_keys.insert(alice.user_id.clone(), vec![]);
    q.device_keys.insert(remote, vec![]);
    let res = s.e2ee.query_keys(&bob, q).await.unwrap();
    let keys: Value = res.device_keys[&alice.user_id][&alice.device_id]
        .deserialize_as_unchecked()
        .unwrap();
    assert_eq!(
        keys["keys"][format!("curve25519:{}", alice.device_id)],
        "curve_key"
    );
    assert!(res.failures.contains_key("remote.example"));

    // Two distinct one-time keys, then the fallback key (marked used), repeatedly.
    let (k1, k2) = (claim(&s, &alice).await, claim(&s, &alice).await);
    assert_ne!(k1, k2);
    assert!(matches!(k1.as_deref(), Some("otkA" | "otkB")));
    assert!(
        s.e2ee
            .unused_fallback_key_types(&alice.user_id, &alice.device_id)
            .await
            .unwrap()
            .len()
            == 1
    );
    assert_eq!(claim(&s, &alice).await.as_deref(), Some("fbkk"));
    assert_eq!(claim(&s, &alice).await.as_deref(), Some("fbkk"));
    assert!(
        s.e2ee
            .unused_fallback_key_types(&alice.user_id, &alice.device_id)
            .await
            .unwrap()
            .is_empty()
    );
    let counts = s
        .e2ee
        .one_time_key_counts(&alice.user_id, &alice.device_id)
        .await
        .unwrap();
    assert_eq!(counts[&OneTimeKeyAlgorithm::SignedCurve25519], UInt::MIN);

    // Re-uploading an identical key id is fine; different content is refused.
    upload(&s, &alice, &[("C", "otkC")], None).await;
    upload(&s, &alice, &[("C", "otkC")], None).await;
    let mut req = upload_keys::v3::Request::new();
    req.one_time_keys.insert(
        "signed_curve25519:C".try_into().unwrap(),
        raw(signed_key(&alice, "othr", false)),
    );
    let err = s.e2ee.upload_keys(&alice, req).await.unwrap_err();
    assert!(matches!(kind(&err), Some(ErrorKind::InvalidParam)));

    // A device's identity keys cannot be swapped, nor uploaded for another device.
    let mut req = upload_keys::v3::Request::new();
    req.device_keys = Some(raw(device_keys(&alice, "new_curve")));
    let err = s.e2ee.upload_keys(&alice, req).await.unwrap_err();
    assert!(matches!(kind(&err), Some(ErrorKind::InvalidParam)));
    let mut req = upload_keys::v3::Request::new();
    req.device_keys = Some(raw(device_keys(&bob, "x")));
    assert!(s.e2ee.upload_keys(&alice, req).await.is_err());
}

#[tokio::test]
async fn key_change_reaches_room_members_after_since_only() {
    let (s, _d) = test_services();
    let (alice, _) = test_login(&s.users, "alice", PASSWORD).await;
    let (bob, _) = test_login(&s.users, "bob", PASSWORD).await;
    let (carol, _) = test_login(&s.users, "carol", PASSWORD).await;
    let r = room(&s, &alice.user_id, "Ward", false).await;
    join(&s, &r, &alice.user_id, &bob.user_id).await;

    let t0 = sync(&s, &bob, None).await.next_batch;
    let c0 = sync(&s, &carol, None).await.next_batch;
    upload(&s, &alice, &[], None).await;
    let res = sync(&s, &bob, Some(&t0)).await;
    assert!(
        res.device_lists.changed.contains(&alice.user_id),
        "{:?}",
        res.device_lists
    );
    // Not again after that sync, and never for someone sharing no room.
    let later = sync(&s, &bob, Some(&res.next_batch)).await;
    assert!(!later.device_lists.changed.contains(&alice.user_id));
    let c = sync(&s, &carol, Some(&c0)).await;
    assert!(!c.device_lists.changed.contains(&alice.user_id));

    // Carol joining is a change for Bob (newly shares a room); deleting a device is a change.
    let t1 = later.next_batch;
    join(&s, &r, &alice.user_id, &carol.user_id).await;
    let (alice2, _) = test_login(&s.users, "alice", PASSWORD).await;
    let t2 = sync(&s, &bob, Some(&t1)).await;
    assert!(t2.device_lists.changed.contains(&carol.user_id));
    s.users.logout(&alice2).await.unwrap();
    let t3 = sync(&s, &bob, Some(&t2.next_batch)).await;
    assert!(t3.device_lists.changed.contains(&alice.user_id));

    // Carol leaving: Bob gets her in `left`; /keys/changes agrees.
    s.rooms.leave(&r, &carol.user_id, None).await.unwrap();
    let t4 = sync(&s, &bob, Some(&t3.next_batch)).await;
    assert_eq!(t4.device_lists.left, vec![carol.user_id.clone()]);
    let ch = s
        .e2ee
        .key_changes(&bob.user_id, &t3.next_batch, &t4.next_batch)
        .await
        .unwrap();
    assert_eq!(ch.left, vec![carol.user_id.clone()]);
    // The counts are always present for the syncing device.
    assert!(t4.device_unused_fallback_key_types.is_some());
    assert!(
        t4.device_one_time_keys_count
            .contains_key(&OneTimeKeyAlgorithm::SignedCurve25519)
    );
}

#[tokio::test]
async fn to_device_is_delivered_once_and_deleted_after_ack() {
    let (s, _d) = test_services();
    let (alice, _) = test_login(&s.users, "alice", PASSWORD).await;
    let (bob, _) = test_login(&s.users, "bob", PASSWORD).await;
    let t0 = sync(&s, &bob, None).await.next_batch;
    let messages = BTreeMap::from([(
        bob.user_id.clone(),
        BTreeMap::from([(DeviceIdOrAllDevices::AllDevices, raw(json!({ "n": 1 })))]),
    )]);
    s.to_device
        .send(&alice, "m.test", "txn1", &messages)
        .await
        .unwrap();
    // The same transaction again is a no-op.
    s.to_device
        .send(&alice, "m.test", "txn1", &messages)
        .await
        .unwrap();

    let first = sync(&s, &bob, Some(&t0)).await;
    assert_eq!(first.to_device.events.len(), 1);
    let ev: Value = first.to_device.events[0]
        .deserialize_as_unchecked()
        .unwrap();
    assert_eq!(ev["sender"], alice.user_id.as_str());
    assert_eq!(ev["type"], "m.test");
    assert_eq!(ev["content"]["n"], 1);
    // A retried sync with the same `since` gets it again (not yet acknowledged)…
    assert_eq!(sync(&s, &bob, Some(&t0)).await.to_device.events.len(), 1);
    // …and syncing past it acknowledges and deletes it.
    let second = sync(&s, &bob, Some(&first.next_batch)).await;
    assert!(second.to_device.events.is_empty());
    assert!(sync(&s, &bob, Some(&t0)).await.to_device.events.is_empty());
}

/// A real ed25519 key named `name` (the same name gives the same key); its version is its
/// public key, as cross-signing key ids are.
pub(super) fn test_key(name: &str) -> ruma::signatures::Ed25519KeyPair {
    use ruma::signatures::Ed25519KeyPair;
    use sha2::Digest;
    // PKCS#8 v1 for an ed25519 seed: fixed prefix, then the 32-byte seed.
    let mut der = vec![
        0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04,
        0x20,
    ];
    der.extend_from_slice(&sha2::Sha256::digest(name.as_bytes()));
    let kp = Ed25519KeyPair::from_der(&der, String::new()).unwrap();
    let public =
        ruma::serde::Base64::<ruma::serde::base64::Standard>::new(kp.public_key().to_vec());
    Ed25519KeyPair::from_der(&der, public.encode()).unwrap()
}

/// The public key (unpadded base64) of `test_key(name)`.
pub(super) fn pk(name: &str) -> String {
    test_key(name).version().to_owned()
}

/// Adds `signer`'s signature with `test_key(name)` to `v`.
pub(super) fn sign_as(v: &mut Value, signer: &str, name: &str) {
    let mut obj: ruma::CanonicalJsonObject = serde_json::from_value(v.clone()).unwrap();
    ruma::signatures::sign_json(signer, &test_key(name), &mut obj).unwrap();
    *v = serde_json::to_value(obj).unwrap();
}

/// An unsigned cross-signing key holding `test_key(name)`.
pub(super) fn cross_signing_key(user: &str, usage: &str, name: &str) -> Value {
    let public = pk(name);
    json!({ "user_id": user, "usage": [usage], "keys": { format!("ed25519:{public}"): public } })
}

/// A cross-signing key signed by the master key `test_key(master)`.
pub(super) fn cross_signing_key_by(user: &str, usage: &str, name: &str, master: &str) -> Value {
    let mut v = cross_signing_key(user, usage, name);
    sign_as(&mut v, user, master);
    v
}

pub(super) fn password(user: &str, session: Option<String>) -> AuthData {
    let id = UserIdentifier::Matrix(MatrixUserIdentifier::new(user.to_owned()));
    let mut p = Password::new(id, PASSWORD.to_owned());
    p.session = session;
    AuthData::Password(p)
}

#[tokio::test]
async fn cross_signing_needs_uia_once_a_master_key_exists() {
    let (s, _d) = test_services();
    let (alice, _) = test_login(&s.users, "alice", PASSWORD).await;
    let u = alice.user_id.as_str();
    let mut req = upload_signing_keys::v3::Request::new();
    req.master_key = Some(raw(cross_signing_key(u, "master", "MASTER1")));
    req.self_signing_key = Some(raw(cross_signing_key_by(
        u,
        "self_signing",
        "SELF1",
        "MASTER1",
    )));
    // First upload (bootstrap): no UIA.
    s.e2ee
        .upload_signing_keys(&alice, req.clone())
        .await
        .unwrap();

    let mut again = upload_signing_keys::v3::Request::new();
    again.master_key = Some(raw(cross_signing_key(u, "master", "MASTER2")));
    let err = s
        .e2ee
        .upload_signing_keys(&alice, again.clone())
        .await
        .unwrap_err();
    let Error::Uiaa(info) = err else {
        panic!("expected UIA, got {err}")
    };
    again.auth = Some(password(u, info.session.clone()));
    s.e2ee.upload_signing_keys(&alice, again).await.unwrap();
    let mut q = get_keys::v3::Request::new();
    q.device_keys.insert(alice.user_id.clone(), vec![]);
    let res = s.e2ee.query_keys(&alice, q).await.unwrap();
    let master: Value = res.master_keys[&alice.user_id]
        .deserialize_as_unchecked()
        .unwrap();
    let m2 = pk("MASTER2");
    assert_eq!(master["keys"][format!("ed25519:{m2}")], m2.as_str());
}

#[tokio::test]
async fn uploaded_signatures_merge_into_query() {
    let (s, _d) = test_services();
    let (alice, _) = test_login(&s.users, "alice", PASSWORD).await;
    let (bob, _) = test_login(&s.users, "bob", PASSWORD).await;
    upload(&s, &alice, &[], None).await;
    let u = alice.user_id.as_str();
    let mut req = upload_signing_keys::v3::Request::new();
    req.master_key = Some(raw(cross_signing_key(u, "master", "MASTER")));
    req.self_signing_key = Some(raw(cross_signing_key_by(
        u,
        "self_signing",
        "SELF",
        "MASTER",
    )));
    s.e2ee.upload_signing_keys(&alice, req).await.unwrap();

    let mut signed = device_keys(&alice, "curve_key");
    sign_as(&mut signed, u, "SELF");
    let self_sig = format!("ed25519:{}", pk("SELF"));
    let mut keys = upload_signatures::v3::SignedKeys::new();
    let signed_sig = signed["signatures"][u][&self_sig].clone();
    keys.add_device_keys(alice.device_id.clone(), raw(signed));
    keys.add_device_keys("NOSUCHDEVICE".into(), raw(json!({ "signatures": {} })));
    let res = s
        .e2ee
        .upload_signatures(
            &alice,
            upload_signatures::v3::Request::new(BTreeMap::from([(alice.user_id.clone(), keys)])),
        )
        .await
        .unwrap();
    assert!(res.failures[&alice.user_id].contains_key("NOSUCHDEVICE"));
    assert!(!res.failures[&alice.user_id].contains_key(alice.device_id.as_str()));

    let mut q = get_keys::v3::Request::new();
    q.device_keys
        .insert(alice.user_id.clone(), vec![alice.device_id.clone()]);
    let res = s.e2ee.query_keys(&bob, q).await.unwrap();
    let dk: Value = res.device_keys[&alice.user_id][&alice.device_id]
        .deserialize_as_unchecked()
        .unwrap();
    assert_eq!(dk["signatures"][u][&self_sig], signed_sig);
    assert_eq!(
        dk["signatures"][u][format!("ed25519:{}", alice.device_id)],
        "self_sig"
    );
    // Bob never sees Alice's user-signing key; Alice's self-signing key is public.
    assert!(res.self_signing_keys.contains_key(&alice.user_id));
    assert!(res.user_signing_keys.is_empty());
}

#[tokio::test]
async fn cross_signing_signatures_are_verified() {
    let (s, _d) = test_services();
    let (alice, _) = test_login(&s.users, "alice", PASSWORD).await;
    upload(&s, &alice, &[], None).await;
    let u = alice.user_id.as_str();
    // A self-signing key not signed by the master key: 400 M_INVALID_SIGNATURE, nothing stored.
    let mut req = upload_signing_keys::v3::Request::new();
    req.master_key = Some(raw(cross_signing_key(u, "master", "MASTER")));
    req.self_signing_key = Some(raw(cross_signing_key_by(
        u,
        "self_signing",
        "SELF",
        "OTHER",
    )));
    let err = s.e2ee.upload_signing_keys(&alice, req).await.unwrap_err();
    assert_eq!(
        kind(&err).map(|k| k.errcode().to_string()).as_deref(),
        Some("M_INVALID_SIGNATURE"),
        "{err}"
    );
    let mut req = upload_signing_keys::v3::Request::new();
    req.master_key = Some(raw(cross_signing_key(u, "master", "MASTER")));
    req.self_signing_key = Some(raw(cross_signing_key_by(
        u,
        "self_signing",
        "SELF",
        "MASTER",
    )));
    s.e2ee.upload_signing_keys(&alice, req).await.unwrap();

    // A signature that names the self-signing key but was made by another key: a failure.
    let mut forged = device_keys(&alice, "curve_key");
    sign_as(&mut forged, u, "NOT_SELF");
    let sig = forged["signatures"][u][format!("ed25519:{}", pk("NOT_SELF"))].clone();
    forged["signatures"][u] = json!({ format!("ed25519:{}", pk("SELF")): sig });
    // A signature by a key alice does not have: a failure too.
    let mut unknown = cross_signing_key(u, "master", "MASTER");
    sign_as(&mut unknown, u, "NOT_SELF");
    let mut keys = upload_signatures::v3::SignedKeys::new();
    keys.add_device_keys(alice.device_id.clone(), raw(forged));
    keys.add_cross_signing_keys(pk("MASTER").into(), raw(unknown));
    let res = s
        .e2ee
        .upload_signatures(
            &alice,
            upload_signatures::v3::Request::new(BTreeMap::from([(alice.user_id.clone(), keys)])),
        )
        .await
        .unwrap();
    let failures = &res.failures[&alice.user_id];
    for id in [alice.device_id.as_str(), pk("MASTER").as_str()] {
        let f = serde_json::to_value(&failures[id]).unwrap();
        assert_eq!(f["errcode"], "M_INVALID_SIGNATURE", "{f}");
    }
    let mut q = get_keys::v3::Request::new();
    q.device_keys.insert(alice.user_id.clone(), vec![]);
    let res = s.e2ee.query_keys(&alice, q).await.unwrap();
    let dk: Value = res.device_keys[&alice.user_id][&alice.device_id]
        .deserialize_as_unchecked()
        .unwrap();
    assert!(
        dk["signatures"][u]
            .get(format!("ed25519:{}", pk("SELF")))
            .is_none(),
        "{dk}"
    );
}
