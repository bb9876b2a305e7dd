//! Server discovery over real TLS on 127.0.0.1: a `.well-known` server and a federation
//! receiver, both with certificates for `localhost` only, and a fake SRV table. Checks that the
//! delegation is followed and cached, that an SRV route connects to the target while TLS and
//! `Host` use the server name, that only same-host redirects are followed, and that a name the
//! federation list refuses is never looked up.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use ruma::api::federation::transactions::send_transaction_message::v1 as send_txn;
use ruma::{MilliSecondsSinceUnixEpoch, OwnedServerName, ServerName, TransactionId};

use super::client::{FederationClient, FederationError, Sign};
use super::discovery::{Discovery, Target};
use super::dns::{SrvFuture, SrvLookup, SrvRecord};
use super::gate::PeerGate;
use super::test_support::{Receiver, TestCa, serve_tls, services_on};
use super::transport::HttpSettings;
use super::well_known::{HttpsWellKnown, redirect_policy};
use crate::service::Services;

/// What the test's `.well-known` server answers.
#[derive(Clone)]
enum Answer {
    Delegate(String),
    NotFound,
    /// 302 to this location.
    Redirect(String),
}

struct WellKnownServer {
    answers: HashMap<&'static str, Answer>,
    hits: AtomicUsize,
}

impl WellKnownServer {
    /// Serves `answers` by path over TLS for `localhost`; returns it and its port.
    fn start(ca: &TestCa, answers: &[(&'static str, Answer)]) -> (Arc<Self>, u16) {
        let s = Arc::new(Self {
            answers: answers.iter().cloned().collect(),
            hits: AtomicUsize::new(0),
        });
        async fn handle(State(s): State<Arc<WellKnownServer>>, uri: axum::http::Uri) -> Response {
            s.hits.fetch_add(1, Ordering::SeqCst);
            match s.answers.get(uri.path()) {
                Some(Answer::Delegate(to)) => (
                    [("cache-control", "max-age=600")],
                    serde_json::json!({ "m.server": to }).to_string(),
                )
                    .into_response(),
                Some(Answer::Redirect(to)) => {
                    (StatusCode::FOUND, [("location", to.clone())]).into_response()
                }
                Some(Answer::NotFound) | None => StatusCode::NOT_FOUND.into_response(),
            }
        }
        let mut app = axum::Router::new();
        for (path, _) in answers {
            app = app.route(path, get(handle));
        }
        let addr = serve_tls(app.with_state(s.clone()), &ca.leaf("wk", "DNS:localhost"));
        (s, addr.port())
    }
}

#[derive(Default)]
struct FakeSrv(HashMap<String, Vec<SrvRecord>>);

impl SrvLookup for FakeSrv {
    fn lookup<'a>(&'a self, name: &'a str) -> SrvFuture<'a> {
        let found = self.0.get(name).cloned().unwrap_or_default();
        Box::pin(async move { Ok(found) })
    }
}

fn discovery(s: &Services, well_known_port: u16, srv: FakeSrv) -> Discovery {
    let settings = HttpSettings::from_config(&s.config.federation).unwrap();
    let http = settings.client(redirect_policy(), None).unwrap();
    Discovery::new(
        Arc::new(HttpsWellKnown {
            http,
            port: well_known_port,
        }),
        Arc::new(srv),
    )
}

fn client(s: &Services, discovery: Discovery) -> FederationClient {
    let settings = HttpSettings::from_config(&s.config.federation).unwrap();
    let gate = Arc::new(PeerGate::new(
        s.policy.clone(),
        s.audit.clone(),
        "localhost".into(),
    ));
    let origin = OwnedServerName::try_from("origin.test").unwrap();
    FederationClient::with_discovery(settings, discovery, origin, s.keys.clone(), gate).unwrap()
}

async fn send(c: &FederationClient, to: &str) -> Result<send_txn::Response, FederationError> {
    let req = send_txn::Request::new(
        TransactionId::new(),
        OwnedServerName::try_from("origin.test").unwrap(),
        MilliSecondsSinceUnixEpoch::now(),
    );
    c.send(
        <&ServerName>::try_from(to).unwrap(),
        req,
        "transaction",
        Sign::AsRequired,
    )
    .await
}

/// A federation receiver whose certificate names `localhost` only (not 127.0.0.1).
fn receiver(ca: &TestCa) -> (Arc<Receiver>, u16) {
    let r = Arc::new(Receiver::default());
    let addr = serve_tls(r.router(), &ca.leaf("fed", "DNS:localhost"));
    (r, addr.port())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn well_known_delegation_is_followed_and_cached() {
    let ca = TestCa::new();
    let (recv, fed_port) = receiver(&ca);
    let (wk, wk_port) = WellKnownServer::start(
        &ca,
        &[(
            "/.well-known/matrix/server",
            Answer::Delegate(format!("localhost:{fed_port}")),
        )],
    );
    let dir = tempfile::tempdir().unwrap();
    let (s, _) = services_on(dir.path(), &ca.ca, &["localhost"]);
    let c = client(&s, discovery(&s, wk_port, FakeSrv::default()));
    send(&c, "localhost").await.unwrap();
    send(&c, "localhost").await.unwrap();
    assert_eq!(wk.hits.load(Ordering::SeqCst), 1, "answer cached");
    let hosts: Vec<_> = recv.attempts().into_iter().map(|a| a.host).collect();
    let want = Some(format!("localhost:{fed_port}"));
    assert_eq!(hosts, vec![want.clone(), want], "Host: the delegated name");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_srv_target_gets_the_connection_while_tls_and_host_use_the_server_name() {
    let ca = TestCa::new();
    let (recv, fed_port) = receiver(&ca);
    let (wk, wk_port) =
        WellKnownServer::start(&ca, &[("/.well-known/matrix/server", Answer::NotFound)]);
    let mut srv = FakeSrv::default();
    srv.0.insert(
        "_matrix-fed._tcp.localhost.".into(),
        vec![SrvRecord {
            priority: 0,
            weight: 0,
            port: fed_port,
            target: "127.0.0.1".into(),
        }],
    );
    let dir = tempfile::tempdir().unwrap();
    let (s, _) = services_on(dir.path(), &ca.ca, &["localhost"]);
    let c = client(&s, discovery(&s, wk_port, srv));
    // The certificate is valid for `localhost` only: this succeeds only if TLS verified the
    // server name, not the SRV target's address.
    send(&c, "localhost").await.unwrap();
    assert_eq!(wk.hits.load(Ordering::SeqCst), 1);
    let a = recv.attempts();
    assert_eq!(a.len(), 1);
    assert_eq!(a[0].host.as_deref(), Some("localhost"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn well_known_redirects_are_followed_on_the_same_host_only() {
    let ca = TestCa::new();
    let dir = tempfile::tempdir().unwrap();
    let (s, _) = services_on(dir.path(), &ca.ca, &["localhost"]);
    let localhost = <&ServerName>::try_from("localhost").unwrap();

    let (_, port) = WellKnownServer::start(
        &ca,
        &[
            (
                "/.well-known/matrix/server",
                Answer::Redirect("/moved".into()),
            ),
            ("/moved", Answer::Delegate("localhost:1234".into())),
        ],
    );
    let t = discovery(&s, port, FakeSrv::default())
        .resolve(localhost)
        .await
        .unwrap();
    assert_eq!(t.base_url, "https://localhost:1234");

    // Another host (127.0.0.1 is not the name asked about): not followed, so no delegation.
    let (other, other_port) =
        WellKnownServer::start(&ca, &[("/x", Answer::Delegate("localhost:1234".into()))]);
    let (_, port) = WellKnownServer::start(
        &ca,
        &[(
            "/.well-known/matrix/server",
            Answer::Redirect(format!("https://127.0.0.1:{other_port}/x")),
        )],
    );
    let t = discovery(&s, port, FakeSrv::default())
        .resolve(localhost)
        .await
        .unwrap();
    assert_eq!(
        t,
        Target {
            base_url: "https://localhost:8448".into(),
            host_header: "localhost".into(),
            srv: None
        }
    );
    assert_eq!(other.hits.load(Ordering::SeqCst), 0, "never contacted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_name_the_list_refuses_is_never_looked_up() {
    let ca = TestCa::new();
    let (wk, wk_port) = WellKnownServer::start(
        &ca,
        &[(
            "/.well-known/matrix/server",
            Answer::Delegate("localhost:1234".into()),
        )],
    );
    let dir = tempfile::tempdir().unwrap();
    let (s, _) = services_on(dir.path(), &ca.ca, &["other.nhs.uk"]);
    let c = client(&s, discovery(&s, wk_port, FakeSrv::default()));
    let err = send(&c, "localhost").await.unwrap_err();
    assert!(matches!(err, FederationError::Denied { .. }), "{err}");
    assert_eq!(wk.hits.load(Ordering::SeqCst), 0);
}
