//! Two (or more) in-process servers federating over real TLS on 127.0.0.1: a test CA and a
//! leaf for IP 127.0.0.1 made with the `openssl` command, each server named after its
//! federation listener's address and trusting the CA, all listed in each other's federation
//! list. Each node also serves its client API (plain HTTP on loopback). Used by
//! `federation_http.rs`, `federation_e2ee.rs` and `federation_queries_http/`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;

use handover::config::Config;
use handover::service::Services;
use ruma::OwnedServerName;
use serde_json::{Value, json};

/// The test CA and the leaf every node serves (files in the caller's directory).
pub struct Certs {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

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

/// A CA and a leaf certificate for IP 127.0.0.1 signed by it, written into `d`.
pub fn make_certs(d: &Path) -> Certs {
    let ec = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
    let args = |s: String| s.split(' ').map(str::to_owned).collect::<Vec<_>>();
    let run = |s: String| openssl(d, &args(s).iter().map(String::as_str).collect::<Vec<_>>());
    run(format!(
        "req -x509 {ec} -keyout ca.key -out ca.pem -days 2 -subj /CN=handover-test-ca"
    ));
    run(format!(
        "req {ec} -keyout leaf.key -out leaf.csr -subj /CN=127.0.0.1"
    ));
    std::fs::write(
        d.join("ext"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n",
    )
    .unwrap();
    run("x509 -req -in leaf.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out leaf.pem -days 2 -extfile ext".into());
    Certs {
        ca: d.join("ca.pem"),
        cert: d.join("leaf.pem"),
        key: d.join("leaf.key"),
    }
}

pub struct Node {
    pub name: OwnedServerName,
    /// `https://<name>`: the federation listener.
    pub base: String,
    pub services: Services,
    /// The client API, plain HTTP on loopback.
    pub client: SocketAddr,
    pub dir: tempfile::TempDir,
}

/// A bound listener and the server name it gives (`127.0.0.1:port`).
pub fn bind() -> (std::net::TcpListener, OwnedServerName) {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.set_nonblocking(true).unwrap();
    let name = OwnedServerName::try_from(l.local_addr().unwrap().to_string()).unwrap();
    (l, name)
}

/// The federation list naming `names`, one organisation each.
pub fn listing(names: &[&OwnedServerName]) -> Value {
    json!({
        "serial": 1,
        "organisations": names.iter().enumerate().map(|(i, n)| json!({
            "ods_code": format!("RX{i}"),
            "name": format!("Test trust {i}"),
            "servers": [n.as_str()],
        })).collect::<Vec<_>>()
    })
}

/// Starts a server named `name` with `list` as its federation list: its federation listener on
/// `listener` and its client API on a free port.
pub async fn start(
    listener: std::net::TcpListener,
    name: OwnedServerName,
    certs: &Certs,
    list: &Value,
) -> Node {
    start_with(listener, name, certs, list, |_| {}).await
}

/// As [`start`], with `tweak` applied to the configuration first.
pub async fn start_with(
    listener: std::net::TcpListener,
    name: OwnedServerName,
    certs: &Certs,
    list: &Value,
    tweak: impl FnOnce(&mut Config),
) -> Node {
    let dir = tempfile::tempdir().unwrap();
    let list_file = dir.path().join("federation-list.json");
    std::fs::write(&list_file, serde_json::to_vec_pretty(list).unwrap()).unwrap();
    let mut config = Config {
        server_name: name.to_string(),
        data_dir: dir.path().to_owned(),
        ..Config::default()
    };
    config.database.path = dir.path().join("handover.db");
    config.tls.cert = Some(certs.cert.clone());
    config.tls.key = Some(certs.key.clone());
    config.federation.list_file = Some(list_file);
    config.federation.ca_file = Some(certs.ca.clone());
    config.federation.request_timeout_secs = 10;
    tweak(&mut config);
    let services = handover::server::build_services(config).unwrap();
    let app = handover::server::federation_app(services.clone());
    let tls = Some((certs.cert.clone(), certs.key.clone()));
    tokio::spawn(handover::server::serve_on(
        listener,
        app,
        tls,
        axum_server::Handle::new(),
    ));
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let client = l.local_addr().unwrap();
    let api =
        handover::server::app(services.clone()).into_make_service_with_connect_info::<SocketAddr>();
    tokio::spawn(async move { axum::serve(l, api).await });
    Node {
        base: format!("https://{name}"),
        name,
        services,
        client,
        dir,
    }
}
