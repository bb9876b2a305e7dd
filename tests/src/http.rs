//! Raw HTTP for tests that need exact requests and answers (bad input, federation).

use std::time::Duration;

use serde_json::Value;
use tokio::io::AsyncWriteExt;

use crate::*;

// ---------------------------------------------------------------------------------------------
// Raw HTTP
// ---------------------------------------------------------------------------------------------

/// Minimal raw HTTP client for requests matrix-sdk cannot (or would not) make.
#[derive(Clone)]
pub struct Http {
    base: String,
    client: reqwest::Client,
}

/// A raw HTTP response.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Vec<u8>,
    /// `METHOD path`, for messages.
    pub what: String,
}

impl Resp {
    /// Body as JSON (`Value::Null` if it is not JSON).
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body)
            .chars()
            .take(2000)
            .collect()
    }

    pub fn errcode(&self) -> Option<String> {
        self.json()
            .get("errcode")
            .and_then(|v| v.as_str())
            .map(str::to_owned)
    }

    pub fn content_type(&self) -> Option<String> {
        self.headers
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    }

    /// Asserts a 2xx-or-exact status and returns the JSON body.
    #[track_caller]
    pub fn ok(&self) -> Value {
        assert_eq!(
            self.status,
            200,
            "{}: expected 200, got {} {}",
            self.what,
            self.status,
            self.text()
        );
        self.json()
    }

    /// Asserts the status code and that `errcode` is one of `errcodes`.
    #[track_caller]
    pub fn assert_error(&self, status: u16, errcodes: &[&str]) {
        let errcode = self.errcode();
        assert!(
            self.status == status && errcode.as_deref().is_some_and(|c| errcodes.contains(&c)),
            "{}: expected {status} {errcodes:?}, got {} body={}",
            self.what,
            self.status,
            self.text()
        );
        self.assert_error_shape();
    }

    /// Asserts a governance refusal: the status, the spec's errcode, and an `error` message
    /// naming the rule (``Denied by policy rule `<rule>`: ...``).
    #[track_caller]
    pub fn assert_rule(&self, status: u16, errcode: &str, rule: &str) {
        self.assert_error(status, &[errcode]);
        let msg = self.json()["error"].as_str().unwrap_or_default().to_owned();
        assert!(
            msg.contains(&format!("`{rule}`")),
            "{}: the error should name rule `{rule}`: {msg}",
            self.what
        );
    }

    /// Asserts that `(status, errcode)` is one of `allowed`.
    #[track_caller]
    pub fn assert_error_any(&self, allowed: &[(u16, &str)]) {
        let errcode = self.errcode();
        assert!(
            allowed
                .iter()
                .any(|(s, c)| *s == self.status && errcode.as_deref() == Some(*c)),
            "{}: expected one of {allowed:?}, got {} body={}",
            self.what,
            self.status,
            self.text()
        );
        self.assert_error_shape();
    }

    #[track_caller]
    fn assert_error_shape(&self) {
        assert!(
            self.content_type()
                .is_some_and(|c| c.starts_with("application/json")),
            "{}: error response content-type must be application/json, got {:?}",
            self.what,
            self.content_type()
        );
        let json = self.json();
        assert!(
            json.get("error").is_none_or(|e| e.is_string()),
            "{}: `error` must be a string: {}",
            self.what,
            self.text()
        );
    }
}

impl Http {
    /// The underlying reqwest client (for requests the helpers do not cover).
    pub fn client(&self) -> &reqwest::Client {
        &self.client
    }

    pub fn new(base: &str) -> Self {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("reqwest client");
        Self::with_client(base, client)
    }

    /// An `Http` for `base` using `client` (e.g. one that trusts a test CA).
    pub fn with_client(base: &str, client: reqwest::Client) -> Self {
        Http {
            base: base.trim_end_matches('/').to_owned(),
            client,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// Sends a request; `body` is `(content_type, bytes)`. Panics if no response arrives.
    pub async fn request(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<(&str, Vec<u8>)>,
    ) -> Resp {
        self.try_request(method, path, token, body)
            .await
            .unwrap_or_else(|e| panic!("{method} {path}: request failed: {e:?}"))
    }

    /// Like [`Http::request`], but returns transport errors instead of panicking.
    pub async fn try_request(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<(&str, Vec<u8>)>,
    ) -> Result<Resp, reqwest::Error> {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let mut req = self.client.request(method.clone(), self.url(path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some((ct, bytes)) = body {
            req = req.header(reqwest::header::CONTENT_TYPE, ct).body(bytes);
        }
        let what = format!("{method} {path}");
        let resp = req.send().await?;
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let body = resp.bytes().await?.to_vec();
        Ok(Resp {
            status,
            headers,
            body,
            what,
        })
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Resp {
        self.request("GET", path, token, None).await
    }

    pub async fn post_json(&self, path: &str, token: Option<&str>, body: &Value) -> Resp {
        let bytes = serde_json::to_vec(body).unwrap();
        self.request("POST", path, token, Some(("application/json", bytes)))
            .await
    }

    pub async fn put_json(&self, path: &str, token: Option<&str>, body: &Value) -> Resp {
        let bytes = serde_json::to_vec(body).unwrap();
        self.request("PUT", path, token, Some(("application/json", bytes)))
            .await
    }

    /// Registers with `m.login.dummy` over raw HTTP; returns `(user_id, access_token)`.
    pub async fn register(&self, username: &str, password: &str) -> (String, String) {
        let body = json!({"username": username, "password": password});
        let first = self
            .post_json("/_matrix/client/v3/register", None, &body)
            .await;
        let resp = if first.status == 401 {
            let session = first.json()["session"].clone();
            let mut body = body.clone();
            body["auth"] = json!({"type": "m.login.dummy", "session": session});
            self.post_json("/_matrix/client/v3/register", None, &body)
                .await
        } else {
            first
        };
        let json = resp.ok();
        (
            json["user_id"].as_str().expect("user_id").to_owned(),
            json["access_token"]
                .as_str()
                .expect("access_token")
                .to_owned(),
        )
    }

    /// Logs in with a password; returns the access token.
    pub async fn login(&self, username: &str, password: &str) -> String {
        let resp = self
            .post_json(
                "/_matrix/client/v3/login",
                None,
                &login_body(username, password),
            )
            .await;
        resp.ok()["access_token"]
            .as_str()
            .expect("access_token")
            .to_owned()
    }

    /// Creates a room; returns its ID.
    pub async fn create_room(&self, token: &str, body: &Value) -> String {
        let resp = self
            .post_json("/_matrix/client/v3/createRoom", Some(token), body)
            .await;
        resp.ok()["room_id"].as_str().expect("room_id").to_owned()
    }
}

impl Http {
    /// Sends a request over a raw TCP connection, reading the response *while* the body is
    /// being written (like curl does), so a server that answers early (e.g. 413 before the
    /// body is complete) is observed even if it then closes the connection. Errors while
    /// writing are ignored; the response is what counts.
    pub async fn raw_streaming_request(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        content_type: &str,
        body: Vec<u8>,
    ) -> Resp {
        use tokio::io::AsyncReadExt;
        let hostport = self.base.strip_prefix("http://").expect("http:// base URL");
        let stream = tokio::net::TcpStream::connect(hostport)
            .await
            .expect("connect");
        let (mut rd, mut wr) = stream.into_split();
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {hostport}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n",
            body.len()
        );
        if let Some(t) = token {
            head.push_str(&format!("Authorization: Bearer {t}\r\n"));
        }
        head.push_str("\r\n");
        let writer = tokio::spawn(async move {
            if wr.write_all(head.as_bytes()).await.is_err() {
                return;
            }
            for chunk in body.chunks(64 * 1024) {
                if wr.write_all(chunk).await.is_err() {
                    return;
                }
            }
            let _ = wr.flush().await;
        });
        let mut buf = Vec::new();
        let mut tmp = vec![0u8; 64 * 1024];
        let what = format!("{method} {path} (raw)");
        loop {
            match tokio::time::timeout(Duration::from_secs(30), rd.read(&mut tmp)).await {
                Ok(Ok(0)) | Ok(Err(_)) => break,
                Ok(Ok(n)) => {
                    buf.extend_from_slice(&tmp[..n]);
                    if let Some(resp) = parse_http_response(&buf, &what) {
                        writer.abort();
                        return resp;
                    }
                }
                Err(_) => panic!("{what}: no complete response within 30s"),
            }
        }
        writer.abort();
        parse_http_response(&buf, &what).unwrap_or_else(|| {
            panic!(
                "{what}: connection closed without a complete HTTP response; got {} bytes: {:?}",
                buf.len(),
                String::from_utf8_lossy(&buf[..buf.len().min(500)])
            )
        })
    }
}

/// Parses a complete HTTP/1.1 response (Content-Length or chunked); `None` if incomplete.
fn parse_http_response(buf: &[u8], what: &str) -> Option<Resp> {
    let end = buf.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&buf[..end]).ok()?;
    let mut lines = head.split("\r\n");
    let status: u16 = lines.next()?.split_whitespace().nth(1)?.parse().ok()?;
    let mut headers = reqwest::header::HeaderMap::new();
    for l in lines {
        if let Some((k, v)) = l.split_once(':') {
            if let (Ok(k), Ok(v)) = (
                reqwest::header::HeaderName::from_bytes(k.trim().as_bytes()),
                reqwest::header::HeaderValue::from_str(v.trim()),
            ) {
                headers.append(k, v);
            }
        }
    }
    let rest = &buf[end + 4..];
    let body = if let Some(len) = headers.get("content-length") {
        let len: usize = len.to_str().ok()?.parse().ok()?;
        if rest.len() < len {
            return None;
        }
        rest[..len].to_vec()
    } else if headers
        .get("transfer-encoding")
        .is_some_and(|v| v.to_str().unwrap_or("").contains("chunked"))
    {
        let mut out = Vec::new();
        let mut pos = 0;
        loop {
            let nl = rest[pos..].windows(2).position(|w| w == b"\r\n")?;
            let size_str = std::str::from_utf8(&rest[pos..pos + nl]).ok()?;
            let size = usize::from_str_radix(size_str.split(';').next()?.trim(), 16).ok()?;
            pos += nl + 2;
            if size == 0 {
                break;
            }
            if rest.len() < pos + size + 2 {
                return None;
            }
            out.extend_from_slice(&rest[pos..pos + size]);
            pos += size + 2;
        }
        out
    } else {
        return None; // read to EOF; caller retries after close
    };
    Some(Resp {
        status,
        headers,
        body,
        what: what.to_owned(),
    })
}

/// `m.login.password` body for `/login`.
pub fn login_body(username: &str, password: &str) -> Value {
    json!({
        "type": "m.login.password",
        "identifier": {"type": "m.id.user", "user": username},
        "password": password,
    })
}

/// Percent-encodes a path segment (room IDs contain `!` and `:`).
pub fn enc(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}
