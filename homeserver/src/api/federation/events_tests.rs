//! One X-Matrix-signed request per room read endpoint against the real federation router,
//! from a listed origin (`a.nhs.uk:8448`) with a member in the room, plus the refusals: no
//! signature (401), a listed server without a member (403), an unknown room (404).

use std::net::SocketAddr;
use std::sync::Arc;

use handover_policy::{FederationGate, LiveFederationList};
use ruma::RoomVersionId;
use ruma::api::federation::authentication::{XMatrix, XMatrixSigningInput};
use ruma::signatures::Ed25519KeyPair;
use ruma::{OwnedServerName, ServerName};
use serde_json::{Value, json};

use super::*;
use crate::service::peer::room_read::test_fixture::{Fx, REMOTE, remote_user};
use crate::service::test_util::text;
use crate::store::now_ms;
use crate::store::server_keys::ServerKeyStore;

const LONER: &str = "b.nhs.uk:8448";

struct Peer {
    http: reqwest::Client,
    addr: SocketAddr,
    keys: Vec<(String, Ed25519KeyPair)>,
}

/// Saves a fresh key for `server` in the key cache, as if fetched from it.
fn trust(fx: &Fx, server: &str) -> Ed25519KeyPair {
    let name = <&ServerName>::try_from(server).unwrap();
    let kp = Ed25519KeyPair::from_der(&Ed25519KeyPair::generate(), "k1".into()).unwrap();
    let raw = crate::service::federation::server_keys::own_response(name, &kp, now_ms()).unwrap();
    let v =
        crate::service::federation::server_keys::verify_response(name, raw.json().get(), now_ms())
            .unwrap();
    fx.store
        .save_server_keys(server, &v.keys, &v.response, now_ms())
        .unwrap();
    kp
}

impl Peer {
    async fn start(fx: &Fx) -> Self {
        let keys = vec![
            (REMOTE.to_owned(), trust(fx, REMOTE)),
            (LONER.to_owned(), trust(fx, LONER)),
        ];
        let app = routes(Router::new())
            .with_state(fx.s.clone())
            .into_make_service_with_connect_info::<SocketAddr>();
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(l, app).await });
        let http = reqwest::Client::builder().no_proxy().build().unwrap();
        Self { http, addr, keys }
    }

    /// Sends a request signed by `from` (None: unsigned); returns (status, JSON body).
    async fn call(
        &self,
        from: Option<&str>,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let bytes = body.map(|b| b.to_string().into_bytes()).unwrap_or_default();
        let mut req = self.http.request(
            method.parse().unwrap(),
            format!("http://{}{path}", self.addr),
        );
        if let Some(from) = from {
            let kp = &self.keys.iter().find(|(s, _)| s == from).unwrap().1;
            let signed = http::Request::builder()
                .method(method)
                .uri(path)
                .body(bytes.clone())
                .unwrap();
            let x = XMatrix::sign_http_request(
                &signed,
                XMatrixSigningInput::new(
                    OwnedServerName::try_from(from).unwrap(),
                    OwnedServerName::try_from("localhost").unwrap(),
                    kp,
                ),
            )
            .unwrap();
            req = req.header("authorization", x.to_string());
        }
        if !bytes.is_empty() {
            req = req.header("content-type", "application/json").body(bytes);
        }
        let res = req.send().await.unwrap();
        let status = res.status().as_u16();
        (status, res.json().await.unwrap_or(Value::Null))
    }
}

/// Percent-encodes the sigils and separators of Matrix ids for a path or query.
fn enc(id: &str) -> String {
    id.replace('$', "%24")
        .replace('!', "%21")
        .replace(':', "%3A")
}

#[tokio::test]
async fn every_room_read_endpoint_answers_a_signed_request() {
    let list = format!(
        r#"{{"serial":1,"organisations":[{{"ods_code":"RRK","servers":["{REMOTE}","{LONER}"]}}]}}"#
    );
    let gate = FederationGate {
        list: Some(LiveFederationList::load(list.as_bytes(), None, None).unwrap()),
    };
    let (s, store, dir) = crate::service::test_services_with_policy(Arc::new(gate));
    let fx = Fx::with(s, store, dir, RoomVersionId::V12).await;
    fx.remote_join(&remote_user("bob")).await;
    let first = text(&fx.s, &fx.room, &fx.alice, "first").await;
    let second = text(&fx.s, &fx.room, &fx.alice, "second").await;
    let third = text(&fx.s, &fx.room, &fx.alice, "third").await;
    let peer = Peer::start(&fx).await;
    let (room, a) = (enc(fx.room.as_str()), Some(REMOTE));
    let v1 = "/_matrix/federation/v1";

    // /event: the stored PDU, from us.
    let path = format!("{v1}/event/{}", enc(second.as_str()));
    let (st, body) = peer.call(a, "GET", &path, None).await;
    assert_eq!(st, 200, "{body}");
    assert_eq!(body["origin"], "localhost");
    assert_eq!(body["pdus"][0], fx.stored(&second));
    assert_eq!(peer.call(None, "GET", &path, None).await.0, 401);
    let (st, body) = peer.call(Some(LONER), "GET", &path, None).await;
    assert_eq!((st, body["errcode"].as_str()), (403, Some("M_FORBIDDEN")));

    // /state and /state_ids at `second`: the state before it, with its auth chain.
    let q = format!("?event_id={}", enc(second.as_str()));
    let (st, body) = peer
        .call(a, "GET", &format!("{v1}/state/{room}{q}"), None)
        .await;
    assert_eq!(st, 200, "{body}");
    let (st, ids) = peer
        .call(a, "GET", &format!("{v1}/state_ids/{room}{q}"), None)
        .await;
    assert_eq!(st, 200, "{ids}");
    let n = ids["pdu_ids"].as_array().unwrap().len();
    assert!(
        n >= 5,
        "create, members, power levels, join rules, ...: {ids}"
    );
    assert_eq!(body["pdus"].as_array().unwrap().len(), n);
    assert_eq!(
        body["auth_chain"].as_array().unwrap().len(),
        ids["auth_chain_ids"].as_array().unwrap().len()
    );
    let unknown = format!("{v1}/state_ids/{}{q}", enc("!unknown:localhost"));
    let (st, body) = peer.call(a, "GET", &unknown, None).await;
    assert_eq!((st, body["errcode"].as_str()), (404, Some("M_NOT_FOUND")));

    // /event_auth.
    let path = format!("{v1}/event_auth/{room}/{}", enc(third.as_str()));
    let (st, body) = peer.call(a, "GET", &path, None).await;
    assert_eq!(st, 200, "{body}");
    assert!(!body["auth_chain"].as_array().unwrap().is_empty());

    // /backfill: newest first, including `v`.
    let path = format!("{v1}/backfill/{room}?v={}&limit=2", enc(third.as_str()));
    let (st, body) = peer.call(a, "GET", &path, None).await;
    assert_eq!(st, 200, "{body}");
    assert_eq!(body["pdus"], json!([fx.stored(&third), fx.stored(&second)]));

    // /get_missing_events: between earliest and latest.
    let path = format!("{v1}/get_missing_events/{room}");
    let req = json!({ "earliest_events": [first], "latest_events": [third], "limit": 10 });
    let (st, body) = peer.call(a, "POST", &path, Some(req)).await;
    assert_eq!(st, 200, "{body}");
    assert_eq!(body["events"], json!([fx.stored(&second)]));

    // /timestamp_to_event.
    let path = format!(
        "{v1}/timestamp_to_event/{room}?ts={}&dir=b",
        now_ms() + 60_000
    );
    let (st, body) = peer.call(a, "GET", &path, None).await;
    assert_eq!(st, 200, "{body}");
    assert_eq!(body["event_id"], third.as_str());
}
