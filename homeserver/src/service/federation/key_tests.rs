//! Which keys check an event's signature: the key that signed it, valid at its
//! `origin_server_ts`; a key id we do not hold is fetched even while another key is cached, at
//! a bounded rate per server.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::routing::get;
use ruma::signatures::{Ed25519KeyPair, hash_and_sign_event, reference_hash};
use ruma::{CanonicalJsonObject, EventId, OwnedServerName, RoomVersionId};
use serde_json::json;

use super::server_keys;
use super::test_support::{TestCa, serve_tls, services_on};
use crate::store::now_ms;
use crate::store::server_keys::ServerKeyStore;

fn keypair(version: &str) -> Ed25519KeyPair {
    Ed25519KeyPair::from_der(&Ed25519KeyPair::generate(), version.into()).unwrap()
}

/// A server on 127.0.0.1 publishing `kp` as its key; counts the fetches.
fn key_server(ca: &TestCa, kp: Ed25519KeyPair) -> (OwnedServerName, Arc<AtomicUsize>) {
    let hits = Arc::new(AtomicUsize::new(0));
    let name_slot: Arc<std::sync::OnceLock<OwnedServerName>> = Arc::default();
    let (h, n, kp) = (hits.clone(), name_slot.clone(), Arc::new(kp));
    let app = axum::Router::new().route(
        "/_matrix/key/v2/server",
        get(move || {
            let (h, n, kp) = (h.clone(), n.clone(), kp.clone());
            async move {
                h.fetch_add(1, Ordering::SeqCst);
                let raw = server_keys::own_response(n.get().unwrap(), &kp, now_ms()).unwrap();
                (
                    [(http::header::CONTENT_TYPE, "application/json")],
                    raw.json().get().to_owned(),
                )
            }
        }),
    );
    let addr = serve_tls(app, &ca.leaf("keys", "IP:127.0.0.1"));
    let name = OwnedServerName::try_from(addr.to_string()).unwrap();
    name_slot.set(name.clone()).unwrap();
    (name, hits)
}

/// An event of `origin` signed with `kp`, stamped `ts`.
fn event(
    origin: &OwnedServerName,
    kp: &Ed25519KeyPair,
    ts: i64,
) -> (ruma::OwnedEventId, CanonicalJsonObject) {
    let rules = RoomVersionId::V12.rules().unwrap();
    let mut obj: CanonicalJsonObject = serde_json::from_value(json!({
        "room_id": "!r:localhost", "sender": format!("@u:{origin}"), "type": "m.room.message",
        "content": {"body": "x"}, "auth_events": [], "prev_events": [], "depth": 3,
        "origin_server_ts": ts,
    }))
    .unwrap();
    hash_and_sign_event(origin.as_str(), kp, &mut obj, &rules.redaction).unwrap();
    let id = EventId::new_v2_or_v3(&reference_hash(&obj, &rules).unwrap()).unwrap();
    (id, obj)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signing_keys_are_matched_by_id_and_time_and_refetched_at_a_bounded_rate() {
    let ca = TestCa::new();
    let (k1, k3) = (keypair("k1"), keypair("k3"));
    // k2: the server's new key (the same pair on both sides).
    let k2_der = Ed25519KeyPair::generate();
    let k2 = Ed25519KeyPair::from_der(&k2_der, "k2".into()).unwrap();
    let served = Ed25519KeyPair::from_der(&k2_der, "k2".into()).unwrap();
    let (origin, hits) = key_server(&ca, served);
    let dir = tempfile::tempdir().unwrap();
    let (s, store) = services_on(dir.path(), &ca.ca, &[origin.as_str()]);
    let rules = RoomVersionId::V12.rules().unwrap();
    // k1 cached (valid for a day), as after an earlier fetch.
    let raw = server_keys::own_response(&origin, &k1, now_ms()).unwrap();
    let v = server_keys::verify_response(&origin, raw.json().get(), now_ms()).unwrap();
    store
        .save_server_keys(origin.as_str(), &v.keys, &v.response, now_ms())
        .unwrap();
    let check = |(id, obj)| s.federation.check_pdu(id, obj, &rules);

    check(event(&origin, &k1, now_ms())).await.unwrap();
    assert_eq!(
        hits.load(Ordering::SeqCst),
        0,
        "a cached, valid key is not fetched"
    );

    // Signed with a key id we do not hold, while k1 is cached and valid: fetched.
    check(event(&origin, &k2, now_ms())).await.unwrap();
    assert_eq!(hits.load(Ordering::SeqCst), 1);

    // Another unknown key at once: no second fetch within the interval (bounded rate).
    assert!(check(event(&origin, &k3, now_ms())).await.is_err());
    assert_eq!(hits.load(Ordering::SeqCst), 1);

    // Stamped after the key's valid_until_ts: that key does not check it.
    let e = check(event(&origin, &k2, now_ms() + 30 * 86_400_000))
        .await
        .unwrap_err();
    assert!(e.message().contains("valid at the event's time"), "{e:?}");
}
