//! Property tests (proptest) on what other servers send us: canonical JSON, PDUs and the X-Matrix
//! header. Nothing may panic on any input, and what we sign must round-trip through what we
//! parse: canonical forms, event ids and request signatures.

use std::sync::OnceLock;

use base64::Engine;
use base64::engine::general_purpose::STANDARD_NO_PAD;
use proptest::prelude::*;
use ruma::api::federation::authentication::{XMatrix, XMatrixSigningInput};
use ruma::canonical_json::CanonicalJsonValue;
use ruma::events::StateEventType;
use ruma::serde::Base64;
use ruma::signatures::{Ed25519KeyPair, PublicKeyMap};
use ruma::{OwnedServerName, RoomId, RoomVersionId, UserId};
use serde_json::Value;
use serde_json::value::RawValue;

use super::pdu::parse_pdu;
use crate::service::rooms::pdu::Pdu;
use crate::service::rooms::state::RoomState;
use crate::service::rooms::timeline::build::{EventSpec, build_event};
use crate::service::signing_key::ServerKeys;

/// Arbitrary JSON: integers in canonical JSON's range, any strings and keys, nested.
fn json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        (-(1i64 << 53) + 1..(1i64 << 53)).prop_map(Value::from),
        any::<String>().prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(any::<String>(), inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A server name: a DNS name, optionally with a port.
fn server_name() -> impl Strategy<Value = OwnedServerName> {
    (
        "[a-z][a-z0-9]{0,8}(\\.[a-z][a-z0-9]{0,8}){1,3}",
        prop::option::of(1u16..),
    )
        .prop_map(|(h, p)| match p {
            Some(p) => format!("{h}:{p}"),
            None => h,
        })
        .prop_map(|s| s.try_into().expect("a valid server name"))
}

fn keys() -> &'static ServerKeys {
    static KEYS: OnceLock<(tempfile::TempDir, ServerKeys)> = OnceLock::new();
    &KEYS
        .get_or_init(|| {
            let dir = tempfile::tempdir().unwrap();
            let keys = ServerKeys::load_or_generate(dir.path()).unwrap();
            (dir, keys)
        })
        .1
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Canonical JSON: parsing our canonical form gives the same value, the form is stable, and
    /// the policy crate's canonical form (federation list signatures) is ruma's.
    #[test]
    fn canonical_json_round_trips_and_agrees_with_the_policy_crate(v in json()) {
        let canon = CanonicalJsonValue::try_from(v.clone()).expect("in range");
        let text = canon.to_string();
        let back: CanonicalJsonValue = serde_json::from_str(&text).unwrap();
        prop_assert_eq!(&back, &canon);
        prop_assert_eq!(back.to_string(), text.clone());
        prop_assert_eq!(serde_json::from_str::<Value>(&text).unwrap(), v.clone());
        prop_assert_eq!(handover_policy::federation::canonical_json(&v).unwrap(), text);
    }

    /// Any JSON a peer sends as a PDU is refused or parsed, never a panic.
    #[test]
    fn pdu_parsing_never_panics(v in json(), room in "![a-zA-Z0-9]{1,20}(:[a-z.]{1,10})?") {
        let raw = RawValue::from_string(v.to_string()).unwrap();
        for version in [RoomVersionId::V10, RoomVersionId::V11, RoomVersionId::V12] {
            let rules = version.rules().unwrap();
            if let Ok((id, obj)) = parse_pdu(&raw, &rules)
                && let Ok(room) = RoomId::parse(&room)
            {
                let _ = Pdu::from_canonical(id, &room, &obj);
            }
        }
        // The shape of a PDU with arbitrary field values, where the parser has more to do.
        let shaped = serde_json::json!({
            "type": v, "content": v, "sender": v, "room_id": v, "depth": v, "auth_events": [v],
            "prev_events": v, "origin_server_ts": v, "hashes": {"sha256": v}, "signatures": v,
            "state_key": v, "redacts": v, "unsigned": v,
        });
        let raw = RawValue::from_string(shaped.to_string()).unwrap();
        let _ = parse_pdu(&raw, &RoomVersionId::V12.rules().unwrap());
    }

    /// An event we build and sign parses back to the same id and the same canonical JSON.
    #[test]
    fn a_signed_event_round_trips_through_pdu_parsing(
        content in prop::collection::btree_map("[a-z_.]{1,12}", json(), 0..5),
        local in "[a-z0-9._=-]{1,20}",
    ) {
        let sender = UserId::parse(format!("@{local}:localhost")).unwrap();
        let state = RoomState::new(RoomId::new_v1("localhost".try_into().unwrap()), RoomVersionId::V12).unwrap();
        let spec = EventSpec::state(
            StateEventType::RoomCreate,
            "",
            Value::Object(content.into_iter().chain([("room_version".to_owned(), Value::from("12"))]).collect()),
        );
        // Content the auth rules refuse (e.g. a malformed additional_creators) is refused, not a panic.
        let Ok(built) = build_event(&state, None, &sender, &spec, keys(), "localhost") else {
            return Ok(());
        };
        let raw = RawValue::from_string(built.json.clone()).unwrap();
        let (id, obj) = parse_pdu(&raw, &RoomVersionId::V12.rules().unwrap()).unwrap();
        prop_assert_eq!(&id, &built.pdu.event_id);
        prop_assert_eq!(CanonicalJsonValue::Object(obj).to_string(), {
            let mut v: Value = serde_json::from_str(&built.json).unwrap();
            v.as_object_mut().unwrap().remove("unsigned");
            CanonicalJsonValue::try_from(v).unwrap().to_string()
        });
    }

    /// Any Authorization header is refused or parsed, never a panic.
    #[test]
    fn x_matrix_parsing_never_panics(s in any::<String>(), fields in prop::collection::vec(("[a-z]{1,12}", any::<String>()), 0..6)) {
        let _ = XMatrix::parse(&s);
        let joined: Vec<String> = fields.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
        let _ = XMatrix::parse(format!("X-Matrix {}", joined.join(",")));
        if let Ok(value) = http::HeaderValue::from_str(&format!("X-Matrix {s}")) {
            let mut headers = http::HeaderMap::new();
            headers.insert(http::header::AUTHORIZATION, value);
            let _ = XMatrix::extract_from_http_headers(&headers);
        }
    }

    /// A request signed with X-Matrix: its header parses back, verifies with the origin's key,
    /// and fails to verify once the body, the path or the destination changes.
    #[test]
    fn a_signed_request_verifies_and_any_change_breaks_it(
        origin in server_name(),
        destination in server_name(),
        path in "/_matrix/federation/v1/[a-z_/]{1,30}",
        body in prop::option::of(json()),
        other in server_name(),
    ) {
        let pair = Ed25519KeyPair::from_der(&Ed25519KeyPair::generate(), "k1".into()).unwrap();
        let bytes = body.as_ref().map(|b| b.to_string().into_bytes()).unwrap_or_default();
        let request = |p: &str, b: Vec<u8>| http::Request::builder().method("PUT").uri(p).body(b).unwrap();
        let req = request(&path, bytes.clone());
        let x = XMatrix::sign_http_request(&req, XMatrixSigningInput::new(origin.clone(), destination.clone(), &pair)).unwrap();
        let header = x.to_string();
        let parsed = XMatrix::parse(&header).unwrap();
        prop_assert_eq!(&parsed.origin, &origin);
        let key = Base64::new(pair.public_key().to_vec());
        let map: PublicKeyMap = [(origin.to_string(), [(parsed.key.to_string(), key)].into_iter().collect())].into_iter().collect();
        prop_assert!(parsed.verify_http_request(&req, &destination, &map).is_ok());
        let changed = request(&format!("{path}x"), bytes.clone());
        prop_assert!(parsed.verify_http_request(&changed, &destination, &map).is_err());
        if other != destination {
            prop_assert!(parsed.verify_http_request(&req, &other, &map).is_err());
        }
        if body.is_some() {
            let tampered = request(&path, serde_json::json!({"tampered": STANDARD_NO_PAD.encode(&bytes)}).to_string().into_bytes());
            prop_assert!(parsed.verify_http_request(&tampered, &destination, &map).is_err());
        }
    }
}
