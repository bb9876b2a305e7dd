//! Test support for outbound federation: certificates made with the `openssl` command (a test
//! CA and leaves for chosen names), TLS servers on 127.0.0.1, a fake federation receiver that
//! fails on demand, and services that trust the test CA with a given federation list.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::put;
use handover_policy::{FederationGate, LiveFederationList};

use crate::config::Config;
use crate::service::Services;
use crate::store::sqlite::SqliteStore;

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("the openssl command is needed for this test");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

const EC: [&str; 5] = [
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:prime256v1",
    "-nodes",
];

/// A test CA in a temporary directory; `leaf` issues certificates from it.
pub struct TestCa {
    pub dir: tempfile::TempDir,
    pub ca: PathBuf,
}

impl TestCa {
    pub fn new() -> Self {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let dir = tempfile::tempdir().unwrap();
        let mut a = vec!["req", "-x509"];
        a.extend(EC);
        a.extend(["-keyout", "ca.key", "-out", "ca.pem", "-days", "2"]);
        a.extend(["-subj", "/CN=handover-test-ca"]);
        openssl(dir.path(), &a);
        let ca = dir.path().join("ca.pem");
        Self { dir, ca }
    }

    /// A leaf `(cert, key)` named `name` with `subjectAltName = san` (e.g. `DNS:localhost`).
    pub fn leaf(&self, name: &str, san: &str) -> (PathBuf, PathBuf) {
        let d = self.dir.path();
        let (key, csr, pem, ext) = (
            format!("{name}.key"),
            format!("{name}.csr"),
            format!("{name}.pem"),
            format!("{name}.ext"),
        );
        let mut b = vec!["req"];
        b.extend(EC);
        b.extend(["-keyout", &key, "-out", &csr, "-subj", "/CN=handover-test"]);
        openssl(d, &b);
        std::fs::write(
            d.join(&ext),
            format!("subjectAltName={san}\nbasicConstraints=CA:FALSE\n"),
        )
        .unwrap();
        openssl(
            d,
            &[
                "x509",
                "-req",
                "-in",
                &csr,
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
                &pem,
                "-days",
                "2",
                "-extfile",
                &ext,
            ],
        );
        (d.join(pem), d.join(key))
    }
}

/// Serves `app` over TLS with `leaf` on 127.0.0.1 (a free port) until the runtime ends.
pub fn serve_tls(app: axum::Router, leaf: &(PathBuf, PathBuf)) -> SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.set_nonblocking(true).unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(crate::server::serve_on(
        l,
        app,
        Some(leaf.clone()),
        axum_server::Handle::new(),
    ));
    addr
}

/// One `/send` request as the fake receiver saw it.
#[derive(Debug, Clone)]
pub struct Attempt {
    pub txn: String,
    pub status: u16,
    pub host: Option<String>,
    pub body: serde_json::Value,
}

/// A federation receiver for `/send`: answers the statuses in `script` first, then 413 for a
/// body over `max_body`, then 200 (or 500 while `fail_all` is set), and records every attempt.
#[derive(Default)]
pub struct Receiver {
    pub script: Mutex<VecDeque<u16>>,
    pub fail_all: AtomicBool,
    pub attempts: Mutex<Vec<Attempt>>,
    /// Bodies longer than this (when not 0) are answered 413, as Synapse does over 1 MiB.
    pub max_body: std::sync::atomic::AtomicUsize,
}

impl Receiver {
    pub fn attempts(&self) -> Vec<Attempt> {
        self.attempts.lock().unwrap().clone()
    }

    /// The attempts answered 200.
    pub fn accepted(&self) -> Vec<Attempt> {
        self.attempts()
            .into_iter()
            .filter(|a| a.status == 200)
            .collect()
    }

    pub fn router(self: &Arc<Self>) -> axum::Router {
        async fn send(
            State(r): State<Arc<Receiver>>,
            UrlPath(txn): UrlPath<String>,
            headers: HeaderMap,
            body: axum::body::Bytes,
        ) -> (StatusCode, String) {
            let max = r.max_body.load(Ordering::SeqCst);
            let status = match r.script.lock().unwrap().pop_front() {
                Some(s) => s,
                None if max > 0 && body.len() > max => 413,
                None if r.fail_all.load(Ordering::SeqCst) => 500,
                None => 200,
            };
            r.attempts.lock().unwrap().push(Attempt {
                txn,
                status,
                host: headers
                    .get(http::header::HOST)
                    .and_then(|h| h.to_str().ok())
                    .map(str::to_owned),
                body: serde_json::from_slice(&body).unwrap_or_default(),
            });
            let reply = if status == 200 {
                r#"{"pdus":{}}"#
            } else {
                r#"{"errcode":"M_UNKNOWN","error":"test failure"}"#
            };
            (StatusCode::from_u16(status).unwrap(), reply.to_owned())
        }
        axum::Router::new()
            .route("/_matrix/federation/v1/send/{txn}", put(send))
            .with_state(self.clone())
    }
}

/// Services named `localhost` on `dir` (reopened as is: a restart), trusting `ca`, with
/// `listed` as the federation list.
pub fn services_on(dir: &Path, ca: &Path, listed: &[&str]) -> (Services, SqliteStore) {
    let doc = serde_json::json!({"serial": 1, "organisations": [
        {"ods_code": "RRK", "servers": listed}]});
    let gate = FederationGate {
        list: Some(LiveFederationList::load(doc.to_string().as_bytes(), None, None).unwrap()),
    };
    let mut config = Config {
        data_dir: dir.to_owned(),
        ..Config::default()
    };
    config.database.path = dir.join("handover.db");
    config.federation.ca_file = Some(ca.to_owned());
    config.federation.request_timeout_secs = 5;
    let store = SqliteStore::open(&config.database.path, 2).unwrap();
    let services = Services::build(config, store.clone(), Arc::new(gate)).unwrap();
    (services, store)
}

/// Polls `done` every 20 ms for up to `secs` seconds.
pub async fn wait_for(secs: u64, what: &str, mut done: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    while !done() {
        assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
