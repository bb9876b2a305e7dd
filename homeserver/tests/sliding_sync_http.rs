//! Sliding sync (MSC4186) over real HTTP: the advertisement matrix-sdk looks for, the unstable
//! path, JSON in and out, and `M_UNKNOWN_POS`. (Behaviour is tested beside the service.)

use std::net::SocketAddr;
use std::sync::Arc;

use handover::config::Config;
use handover::service::Services;
use handover::store::sqlite::SqliteStore;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const PATH: &str = "/_matrix/client/unstable/org.matrix.simplified_msc3575/sync";

struct Server {
    addr: SocketAddr,
    token: String,
    _dir: tempfile::TempDir,
}

async fn start() -> Server {
    let dir = tempfile::tempdir().unwrap();
    let config = Config {
        data_dir: dir.path().to_owned(),
        ..Config::default()
    };
    let store = SqliteStore::open(&dir.path().join("t.db"), 2).unwrap();
    let services = Services::build(config, store, Arc::new(handover_policy::AllowAll)).unwrap();
    let alice = services
        .users
        .create_user("alice", None, false, true)
        .await
        .unwrap();
    let token = services
        .users
        .create_session(&alice, None, None)
        .await
        .unwrap()
        .access_token;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = handover::server::app(services).into_make_service_with_connect_info::<SocketAddr>();
    tokio::spawn(async move { axum::serve(listener, app).await });
    Server {
        addr,
        token,
        _dir: dir,
    }
}

impl Server {
    /// One HTTP/1.0 request; returns the status and the JSON body.
    async fn call(
        &self,
        method: &str,
        path: &str,
        auth: bool,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut req = format!("{method} {path} HTTP/1.0\r\nHost: localhost\r\n");
        if auth {
            req += &format!("Authorization: Bearer {}\r\n", self.token);
        }
        let bytes = body.map(|b| b.to_string()).unwrap_or_default();
        req += &format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{bytes}",
            bytes.len()
        );
        let mut s = tokio::net::TcpStream::connect(self.addr).await.unwrap();
        s.write_all(req.as_bytes()).await.unwrap();
        let mut raw = vec![];
        s.read_to_end(&mut raw).await.unwrap();
        let split = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
        let head = String::from_utf8_lossy(&raw[..split]).to_string();
        let status = head.split(' ').nth(1).unwrap().parse().unwrap();
        (
            status,
            serde_json::from_slice(&raw[split + 4..]).unwrap_or(Value::Null),
        )
    }
}

#[tokio::test]
async fn versions_advertise_simplified_sliding_sync() {
    let srv = start().await;
    let (status, body) = srv
        .call("GET", "/_matrix/client/versions", false, None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        body["unstable_features"]["org.matrix.simplified_msc3575"],
        true
    );
}

#[tokio::test]
async fn sync_over_http_then_unknown_pos() {
    let srv = start().await;
    let (status, _) = srv.call("POST", PATH, true, None).await;
    assert_eq!(status, 200, "an empty body is a valid request");
    let (status, _) = srv.call("POST", PATH, false, Some(json!({}))).await;
    assert_eq!(status, 401);
    let (status, room) = srv
        .call(
            "POST",
            "/_matrix/client/v3/createRoom",
            true,
            Some(json!({ "name": "Ward 7" })),
        )
        .await;
    assert_eq!(status, 200);
    let room_id = room["room_id"].as_str().unwrap().to_owned();
    let req = json!({
        "conn_id": "room-list",
        "lists": { "all": {
            "ranges": [[0, 10]],
            "timeline_limit": 1,
            "required_state": [["m.room.name", ""], ["m.room.member", "$LAZY"]]
        } },
        "extensions": { "to_device": { "enabled": true }, "e2ee": { "enabled": true } }
    });
    let (status, body) = srv.call("POST", PATH, true, Some(req.clone())).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["lists"]["all"]["count"], 1);
    assert_eq!(body["rooms"][&room_id]["name"], "Ward 7");
    assert_eq!(body["rooms"][&room_id]["initial"], true);
    let pos = body["pos"].as_str().unwrap();
    let (status, body) = srv
        .call(
            "POST",
            &format!("{PATH}?pos={pos}&timeout=0"),
            true,
            Some(req.clone()),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert!(body.get("rooms").is_none(), "nothing new: {body}");
    let (status, body) = srv
        .call("POST", &format!("{PATH}?pos=nonsense"), true, Some(req))
        .await;
    assert_eq!(status, 400);
    assert_eq!(body["errcode"], "M_UNKNOWN_POS");
}
