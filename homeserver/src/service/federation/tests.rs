//! X-Matrix request authentication and the federation gate, on a real store.

use std::sync::Arc;

use handover_policy::{FederationGate, LiveFederationList};
use ruma::api::federation::authentication::{XMatrix, XMatrixSigningInput};
use ruma::signatures::Ed25519KeyPair;
use ruma::{OwnedServerName, ServerName};

use super::gate::ACTION_FEDERATION_DENIAL;
use super::server_keys;
use crate::error::Error;
use crate::service::Services;
use crate::store::now_ms;
use crate::store::server_keys::ServerKeyStore;
use crate::store::sqlite::SqliteStore;

/// Listed: a.nhs.uk:8448 and 127.0.0.1:9 (the discard port: nothing listens there).
fn services() -> (Services, SqliteStore, tempfile::TempDir) {
    let doc = br#"{"serial":1,"organisations":[
        {"ods_code":"RRK","servers":["a.nhs.uk:8448","127.0.0.1:9"]}]}"#;
    let gate = FederationGate {
        list: Some(LiveFederationList::load(doc, None, None).unwrap()),
    };
    crate::service::test_services_with_policy(Arc::new(gate))
}

fn keypair(version: &str) -> Ed25519KeyPair {
    Ed25519KeyPair::from_der(&Ed25519KeyPair::generate(), version.into()).unwrap()
}

/// Puts `kp` into the key cache as `origin`'s key (as a fetch would).
fn cache_key(store: &SqliteStore, origin: &ServerName, kp: &Ed25519KeyPair) {
    let raw = server_keys::own_response(origin, kp, now_ms()).unwrap();
    let v = server_keys::verify_response(origin, raw.json().get(), now_ms()).unwrap();
    store
        .save_server_keys(origin.as_str(), &v.keys, &v.response, now_ms())
        .unwrap();
}

fn signed(
    origin: &str,
    destination: &str,
    kp: &Ed25519KeyPair,
    body: &[u8],
) -> http::Request<Vec<u8>> {
    let mut req = http::Request::builder()
        .method("PUT")
        .uri("/_matrix/federation/v1/send/txn1")
        .body(body.to_vec())
        .unwrap();
    let x = XMatrix::sign_http_request(
        &req,
        XMatrixSigningInput::new(
            OwnedServerName::try_from(origin).unwrap(),
            OwnedServerName::try_from(destination).unwrap(),
            kp,
        ),
    )
    .unwrap();
    req.headers_mut()
        .insert(http::header::AUTHORIZATION, (&x).into());
    req
}

async fn auth(s: &Services, req: &http::Request<Vec<u8>>) -> Result<OwnedServerName, Error> {
    let r = req.clone();
    let (parts, body) = r.into_parts();
    let borrowed = http::Request::from_parts(parts, body.as_slice());
    s.federation.authenticate(&borrowed, None).await
}

fn status(e: &Error) -> u16 {
    match e {
        Error::Matrix { status, .. } => status.as_u16(),
        Error::Uiaa(_) => 401,
    }
}

fn errcode(e: &Error) -> String {
    match e {
        Error::Matrix { kind, .. } => kind.errcode().to_string(),
        Error::Uiaa(_) => String::new(),
    }
}

#[tokio::test]
async fn signed_request_verifies_and_tampering_fails() {
    let (s, store, _d) = services();
    let origin = <&ServerName>::try_from("a.nhs.uk:8448").unwrap();
    let kp = keypair("k1");
    cache_key(&store, origin, &kp);
    let body = br#"{"pdus":[],"edus":[]}"#;

    let req = signed("a.nhs.uk:8448", "localhost", &kp, body);
    assert_eq!(auth(&s, &req).await.unwrap(), origin);

    // Body changed after signing.
    let mut t = req.clone();
    *t.body_mut() = br#"{"pdus":[1],"edus":[]}"#.to_vec();
    let e = auth(&s, &t).await.unwrap_err();
    assert_eq!((status(&e), errcode(&e).as_str()), (401, "M_UNAUTHORIZED"));

    // Path changed after signing.
    let mut t = req.clone();
    *t.uri_mut() = "/_matrix/federation/v1/send/txn2".parse().unwrap();
    assert_eq!(status(&auth(&s, &t).await.unwrap_err()), 401);

    // Method changed after signing.
    let mut t = req.clone();
    *t.method_mut() = http::Method::POST;
    assert_eq!(status(&auth(&s, &t).await.unwrap_err()), 401);

    // Signed for another destination.
    let t = signed("a.nhs.uk:8448", "other.nhs.uk", &kp, body);
    assert_eq!(status(&auth(&s, &t).await.unwrap_err()), 401);

    // Signed by a different key under the same key id.
    let t = signed("a.nhs.uk:8448", "localhost", &keypair("k1"), body);
    assert_eq!(status(&auth(&s, &t).await.unwrap_err()), 401);

    // No header at all.
    let mut t = req.clone();
    t.headers_mut().remove(http::header::AUTHORIZATION);
    let e = auth(&s, &t).await.unwrap_err();
    assert_eq!((status(&e), errcode(&e).as_str()), (401, "M_UNAUTHORIZED"));
}

#[tokio::test]
async fn unlisted_origin_is_refused_and_audited_before_anything_else() {
    let (s, store, _d) = services();
    let kp = keypair("k1");
    // Even with its key cached, an unlisted origin gets 403 naming the rule.
    let evil = <&ServerName>::try_from("a.nhs.uk.evil.example:8448").unwrap();
    cache_key(&store, evil, &kp);
    let req = signed(evil.as_str(), "localhost", &kp, b"{}");
    let e = auth(&s, &req).await.unwrap_err();
    assert_eq!((status(&e), errcode(&e).as_str()), (403, "M_FORBIDDEN"));
    let Error::Matrix { message, .. } = &e else {
        unreachable!()
    };
    assert!(message.contains("federation_not_listed"), "{message}");

    let audit = s.audit.all().await.unwrap();
    let denial = audit
        .iter()
        .find(|r| r.action == ACTION_FEDERATION_DENIAL)
        .expect("denial audited");
    assert_eq!(denial.target.as_deref(), Some(evil.as_str()));
    assert_eq!(denial.rule.as_deref(), Some("federation_not_listed"));
    assert_eq!(denial.details["direction"], "inbound");

    // A second refusal within the minute is not audited again (flood guard).
    let _ = auth(&s, &req).await.unwrap_err();
    let n = s
        .audit
        .all()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.action == ACTION_FEDERATION_DENIAL)
        .count();
    assert_eq!(n, 1);
}

#[tokio::test]
async fn unknown_key_of_unreachable_listed_origin_is_401() {
    let (s, _store, _d) = services();
    let req = signed("127.0.0.1:9", "localhost", &keypair("k1"), b"{}");
    let e = auth(&s, &req).await.unwrap_err();
    assert_eq!(status(&e), 401, "{e:?}");
    // Asked again at once: not fetched again (throttled), still 401.
    assert_eq!(status(&auth(&s, &req).await.unwrap_err()), 401);
}

#[tokio::test]
async fn outbound_to_unlisted_destination_is_refused_before_connecting() {
    let (s, _store, _d) = services();
    let dest = <&ServerName>::try_from("127.0.0.2:9").unwrap();
    let err = s
        .federation
        .fetch_keys(dest, "key_fetch")
        .await
        .unwrap_err();
    assert!(
        matches!(err, super::client::FederationError::Denied { .. }),
        "{err}"
    );
    let audit = s.audit.all().await.unwrap();
    let d = audit
        .iter()
        .find(|r| r.action == ACTION_FEDERATION_DENIAL)
        .unwrap();
    assert_eq!(d.details["direction"], "outbound");
    assert_eq!(d.details["purpose"], "key_fetch");
}

#[tokio::test]
async fn notary_answers_for_ourselves_and_listed_servers_only() {
    let (s, store, _d) = services();
    let origin = <&ServerName>::try_from("a.nhs.uk:8448").unwrap();
    let kp = keypair("k1");
    cache_key(&store, origin, &kp);
    let got = s
        .federation
        .notary_lookup(origin, None, None)
        .await
        .unwrap()
        .expect("cached response served");
    let v: serde_json::Value = serde_json::from_str(got.json().get()).unwrap();
    assert!(v["signatures"]["a.nhs.uk:8448"].is_object());
    assert!(v["signatures"]["localhost"].is_object(), "countersigned");
    let own = <&ServerName>::try_from("localhost").unwrap();
    assert!(
        s.federation
            .notary_lookup(own, None, None)
            .await
            .unwrap()
            .is_some()
    );
    let unlisted = <&ServerName>::try_from("b.nhs.uk:8448").unwrap();
    assert!(
        s.federation
            .notary_lookup(unlisted, None, None)
            .await
            .unwrap()
            .is_none()
    );
}
