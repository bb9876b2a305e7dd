//! Handler tests for the federation router: our server on loopback (plain HTTP; TLS is covered
//! by tests/federation_http.rs) and signed requests from a listed peer whose key is already
//! cached, so nothing is fetched from anywhere.

use std::net::SocketAddr;
use std::sync::Arc;

use handover_policy::{FederationGate, LiveFederationList};
use ruma::api::federation::authentication::{XMatrix, XMatrixSigningInput};
use ruma::signatures::Ed25519KeyPair;
use ruma::{OwnedServerName, ServerName};
use serde_json::Value;

use crate::config::Config;
use crate::service::Services;
use crate::store::now_ms;
use crate::store::server_keys::ServerKeyStore;
use crate::store::sqlite::SqliteStore;

/// The listed peer: the discard port, so anything our server sends it is refused at once.
pub const PEER: &str = "127.0.0.1:9";

pub struct Peer {
    pub addr: SocketAddr,
    pub name: OwnedServerName,
    kp: Ed25519KeyPair,
    pub services: Services,
    pub store: SqliteStore,
    _dir: tempfile::TempDir,
}

pub struct Reply {
    pub status: u16,
    pub headers: http::HeaderMap,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
}

/// Our server (config adjusted by `edit`) with `PEER` on its federation list.
pub async fn start(edit: impl FnOnce(&mut Config)) -> Peer {
    let doc =
        format!(r#"{{"serial":1,"organisations":[{{"ods_code":"RRK","servers":["{PEER}"]}}]}}"#);
    let gate = FederationGate {
        list: Some(LiveFederationList::load(doc.as_bytes(), None, None).unwrap()),
    };
    let (store, dir) = crate::store::sqlite::test_store();
    let mut config = Config {
        data_dir: dir.path().to_owned(),
        ..Config::default()
    };
    edit(&mut config);
    let services = Services::build(config, store.clone(), Arc::new(gate)).unwrap();
    let name = OwnedServerName::try_from(PEER).unwrap();
    let kp = Ed25519KeyPair::from_der(&Ed25519KeyPair::generate(), "k1".into()).unwrap();
    let raw = crate::service::federation::server_keys::own_response(&name, &kp, now_ms()).unwrap();
    let v =
        crate::service::federation::server_keys::verify_response(&name, raw.json().get(), now_ms())
            .unwrap();
    store
        .save_server_keys(name.as_str(), &v.keys, &v.response, now_ms())
        .unwrap();
    let app = crate::api::federation_router()
        .with_state(services.clone())
        .into_make_service_with_connect_info::<SocketAddr>();
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(l, app).await });
    Peer {
        addr,
        name,
        kp,
        services,
        store,
        _dir: dir,
    }
}

impl Peer {
    /// `method path` signed by the peer (or, with `as_server`, claiming to be another one).
    pub async fn call_as(
        &self,
        as_server: &ServerName,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> Reply {
        let bytes = body.map(|b| b.to_string().into_bytes()).unwrap_or_default();
        let mut req = http::Request::builder()
            .method(method)
            .uri(format!("http://{}{path}", self.addr))
            .header("content-type", "application/json")
            .body(bytes)
            .unwrap();
        let x = XMatrix::sign_http_request(
            &req,
            XMatrixSigningInput::new(
                as_server.to_owned(),
                OwnedServerName::try_from("localhost").unwrap(),
                &self.kp,
            ),
        )
        .unwrap();
        req.headers_mut()
            .insert(http::header::AUTHORIZATION, (&x).into());
        let http = reqwest::Client::builder().no_proxy().build().unwrap();
        let res = http
            .execute(reqwest::Request::try_from(req).unwrap())
            .await
            .unwrap();
        let status = res.status().as_u16();
        let headers = res.headers().clone();
        let body = res.bytes().await.unwrap().to_vec();
        Reply {
            status,
            headers,
            body,
        }
    }

    pub async fn call(&self, method: &str, path: &str, body: Option<Value>) -> Reply {
        self.call_as(&self.name.clone(), method, path, body).await
    }

    /// An unsigned request.
    pub async fn call_unsigned(&self, method: &str, path: &str) -> u16 {
        let http = reqwest::Client::builder().no_proxy().build().unwrap();
        let m = http::Method::from_bytes(method.as_bytes()).unwrap();
        http.request(m, format!("http://{}{path}", self.addr))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    }
}

/// A public room of `creator` that `PEER`'s user `@bob` has joined, standing in for a join over
/// federation (the membership is what the rules read).
pub async fn room_with_peer(s: &Services, creator: &ruma::UserId, name: &str) -> ruma::OwnedRoomId {
    let room = crate::service::test_util::room(s, creator, name, true).await;
    s.rooms.join(&room, &peer_user(), None).await.unwrap();
    room
}

pub fn peer_user() -> ruma::OwnedUserId {
    format!("@bob:{PEER}").try_into().unwrap()
}

/// Percent-encodes a query value.
pub fn q(v: &str) -> String {
    v.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
