//! E2EE keys across two in-process servers over real TLS: a client of A asks for the keys of a
//! user on B (/keys/query, /keys/claim); A asks B over federation (signed, gated), B answers
//! from its own users' keys. A server off A's list and a listed server that never answers end
//! up in `failures`, and the answer still comes back within the client's timeout.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::federation::{bind, listing, make_certs, start};
use handover::service::Services;
use handover::service::users::Session;
use ruma::api::client::keys::{claim_keys, get_keys, upload_keys, upload_signing_keys};
use ruma::serde::Raw;
use ruma::serde::{Base64, base64::Standard};
use ruma::signatures::Ed25519KeyPair;
use ruma::{OneTimeKeyAlgorithm, OwnedServerName, OwnedUserId};
use serde_json::{Value, json};

fn raw<T>(v: Value) -> Raw<T> {
    Raw::new(&v).unwrap().cast_unchecked()
}

async fn login(s: &Services, name: &str) -> Session {
    let user = s.users.create_user(name, None, false, false).await.unwrap();
    let new = s.users.create_session(&user, None, None).await.unwrap();
    s.users.authenticate(&new.access_token, None).await.unwrap()
}

/// A listener that accepts connections and never answers.
async fn black_hole() -> (OwnedServerName, Arc<AtomicUsize>) {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let name = OwnedServerName::try_from(l.local_addr().unwrap().to_string()).unwrap();
    let count = Arc::new(AtomicUsize::new(0));
    let c = count.clone();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((sock, _)) = l.accept().await {
            c.fetch_add(1, Ordering::SeqCst);
            held.push(sock);
        }
    });
    (name, count)
}

/// A fresh ed25519 key pair whose version is its public key (as cross-signing key ids are).
fn cross_signing_pair() -> (Ed25519KeyPair, String) {
    let der = Ed25519KeyPair::generate();
    let tmp = Ed25519KeyPair::from_der(&der, String::new()).unwrap();
    let public = Base64::<Standard>::new(tmp.public_key().to_vec()).encode();
    (
        Ed25519KeyPair::from_der(&der, public.clone()).unwrap(),
        public,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_of_remote_users_are_fetched_from_their_server() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let certs_dir = tempfile::tempdir().unwrap();
    let certs = make_certs(certs_dir.path());
    let (la, a_name) = bind();
    let (lb, b_name) = bind();
    let (silent, silent_hits) = black_hole().await;
    let list = listing(&[&a_name, &b_name, &silent]);
    let a = start(la, a_name.clone(), &certs, &list).await;
    let b = start(lb, b_name.clone(), &certs, &list).await;

    // Bob on B: device keys, a one-time key, cross-signing keys.
    let bob = login(&b.services, "bob").await;
    let (u, d) = (bob.user_id.as_str(), bob.device_id.as_str());
    let mut up = upload_keys::v3::Request::new();
    up.device_keys = Some(raw(json!({
        "user_id": u, "device_id": d,
        "algorithms": ["m.olm.v1.curve25519-aes-sha2", "m.megolm.v1.aes-sha2"],
        "keys": { format!("curve25519:{d}"): "bob_curve", format!("ed25519:{d}"): "bob_ed" },
        "signatures": { u: { format!("ed25519:{d}"): "sig" } }
    })));
    up.one_time_keys.insert(
        "signed_curve25519:OTK1".try_into().unwrap(),
        raw(json!({ "key": "bobotk", "signatures": { u: { format!("ed25519:{d}"): "sig" } } })),
    );
    b.services.e2ee.upload_keys(&bob, up).await.unwrap();
    // Real cross-signing keys: the self- and user-signing keys must carry the master's signature.
    let (master, master_pub) = cross_signing_pair();
    let xs_key = |usage: &str, public: &str| {
        let v = json!({ "user_id": u, "usage": [usage], "keys": { format!("ed25519:{public}"): public } });
        let mut obj: ruma::CanonicalJsonObject = serde_json::from_value(v).unwrap();
        if usage != "master" {
            ruma::signatures::sign_json(u, &master, &mut obj).unwrap();
        }
        raw(serde_json::to_value(obj).unwrap())
    };
    let mut xs = upload_signing_keys::v3::Request::new();
    xs.master_key = Some(xs_key("master", &master_pub));
    xs.self_signing_key = Some(xs_key("self_signing", &cross_signing_pair().1));
    xs.user_signing_key = Some(xs_key("user_signing", &cross_signing_pair().1));
    b.services.e2ee.upload_signing_keys(&bob, xs).await.unwrap();

    // Alice on A asks for Bob's keys, and for users of an unlisted and a silent server.
    let alice = login(&a.services, "alice").await;
    let unlisted: OwnedUserId = "@zed:127.0.0.1:1".try_into().unwrap();
    let quiet: OwnedUserId = format!("@q:{silent}").try_into().unwrap();
    let mut q = get_keys::v3::Request::new();
    q.timeout = Some(Duration::from_secs(2));
    q.device_keys.insert(bob.user_id.clone(), vec![]);
    q.device_keys.insert(unlisted.clone(), vec![]);
    q.device_keys.insert(quiet.clone(), vec![]);
    let started = Instant::now();
    let res = a.services.e2ee.query_keys(&alice, q).await.unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "the timeout held"
    );
    let dk: Value = res.device_keys[&bob.user_id][&bob.device_id]
        .deserialize_as_unchecked()
        .unwrap();
    assert_eq!(dk["keys"][format!("curve25519:{d}")], "bob_curve");
    assert!(res.master_keys.contains_key(&bob.user_id));
    assert!(res.self_signing_keys.contains_key(&bob.user_id));
    assert!(res.user_signing_keys.is_empty(), "never leaves B");
    assert_eq!(res.failures["127.0.0.1:1"]["status"], 403);
    assert_eq!(res.failures[silent.as_str()]["status"], 504);
    assert!(silent_hits.load(Ordering::SeqCst) >= 1);
    assert!(!res.failures.contains_key(b_name.as_str()));

    // Claim Bob's one-time key across the servers; it is used up on B.
    let wanted = BTreeMap::from([(
        bob.user_id.clone(),
        BTreeMap::from([(bob.device_id.clone(), OneTimeKeyAlgorithm::SignedCurve25519)]),
    )]);
    let res = a
        .services
        .e2ee
        .claim_keys(claim_keys::v3::Request::new(wanted.clone()))
        .await
        .unwrap();
    assert!(res.failures.is_empty(), "{:?}", res.failures);
    let key: Value = res.one_time_keys[&bob.user_id][&bob.device_id]
        .values()
        .next()
        .unwrap()
        .deserialize_as_unchecked()
        .unwrap();
    assert_eq!(key["key"], "bobotk");
    let again = a
        .services
        .e2ee
        .claim_keys(claim_keys::v3::Request::new(wanted))
        .await
        .unwrap();
    assert!(again.one_time_keys.is_empty());
}
