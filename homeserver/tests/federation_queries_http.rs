//! Federation queries and media between two in-process servers over real TLS on 127.0.0.1
//! (a test CA made with `openssl`, as in federation_http.rs). A's local user asks, through A's
//! client API, about B's users, aliases, directory and media; B answers over federation.
//! Membership of A's user in B's room is set on B directly, standing in for a federation join.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;

use handover::config::Config;
use handover::service::Services;
use handover::service::rooms::{CreateRoomParams, EventSpec};
use ruma::events::TimelineEventType;
use ruma::{OwnedRoomId, OwnedServerName, OwnedUserId, UserId};
use serde_json::{Value, json};

struct Certs {
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
fn make_certs(dir: &Path) -> Certs {
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

struct Node {
    services: Services,
    /// The client API, plain HTTP on loopback.
    client: SocketAddr,
    dir: tempfile::TempDir,
}

fn bind() -> (std::net::TcpListener, OwnedServerName) {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.set_nonblocking(true).unwrap();
    let name = OwnedServerName::try_from(l.local_addr().unwrap().to_string()).unwrap();
    (l, name)
}

async fn start(
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

fn listing(names: &[&OwnedServerName]) -> Value {
    json!({
        "serial": 1,
        "organisations": names.iter().enumerate().map(|(i, n)| json!({
            "ods_code": format!("RX{i}"),
            "servers": [n.as_str()],
        })).collect::<Vec<_>>()
    })
}

/// A user on `node` and an access token.
async fn login(node: &Node, localpart: &str) -> (OwnedUserId, String) {
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

struct Reply {
    status: u16,
    content_type: String,
    body: Vec<u8>,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
}

async fn call(node: &Node, token: &str, method: &str, path: &str, body: Option<Value>) -> Reply {
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let m = http::Method::from_bytes(method.as_bytes()).unwrap();
    let mut req = http
        .request(m, format!("http://{}{path}", node.client))
        .bearer_auth(token);
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

fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

async fn public_room(node: &Node, creator: &UserId, name: &str, alias: &str) -> OwnedRoomId {
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
async fn share(
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

fn png(w: u32, h: u32) -> Vec<u8> {
    let img = image::RgbImage::from_fn(w, h, |x, y| image::Rgb([x as u8, y as u8, 9]));
    let mut out = std::io::Cursor::new(Vec::new());
    image::DynamicImage::ImageRgb8(img)
        .write_to(&mut out, image::ImageFormat::Png)
        .unwrap();
    out.into_inner()
}

fn files_under(dir: &Path) -> usize {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return 0;
    };
    rd.map(|e| e.unwrap().path())
        .map(|p| if p.is_dir() { files_under(&p) } else { 1 })
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_asks_b_about_profiles_aliases_directory_and_media() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let certs_dir = tempfile::tempdir().unwrap();
    let certs = make_certs(certs_dir.path());
    let (la, name_a) = bind();
    let (lb, name_b) = bind();
    let list = listing(&[&name_a, &name_b]);
    // A's clinical rules cap plain text at 64 bytes; B's do not.
    let a = start(la, name_a.clone(), &certs, &list, |c| {
        c.federation.serve_public_rooms = true;
        c.clinical_media
            .max_bytes_by_type
            .insert("text/plain".into(), 64);
    })
    .await;
    let b = start(lb, name_b.clone(), &certs, &list, |c| {
        c.federation.serve_public_rooms = true;
    })
    .await;
    let (_alice, token) = login(&a, "alice").await;
    let alice_at_a: OwnedUserId = format!("@alice:{name_a}").try_into().unwrap();
    let (bob, _) = login(&b, "bob").await;
    b.services
        .users
        .admin_set_displayname(&bob, Some("Dr Bob".into()))
        .await
        .unwrap();

    // Profiles: asked of B, then served from A's cache for a while.
    let path = format!("/_matrix/client/v3/profile/{}", enc(bob.as_str()));
    let r = call(&a, &token, "GET", &path, None).await;
    assert_eq!(r.status, 200, "{:?}", r.json());
    assert_eq!(r.json(), json!({ "displayname": "Dr Bob" }));
    b.services
        .users
        .admin_set_displayname(&bob, Some("Dr Robert".into()))
        .await
        .unwrap();
    let r = call(&a, &token, "GET", &format!("{path}/displayname"), None).await;
    assert_eq!(r.json(), json!({ "displayname": "Dr Bob" }), "cached");
    let nobody = format!(
        "/_matrix/client/v3/profile/{}",
        enc(&format!("@nobody:{name_b}"))
    );
    let r = call(&a, &token, "GET", &nobody, None).await;
    assert_eq!(
        (r.status, r.json()["errcode"].clone()),
        (404, json!("M_NOT_FOUND"))
    );

    // An alias on B.
    let ward = public_room(&b, &bob, "Ward 7", "ward7").await;
    let alias = format!("#ward7:{name_b}");
    let r = call(
        &a,
        &token,
        "GET",
        &format!("/_matrix/client/v3/directory/room/{}", enc(&alias)),
        None,
    )
    .await;
    assert_eq!(r.status, 200, "{:?}", r.json());
    assert_eq!(
        r.json(),
        json!({ "room_id": ward, "servers": [name_b.as_str()] })
    );

    // B's public directory, searched from A.
    let r = call(
        &a,
        &token,
        "POST",
        &format!(
            "/_matrix/client/v3/publicRooms?server={}",
            enc(name_b.as_str())
        ),
        Some(json!({ "filter": { "generic_search_term": "ward" } })),
    )
    .await;
    assert_eq!(r.status, 200, "{:?}", r.json());
    assert_eq!(r.json()["chunk"][0]["room_id"], ward.as_str());
    assert_eq!(r.json()["chunk"][0]["name"], "Ward 7");

    // Media: alice (on A) is in bob's room on B; bob shares files there.
    b.services
        .rooms
        .join(&ward, &alice_at_a, None)
        .await
        .unwrap();
    let letter = share(
        &b,
        &bob,
        Some(&ward),
        b"discharge letter".to_vec(),
        "text/plain",
    )
    .await;
    let download = |id: &str| format!("/_matrix/client/v1/media/download/{name_b}/{id}");
    let r = call(&a, &token, "GET", &download(&letter), None).await;
    assert_eq!(r.status, 200, "{:?}", r.json());
    assert_eq!(r.body, b"discharge letter");
    assert_eq!(r.content_type, "text/plain");
    assert_eq!(
        files_under(&a.dir.path().join("media/remote")),
        1,
        "cached at A"
    );

    // A file bob never sent into a room with A's user stays on B.
    let private = share(&b, &bob, None, b"private note".to_vec(), "text/plain").await;
    let r = call(&a, &token, "GET", &download(&private), None).await;
    assert_eq!(
        (r.status, r.json()["errcode"].clone()),
        (404, json!("M_NOT_FOUND"))
    );

    // A's clinical rules apply to B's files: over A's cap for plain text.
    let long = share(&b, &bob, Some(&ward), vec![b'x'; 100], "text/plain").await;
    let r = call(&a, &token, "GET", &download(&long), None).await;
    assert_eq!(r.status, 413, "{:?}", r.json());
    assert!(
        r.json()["error"]
            .as_str()
            .unwrap()
            .contains("media_too_large")
    );
    let audit = a.services.audit.all().await.unwrap();
    assert!(
        audit
            .iter()
            .any(|e| e.rule.as_deref() == Some("media_too_large")
                && e.target.as_deref() == Some(format!("mxc://{name_b}/{long}").as_str()))
    );

    // A thumbnail made by B.
    let photo = share(&b, &bob, Some(&ward), png(64, 48), "image/png").await;
    let r = call(
        &a,
        &token,
        "GET",
        &format!(
            "/_matrix/client/v1/media/thumbnail/{name_b}/{photo}?width=32&height=32&method=scale"
        ),
        None,
    )
    .await;
    assert_eq!(r.status, 200, "{:?}", r.json());
    let thumb = image::load_from_memory(&r.body).unwrap();
    assert!(thumb.width() <= 32 && thumb.height() <= 32);

    // Once alice leaves, B refuses new fetches, but A's copy was already made.
    b.services
        .rooms
        .leave(&ward, &alice_at_a, None)
        .await
        .unwrap();
    let r = call(&a, &token, "GET", &download(&letter), None).await;
    assert_eq!(r.body, b"discharge letter", "served from A's cache");
    let r = call(&a, &token, "GET", &download(&photo), None).await;
    assert_eq!(r.status, 404, "not fetched before she left: B refuses now");
}

/// Interoperability with a real Synapse (not run by default): start one with
/// `../shared/tools/peers/synapse_peer.sh init|start /tmp/handover-peers/q 127.0.0.23 18023 18423`,
/// then `HANDOVER_SYNAPSE_FED=127.0.0.23:18423 HANDOVER_SYNAPSE_CLIENT=http://127.0.0.23:18023
/// cargo test -p handover --test federation_queries_http -- --ignored`. Synapse's users read our
/// profiles, aliases and (room-bound) media through Synapse, which asks us over federation with
/// its own X-Matrix signature and parses our multipart answer; we read Synapse's profiles and
/// media. Synapse's certificate is self-signed, so TLS verification is off for this test only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a Synapse peer: set HANDOVER_SYNAPSE_FED and HANDOVER_SYNAPSE_CLIENT"]
async fn synapse_interop_queries_and_media() {
    let (Ok(peer), Ok(peer_client)) = (
        std::env::var("HANDOVER_SYNAPSE_FED"),
        std::env::var("HANDOVER_SYNAPSE_CLIENT"),
    ) else {
        panic!("set HANDOVER_SYNAPSE_FED (IP:port) and HANDOVER_SYNAPSE_CLIENT (http://IP:port)");
    };
    let _ = rustls::crypto::ring::default_provider().install_default();
    let peer = OwnedServerName::try_from(peer).unwrap();
    let certs_dir = tempfile::tempdir().unwrap();
    let certs = make_certs(certs_dir.path());
    let (l, name) = bind();
    let list = listing(&[&name, &peer]);
    let h = start(l, name.clone(), &certs, &list, |c| {
        c.federation.verify_tls = false
    })
    .await;
    let (alice, _) = login(&h, "alice").await;
    h.services
        .users
        .admin_set_displayname(&alice, Some("Dr Alice".into()))
        .await
        .unwrap();

    // A user on Synapse.
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let localpart = format!("carol{}", rand::random::<u32>());
    let reg: Value = http
        .post(format!("{peer_client}/_matrix/client/v3/register"))
        .json(
            &json!({ "username": localpart, "password": "a long password 123",
                       "auth": { "type": "m.login.dummy" } }),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let carol_token = reg["access_token"].as_str().expect("registered").to_owned();
    let carol: OwnedUserId = reg["user_id"].as_str().unwrap().try_into().unwrap();
    let synapse_get = |path: String| {
        let http = http.clone();
        let (base, token) = (peer_client.clone(), carol_token.clone());
        async move {
            let res = http
                .get(format!("{base}{path}"))
                .bearer_auth(token)
                .send()
                .await
                .unwrap();
            let status = res.status().as_u16();
            (status, res.bytes().await.unwrap().to_vec())
        }
    };

    // 1. Synapse asks us for alice's profile (a Synapse-signed request to us).
    let (status, body) = synapse_get(format!(
        "/_matrix/client/v3/profile/{}",
        enc(alice.as_str())
    ))
    .await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["displayname"], "Dr Alice");

    // 2. ... and resolves our alias.
    let ward = public_room(&h, &alice, "Ward 7", "ward7").await;
    let (status, body) = synapse_get(format!(
        "/_matrix/client/v3/directory/room/{}",
        enc(&format!("#ward7:{name}"))
    ))
    .await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["room_id"], ward.as_str());

    // 3. We ask Synapse for carol's profile.
    let res = http
        .put(format!(
            "{peer_client}/_matrix/client/v3/profile/{}/displayname",
            enc(carol.as_str())
        ))
        .bearer_auth(&carol_token)
        .json(&json!({ "displayname": "Carol S" }))
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success());
    let p = h.services.query.profile(&carol).await.unwrap();
    assert_eq!(p.displayname.as_deref(), Some("Carol S"));

    // 4. We fetch Synapse's media (its multipart answer, parsed by us).
    let up: Value = http
        .post(format!("{peer_client}/_matrix/media/v3/upload"))
        .bearer_auth(&carol_token)
        .header("content-type", "text/plain")
        .body("referral from the GP")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mxc = up["content_uri"].as_str().expect("uploaded").to_owned();
    let id = mxc.rsplit('/').next().unwrap();
    let got = h
        .services
        .media
        .download(&alice, &peer, id, None, std::time::Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(got.bytes, b"referral from the GP");
    assert_eq!(got.content_type, "text/plain");

    // 5. Synapse fetches our media for carol once Synapse has a member in its room (carol's
    //    membership set here, standing in for a federation join); an unbound file stays here.
    h.services.rooms.join(&ward, &carol, None).await.unwrap();
    let letter = share(
        &h,
        &alice,
        Some(&ward),
        b"discharge letter".to_vec(),
        "text/plain",
    )
    .await;
    let private = share(&h, &alice, None, b"private note".to_vec(), "text/plain").await;
    let (status, body) =
        synapse_get(format!("/_matrix/client/v1/media/download/{name}/{letter}")).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert_eq!(body, b"discharge letter");
    let (status, body) = synapse_get(format!(
        "/_matrix/client/v1/media/download/{name}/{private}"
    ))
    .await;
    assert_eq!(status, 404, "{}", String::from_utf8_lossy(&body));
}
