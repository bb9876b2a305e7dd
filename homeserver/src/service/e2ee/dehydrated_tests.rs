//! MSC3814 dehydrated devices through the services on a real SQLite store: create, read,
//! replace, delete; keys visible to other users; to-device messages collected and acknowledged.

use std::collections::BTreeMap;

use ruma::api::client::dehydrated_device::put_dehydrated_device;
use ruma::api::client::keys::get_keys;
use ruma::api::error::ErrorKind;
use ruma::serde::Raw;
use ruma::to_device::DeviceIdOrAllDevices;
use ruma::{OwnedDeviceId, UserId};
use serde_json::{Value, json};

use crate::service::users::{Session, test_login};
use crate::service::{Services, test_services};

const PASSWORD: &str = "correct horse";

fn raw<T>(v: Value) -> Raw<T> {
    Raw::new(&v).unwrap().cast_unchecked()
}

fn put_request(
    user: &UserId,
    device: &str,
    pickle: &str,
) -> put_dehydrated_device::unstable::Request {
    let keys = json!({
        "user_id": user, "device_id": device,
        "algorithms": ["m.olm.v1.curve25519-aes-sha2", "m.megolm.v1.aes-sha2"],
        "keys": {
            format!("curve25519:{device}"): format!("curve_{device}"),
            format!("ed25519:{device}"): format!("ed_{device}"),
        },
        "signatures": { user.as_str(): { format!("ed25519:{device}"): "self_sig" } }
    });
    let data = json!({ "algorithm": "org.matrix.msc3814.v1.olm", "device_pickle": pickle });
    let mut req =
        put_dehydrated_device::unstable::Request::new(device.into(), raw(data), raw(keys));
    req.initial_device_display_name = Some("Dehydrated device".into());
    req.one_time_keys.insert(
        "signed_curve25519:AAAA".try_into().unwrap(),
        raw(json!({ "key": "otk", "signatures": { user.as_str(): { format!("ed25519:{device}"): "sig" } } })),
    );
    req
}

async fn query(s: &Services, who: &Session, user: &UserId) -> BTreeMap<OwnedDeviceId, Value> {
    let mut q = get_keys::v3::Request::new();
    q.device_keys.insert(user.to_owned(), vec![]);
    let res = s.e2ee.query_keys(who, q).await.unwrap();
    res.device_keys
        .get(user)
        .map(|m| {
            m.iter()
                .map(|(d, k)| (d.clone(), k.deserialize_as_unchecked().unwrap()))
                .collect()
        })
        .unwrap_or_default()
}

async fn send_to(s: &Services, from: &Session, to: &UserId, device: &str, txn: &str, n: u32) {
    let messages = BTreeMap::from([(
        to.to_owned(),
        BTreeMap::from([(
            DeviceIdOrAllDevices::DeviceId(device.into()),
            raw(json!({ "n": n })),
        )]),
    )]);
    s.to_device
        .send(from, "m.room_key_request", txn, &messages)
        .await
        .unwrap();
}

fn numbers(events: &[Raw<ruma::events::AnyToDeviceEvent>]) -> Vec<u64> {
    events
        .iter()
        .map(|e| {
            let v: Value = e.deserialize_as_unchecked().unwrap();
            v["content"]["n"].as_u64().unwrap()
        })
        .collect()
}

#[tokio::test]
async fn put_then_get_returns_device_and_data_and_keys_are_queryable() {
    let (s, _d) = test_services();
    let (alice, _) = test_login(&s.users, "alice", PASSWORD).await;
    let (bob, _) = test_login(&s.users, "bob", PASSWORD).await;

    let err = s.dehydrated.get(&alice.user_id).await.unwrap_err();
    assert_eq!(err.kind(), Some(&ErrorKind::NotFound));

    let id = s
        .dehydrated
        .put(
            &alice.user_id,
            put_request(&alice.user_id, "DEHYD1", "pickle-1"),
        )
        .await
        .unwrap();
    assert_eq!(id, "DEHYD1");
    let (id, data) = s.dehydrated.get(&alice.user_id).await.unwrap();
    assert_eq!(id, "DEHYD1");
    let data: Value = data.deserialize_as_unchecked().unwrap();
    assert_eq!(data["device_pickle"], "pickle-1");
    assert_eq!(data["algorithm"], "org.matrix.msc3814.v1.olm");

    // Another user sees the dehydrated device's keys beside Alice's own device.
    let devices = query(&s, &bob, &alice.user_id).await;
    let dk = &devices[&OwnedDeviceId::from("DEHYD1")];
    assert_eq!(dk["keys"]["curve25519:DEHYD1"], "curve_DEHYD1");
    assert_eq!(dk["unsigned"]["device_display_name"], "Dehydrated device");
    // Its one-time key can be claimed like any device's.
    let counts = s
        .e2ee
        .one_time_key_counts(&alice.user_id, "DEHYD1".into())
        .await
        .unwrap();
    assert_eq!(
        counts[&ruma::OneTimeKeyAlgorithm::SignedCurve25519],
        1u32.into()
    );
}

#[tokio::test]
async fn keys_for_another_device_are_refused_and_nothing_is_stored() {
    let (s, _d) = test_services();
    let (alice, _) = test_login(&s.users, "alice", PASSWORD).await;
    let mut req = put_request(&alice.user_id, "DEHYD1", "pickle-1");
    req.device_id = "OTHER".into();
    assert!(s.dehydrated.put(&alice.user_id, req).await.is_err());
    // An ordinary device's id cannot be taken over.
    let req = put_request(&alice.user_id, alice.device_id.as_str(), "pickle-1");
    assert!(s.dehydrated.put(&alice.user_id, req).await.is_err());
    assert!(s.dehydrated.get(&alice.user_id).await.is_err());
    let devices = s.users.list_devices(&alice.user_id).await.unwrap();
    assert_eq!(devices.len(), 1, "only the login device remains");
}

#[tokio::test]
async fn events_are_returned_then_deleted_once_next_batch_is_presented() {
    let (s, _d) = test_services();
    let (alice, _) = test_login(&s.users, "alice", PASSWORD).await;
    let (bob, _) = test_login(&s.users, "bob", PASSWORD).await;
    s.dehydrated
        .put(&alice.user_id, put_request(&alice.user_id, "DEHYD1", "p"))
        .await
        .unwrap();
    send_to(&s, &bob, &alice.user_id, "DEHYD1", "t1", 1).await;
    send_to(&s, &bob, &alice.user_id, "DEHYD1", "t2", 2).await;
    // A message to Alice's ordinary device is not the dehydrated device's.
    send_to(&s, &bob, &alice.user_id, alice.device_id.as_str(), "t3", 3).await;

    let dev: OwnedDeviceId = "DEHYD1".into();
    let first = s
        .dehydrated
        .events(&alice.user_id, &dev, None)
        .await
        .unwrap();
    assert_eq!(numbers(&first.events), vec![1, 2]);
    let token = first.next_batch.clone().expect("a next_batch token");
    // Asking again without the token returns the same messages: nothing was acknowledged.
    let again = s
        .dehydrated
        .events(&alice.user_id, &dev, None)
        .await
        .unwrap();
    assert_eq!(numbers(&again.events), vec![1, 2]);

    send_to(&s, &bob, &alice.user_id, "DEHYD1", "t4", 4).await;
    let next = s
        .dehydrated
        .events(&alice.user_id, &dev, Some(&token))
        .await
        .unwrap();
    assert_eq!(numbers(&next.events), vec![4]);
    let last = next.next_batch.clone().unwrap();
    let done = s
        .dehydrated
        .events(&alice.user_id, &dev, Some(&last))
        .await
        .unwrap();
    assert!(done.events.is_empty());
    // Acknowledged messages are gone for good.
    let fresh = s
        .dehydrated
        .events(&alice.user_id, &dev, None)
        .await
        .unwrap();
    assert!(fresh.events.is_empty());

    // Only the user's own current dehydrated device can be read.
    let err = s
        .dehydrated
        .events(&alice.user_id, &alice.device_id, None)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), Some(&ErrorKind::Forbidden));
    assert!(s.dehydrated.events(&bob.user_id, &dev, None).await.is_err());
    assert!(
        s.dehydrated
            .events(&alice.user_id, &dev, Some("bogus"))
            .await
            .is_err()
    );
}

#[tokio::test]
async fn second_put_replaces_the_first_device() {
    let (s, _d) = test_services();
    let (alice, _) = test_login(&s.users, "alice", PASSWORD).await;
    let (bob, _) = test_login(&s.users, "bob", PASSWORD).await;
    s.dehydrated
        .put(&alice.user_id, put_request(&alice.user_id, "DEHYD1", "one"))
        .await
        .unwrap();
    send_to(&s, &bob, &alice.user_id, "DEHYD1", "t1", 1).await;
    s.dehydrated
        .put(&alice.user_id, put_request(&alice.user_id, "DEHYD2", "two"))
        .await
        .unwrap();

    let (id, data) = s.dehydrated.get(&alice.user_id).await.unwrap();
    assert_eq!(id, "DEHYD2");
    let data: Value = data.deserialize_as_unchecked().unwrap();
    assert_eq!(data["device_pickle"], "two");
    let devices = query(&s, &bob, &alice.user_id).await;
    assert!(!devices.contains_key(&OwnedDeviceId::from("DEHYD1")));
    assert!(devices.contains_key(&OwnedDeviceId::from("DEHYD2")));
    let ids: Vec<_> = s
        .users
        .list_devices(&alice.user_id)
        .await
        .unwrap()
        .into_iter()
        .map(|d| d.device_id)
        .collect();
    assert!(!ids.contains(&"DEHYD1".into()), "old device row deleted");
    // The old device's id no longer reads events; the new one starts empty.
    assert!(
        s.dehydrated
            .events(&alice.user_id, "DEHYD1".into(), None)
            .await
            .is_err()
    );
    let new = s
        .dehydrated
        .events(&alice.user_id, "DEHYD2".into(), None)
        .await
        .unwrap();
    assert!(new.events.is_empty());
}

#[tokio::test]
async fn delete_removes_the_device() {
    let (s, _d) = test_services();
    let (alice, _) = test_login(&s.users, "alice", PASSWORD).await;
    let (bob, _) = test_login(&s.users, "bob", PASSWORD).await;
    s.dehydrated
        .put(&alice.user_id, put_request(&alice.user_id, "DEHYD1", "one"))
        .await
        .unwrap();
    let deleted = s.dehydrated.delete(&alice.user_id).await.unwrap();
    assert_eq!(deleted, "DEHYD1");
    let err = s.dehydrated.get(&alice.user_id).await.unwrap_err();
    assert_eq!(err.kind(), Some(&ErrorKind::NotFound));
    assert!(
        !query(&s, &bob, &alice.user_id)
            .await
            .contains_key(&OwnedDeviceId::from("DEHYD1"))
    );
    assert!(
        s.users
            .get_device(&alice.user_id, "DEHYD1".into())
            .await
            .is_err()
    );
    let err = s.dehydrated.delete(&alice.user_id).await.unwrap_err();
    assert_eq!(err.kind(), Some(&ErrorKind::NotFound));
}
