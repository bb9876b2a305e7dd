//! Shared harness for the in-process HTTP tests: a `Services`-backed server on a free loopback
//! port with one signed-in user, and raw HTTP/1.0 calls (the server closes the connection after
//! each answer, so the reply is read to the end without chunking).

#![allow(dead_code)] // each test file uses part of it

pub mod federation;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use handover::config::Config;
use handover::service::Services;
use handover::store::sqlite::SqliteStore;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

pub struct Reply {
    pub status: u16,
    pub headers: HashMap<String, String>,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
    pub fn header(&self, name: &str) -> &str {
        self.headers.get(name).map(String::as_str).unwrap_or("")
    }
    pub fn assert_error(&self, status: u16, errcode: &str) {
        assert_eq!(
            self.status,
            status,
            "{}",
            String::from_utf8_lossy(&self.body)
        );
        assert_eq!(self.json()["errcode"], errcode);
    }
}

pub struct Server {
    pub addr: SocketAddr,
    /// Access token of `@alice:localhost`.
    pub token: String,
    _dir: tempfile::TempDir,
}

/// A server with the default config and allow-all policy.
pub async fn start() -> Server {
    start_with(|_| {}).await
}

/// A server whose config `tweak` adjusts first.
pub async fn start_with(tweak: impl FnOnce(&mut Config)) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config {
        data_dir: dir.path().to_owned(),
        ..Config::default()
    };
    tweak(&mut config);
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
    /// One HTTP/1.0 request with an optional `(content type, bytes)` body.
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        auth: bool,
        body: Option<(&str, &[u8])>,
    ) -> Reply {
        let mut req = format!("{method} {path} HTTP/1.0\r\nHost: localhost\r\n");
        if auth {
            req += &format!("Authorization: Bearer {}\r\n", self.token);
        }
        let bytes = body.map(|(_, b)| b).unwrap_or_default();
        if let Some((ct, b)) = body {
            req += &format!("Content-Type: {ct}\r\nContent-Length: {}\r\n", b.len());
        }
        req += "\r\n";
        let mut s = tokio::net::TcpStream::connect(self.addr).await.unwrap();
        s.write_all(req.as_bytes()).await.unwrap();
        s.write_all(bytes).await.unwrap();
        let mut raw = vec![];
        s.read_to_end(&mut raw).await.unwrap();
        let split = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
        let head = String::from_utf8(raw[..split].to_vec()).unwrap();
        let mut lines = head.split("\r\n");
        let status = lines
            .next()
            .unwrap()
            .split(' ')
            .nth(1)
            .unwrap()
            .parse()
            .unwrap();
        let headers = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.to_ascii_lowercase(), v.trim().to_owned()))
            .collect();
        Reply {
            status,
            headers,
            body: raw[split + 4..].to_vec(),
        }
    }

    /// A JSON request; returns the status and the JSON body (`Null` if none).
    pub async fn call_json(
        &self,
        method: &str,
        path: &str,
        auth: bool,
        body: Option<Value>,
    ) -> (u16, Value) {
        let bytes = body.map(|b| b.to_string());
        let reply = self
            .call(
                method,
                path,
                auth,
                bytes.as_deref().map(|b| ("application/json", b.as_bytes())),
            )
            .await;
        (reply.status, reply.json())
    }
}
