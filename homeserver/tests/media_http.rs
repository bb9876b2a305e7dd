//! The media endpoints over real HTTP: routing, authentication, status codes and the headers the
//! spec asks for on served content. (Service behaviour is tested beside the service.)

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use handover::config::Config;
use handover::service::Services;
use handover::store::sqlite::SqliteStore;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

struct Reply {
    status: u16,
    headers: HashMap<String, String>,
    body: Vec<u8>,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
    fn header(&self, name: &str) -> &str {
        self.headers.get(name).map(String::as_str).unwrap_or("")
    }
    fn assert_error(&self, status: u16, errcode: &str) {
        assert_eq!(
            self.status,
            status,
            "{}",
            String::from_utf8_lossy(&self.body)
        );
        assert_eq!(self.json()["errcode"], errcode);
    }
}

struct Server {
    addr: SocketAddr,
    token: String,
    _dir: tempfile::TempDir,
}

async fn start(max_upload_bytes: u64) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config {
        data_dir: dir.path().to_owned(),
        ..Config::default()
    };
    config.media.max_upload_bytes = max_upload_bytes;
    // A deployment that widened the allowlist: served HTML must still never render inline.
    config.clinical_media.allowed_types.push("text/html".into());
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
    /// One HTTP/1.0 request (the server then closes the connection and sends no chunking).
    async fn call(
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
}

fn media_id(content_uri: &Value) -> String {
    let uri = content_uri.as_str().unwrap();
    let (server, id) = uri.strip_prefix("mxc://").unwrap().split_once('/').unwrap();
    assert_eq!(server, "localhost");
    id.to_owned()
}

fn png() -> Vec<u8> {
    let img = image::RgbImage::from_fn(120, 60, |x, y| image::Rgb([x as u8, y as u8, 9]));
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

#[tokio::test]
async fn upload_download_and_served_headers() {
    let srv = start(1 << 20).await;
    // Types outside the allowlist: 403 naming the rule (docs/GOVERNANCE.md).
    let r = srv
        .call(
            "POST",
            "/_matrix/media/v3/upload",
            true,
            Some(("image/svg+xml", b"<svg/>")),
        )
        .await;
    r.assert_error(403, "M_FORBIDDEN");
    assert!(
        r.json()["error"]
            .as_str()
            .unwrap()
            .contains("media_type_not_allowed")
    );

    let html = b"<script>alert(1)</script>";
    let r = srv
        .call(
            "POST",
            "/_matrix/media/v3/upload?filename=page.html",
            true,
            Some(("text/html", html)),
        )
        .await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let id = media_id(&r.json()["content_uri"]);

    let r = srv
        .call(
            "GET",
            &format!("/_matrix/client/v1/media/download/localhost/{id}"),
            true,
            None,
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body, html);
    assert_eq!(r.header("content-type"), "text/html");
    // HTML is never rendered inline.
    assert_eq!(
        r.header("content-disposition"),
        "attachment; filename=page.html"
    );
    assert!(
        r.header("content-security-policy")
            .starts_with("sandbox; default-src 'none'")
    );
    assert_eq!(r.header("cross-origin-resource-policy"), "cross-origin");
    assert_eq!(r.header("x-content-type-options"), "nosniff");

    let r = srv
        .call(
            "GET",
            &format!("/_matrix/client/v1/media/download/localhost/{id}/x.txt"),
            true,
            None,
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("content-disposition"),
        "attachment; filename=x.txt"
    );

    srv.call(
        "GET",
        &format!("/_matrix/client/v1/media/download/localhost/{id}"),
        false,
        None,
    )
    .await
    .assert_error(401, "M_MISSING_TOKEN");
    srv.call(
        "GET",
        "/_matrix/client/v1/media/download/remote.org/abc",
        true,
        None,
    )
    .await
    .assert_error(404, "M_NOT_FOUND");
}

#[tokio::test]
async fn thumbnails_over_http() {
    let srv = start(1 << 20).await;
    let r = srv
        .call(
            "POST",
            "/_matrix/media/v3/upload",
            true,
            Some(("image/png", &png())),
        )
        .await;
    let id = media_id(&r.json()["content_uri"]);
    let path =
        format!("/_matrix/client/v1/media/thumbnail/localhost/{id}?width=32&height=32&method=crop");
    let r = srv.call("GET", &path, true, None).await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.header("content-type"), "image/png");
    assert_eq!(
        r.header("content-disposition"),
        "inline; filename=thumbnail.png"
    );
    let img = image::load_from_memory(&r.body).unwrap();
    assert_eq!((img.width(), img.height()), (32, 32));

    let bad = format!(
        "/_matrix/client/v1/media/thumbnail/localhost/{id}?width=32&height=32&method=stretch"
    );
    srv.call("GET", &bad, true, None)
        .await
        .assert_error(400, "M_INVALID_PARAM");
}

#[tokio::test]
async fn legacy_endpoints_are_frozen_config_still_answers() {
    let srv = start(12_345).await;
    let r = srv
        .call(
            "POST",
            "/_matrix/media/v3/upload",
            true,
            Some(("image/png", &png())),
        )
        .await;
    let id = media_id(&r.json()["content_uri"]);
    for path in [
        format!("/_matrix/media/v3/download/localhost/{id}"),
        format!("/_matrix/media/v3/download/localhost/{id}/name.png"),
        format!("/_matrix/media/v3/thumbnail/localhost/{id}?width=32&height=32"),
        format!("/_matrix/media/r0/download/localhost/{id}"),
    ] {
        srv.call("GET", &path, false, None)
            .await
            .assert_error(404, "M_NOT_FOUND");
    }
    for path in [
        "/_matrix/client/v1/media/config",
        "/_matrix/media/v3/config",
    ] {
        let r = srv.call("GET", path, true, None).await;
        assert_eq!(r.status, 200, "{path}");
        assert_eq!(r.json()["m.upload.size"], 12_345, "{path}");
    }
    for path in [
        "/_matrix/client/v1/media/preview_url?url=https%3A%2F%2Fexample.org",
        "/_matrix/media/v3/preview_url?url=https%3A%2F%2Fexample.org",
    ] {
        let r = srv.call("GET", path, true, None).await;
        r.assert_error(403, "M_FORBIDDEN");
        assert_eq!(r.json()["error"], "URL previews are disabled");
    }
}

#[tokio::test]
async fn upload_limits_and_async_upload() {
    let srv = start(100).await;
    let r = srv
        .call(
            "POST",
            "/_matrix/media/v3/upload",
            true,
            Some(("text/plain", &[b'a'; 100])),
        )
        .await;
    assert_eq!(r.status, 200);
    srv.call(
        "POST",
        "/_matrix/media/v3/upload",
        true,
        Some(("text/plain", &[b'a'; 101])),
    )
    .await
    .assert_error(413, "M_TOO_LARGE");

    let r = srv
        .call(
            "POST",
            "/_matrix/media/v1/create",
            true,
            Some(("application/json", b"{}")),
        )
        .await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert!(r.json()["unused_expires_at"].as_u64().is_some());
    let id = media_id(&r.json()["content_uri"]);
    let put = format!("/_matrix/media/v3/upload/localhost/{id}?filename=n.txt");
    let r = srv
        .call("PUT", &put, true, Some(("text/plain", b"async")))
        .await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json(), serde_json::json!({}));
    let r = srv
        .call(
            "GET",
            &format!("/_matrix/client/v1/media/download/localhost/{id}"),
            true,
            None,
        )
        .await;
    assert_eq!(r.body, b"async");
    assert_eq!(r.header("content-disposition"), "inline; filename=n.txt");
    srv.call("PUT", &put, true, Some(("text/plain", b"again")))
        .await
        .assert_error(409, "M_CANNOT_OVERWRITE_MEDIA");
    srv.call(
        "PUT",
        "/_matrix/media/v3/upload/localhost/neverCreated",
        true,
        Some(("text/plain", b"x")),
    )
    .await
    .assert_error(404, "M_NOT_FOUND");
}
