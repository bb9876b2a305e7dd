//! Two in-process servers over TLS (a test CA made with `openssl`), each with its federation
//! listener and its client API on loopback, and the calls the tests make.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;

use handover::config::Config;
use handover::service::Services;
use handover::service::rooms::{CreateRoomParams, EventSpec};
use ruma::events::TimelineEventType;
use ruma::{OwnedRoomId, OwnedServerName, OwnedUserId, UserId};
use serde_json::{Value, json};

pub struct Certs {
    ca: PathBuf,
    cert: PathBuf,
    key: PathBuf,
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

/// A CA and a leaf certificate for IP 127.0.0.1 signed by it.
pub fn make_certs(dir: &Path) -> Certs {
    let ec = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
    let args = |s: &str| s.split(' ').map(str::to_owned).collect::<Vec<_>>();
    let run = |s: String| {
        let a = args(&s);
        openssl(dir, &a.iter().map(String::as_str).collect::<Vec<_>>());
    };
    run(format!(
        "req -x509 {ec} -keyout ca.key -out ca.pem -days 2 -subj /CN=handover-test-ca"
    ));
    run(format!(
        "req {ec} -keyout leaf.key -out leaf.csr -subj /CN=127.0.0.1"
    ));
    std::fs::write(
        dir.join("ext"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n",
    )
    .unwrap();
    run(
        "x509 -req -in leaf.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out leaf.pem -days 2 \
         -extfile ext"
            .to_owned(),
    );
    Certs {
        ca: dir.join("ca.pem"),
        cert: dir.join("leaf.pem"),
        key: dir.join("leaf.key"),
    }
}

pub struct Node {
    pub services: Services,
    /// The client API, plain HTTP on loopback.
    pub client: SocketAddr,
    pub dir: tempfile::TempDir,
}

pub fn bind() -> (std::net::TcpListener, OwnedServerName) {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.set_nonblocking(true).unwrap();
    let name = OwnedServerName::try_from(l.local_addr().unwrap().to_string()).unwrap();
    (l, name)
}

pub async fn start(
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
    let fed = handover::server::federation_app(services.clone());
    let tls = Some((certs.cert.clone(), certs.key.clone()));
    tokio::spawn(handover::server::serve_on(
        listener,
        fed,
        tls,
        axum_server::Handle::new(),
    ));
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let client = l.local_addr().unwrap();
    let app =
        handover::server::app(services.clone()).into_make_service_with_connect_info::<SocketAddr>();
    tokio::spawn(async move { axum::serve(l, app).await });
    Node {
        services,
        client,
        dir,
    }
}

pub fn listing(names: &[&OwnedServerName]) -> Value {
    json!({
        "serial": 1,
        "organisations": names.iter().enumerate().map(|(i, n)| json!({
            "ods_code": format!("RX{i}"),
            "servers": [n.as_str()],
        })).collect::<Vec<_>>()
    })
}

/// A user on `node` and an access token.
pub async fn login(node: &Node, localpart: &str) -> (OwnedUserId, String) {
    let users = &node.services.users;
    let id = users
        .create_user(localpart, None, false, true)
        .await
        .unwrap();
    let token = users
        .create_session(&id, None, None)
        .await
        .unwrap()
        .access_token;
    (id, token)
}

pub struct Reply {
    pub status: u16,
    pub content_type: String,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
}

/// A client API call; `token` "" sends none.
pub async fn call(
    node: &Node,
    token: &str,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> Reply {
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let m = http::Method::from_bytes(method.as_bytes()).unwrap();
    let mut req = http.request(m, format!("http://{}{path}", node.client));
    if !token.is_empty() {
        req = req.bearer_auth(token);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    let res = req.send().await.unwrap();
    Reply {
        status: res.status().as_u16(),
        content_type: res
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned(),
        body: res.bytes().await.unwrap().to_vec(),
    }
}

pub fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

pub async fn public_room(node: &Node, creator: &UserId, name: &str, alias: &str) -> OwnedRoomId {
    let params = CreateRoomParams {
        version: None,
        preset: None,
        is_public: true,
        name: Some(name.into()),
        topic: None,
        alias_localpart: Some(alias.into()),
        invite: vec![],
        is_direct: false,
        initial_state: vec![],
        creation_content: None,
        power_level_override: None,
    };
    node.services
        .rooms
        .create_room(creator, params)
        .await
        .unwrap()
}

/// Uploads a file as `who` and, with `room`, sends it there (binding it to that room).
pub async fn share(
    node: &Node,
    who: &UserId,
    room: Option<&OwnedRoomId>,
    bytes: Vec<u8>,
    ct: &str,
) -> String {
    let uri = node
        .services
        .media
        .upload(who, bytes, Some(ct.into()), Some("file".into()))
        .await
        .unwrap();
    if let Some(room) = room {
        let content = json!({ "msgtype": "m.file", "body": "file", "url": uri });
        let dev: ruma::OwnedDeviceId = "DEV".into();
        let txn = ruma::TransactionId::new();
        node.services
            .rooms
            .send_message(
                room,
                who,
                EventSpec::new(TimelineEventType::RoomMessage, content, None),
                (&dev, txn.as_str()),
            )
            .await
            .unwrap();
    }
    uri.media_id().unwrap().to_owned()
}

pub fn png(w: u32, h: u32) -> Vec<u8> {
    let img = image::RgbImage::from_fn(w, h, |x, y| image::Rgb([x as u8, y as u8, 9]));
    let mut out = std::io::Cursor::new(Vec::new());
    image::DynamicImage::ImageRgb8(img)
        .write_to(&mut out, image::ImageFormat::Png)
        .unwrap();
    out.into_inner()
}

pub fn files_under(dir: &Path) -> usize {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return 0;
    };
    rd.map(|e| e.unwrap().path())
        .map(|p| if p.is_dir() { files_under(&p) } else { 1 })
        .sum()
}
