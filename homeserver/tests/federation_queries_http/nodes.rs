//! Two in-process servers over TLS (a test CA made with `openssl`), each with its federation
//! listener and its client API on loopback, and the calls the tests make.

use std::path::Path;

use handover::service::rooms::{CreateRoomParams, EventSpec};
use ruma::events::TimelineEventType;
use ruma::{OwnedRoomId, OwnedUserId, UserId};
use serde_json::{Value, json};

pub use crate::common::federation::{Node, bind, listing, make_certs, start_with as start};

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
